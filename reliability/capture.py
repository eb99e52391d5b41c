"""Real client requests, captured: the seeds of both fuzzers.

A broker advertises a recording proxy's address instead of its own, so every connection a client
opens (bootstrap and after metadata) goes through the proxy, which splits the client-to-broker stream
into frames and keeps them. A workload of real clients then does what applications do: confluent-kafka
producers (idempotent, each compression codec, transactional), a group consumer that commits, the
admin client's topic, partition, config, group, offset and record administration, and kafka-python's
producer and consumer (older API versions). To these are added kbroker's own encoding of every request
type at every version with default fields, so no API key is missing.

Topic and group names start with "capture-", never the names a fuzz probe's working client uses.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import warnings
from pathlib import Path

from kbroker.protocol.codec import encode_request
from kbroker.protocol.messages import REQUESTS

from .common import new_broker, stop_broker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingProxy:
    """Forwards every accepted connection to the broker; records client-to-broker frames."""

    def __init__(self, broker_port: int):
        self.broker_port = broker_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frames: list[bytes] = []
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.broker_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._record, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._forward, args=(upstream, client), daemon=True).start()

    def _record(self, source: socket.socket, sink: socket.socket) -> None:
        pending = b""
        for chunk in self._chunks(source, sink):
            pending += chunk
            while len(pending) >= 4 and len(pending) >= 4 + struct.unpack(">i", pending[:4])[0]:
                size = struct.unpack(">i", pending[:4])[0]
                with self.lock:
                    self.frames.append(pending[4:4 + size])
                pending = pending[4 + size:]

    def _forward(self, source: socket.socket, sink: socket.socket) -> None:
        for _ in self._chunks(source, sink):
            pass

    @staticmethod
    def _chunks(source: socket.socket, sink: socket.socket):
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
                yield chunk
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for s in self.sockets:
            s.close()


def _attempt(action, *args) -> None:
    try:
        action(*args)
    except Exception:
        pass  # a capture only needs the request to have been sent


def admin_workload(bootstrap: str) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicCollection, TopicPartition
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                       NewTopic, OffsetSpec, ResourceType)

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})

    def wait(call):
        try:
            futures = call()
        except Exception:
            return
        for f in (futures.values() if isinstance(futures, dict) else [futures]):
            _attempt(f.result, 20)

    topic_b = ConfigResource(ResourceType.TOPIC, "capture-b")
    calls = [
        lambda: admin.create_topics([NewTopic("capture-a", 3, 1), NewTopic("capture-c", 2, 1),
                                     NewTopic("capture-b", 1, 1, config={"retention.ms": "3600000"})]),
        lambda: admin.create_partitions([NewPartitions("capture-a", 4)]),
        lambda: admin.describe_configs([topic_b, ConfigResource(ResourceType.BROKER, "1")]),
        lambda: admin.alter_configs([ConfigResource(ResourceType.TOPIC, "capture-b",
                                                    set_config={"retention.ms": "7200000"})]),
        lambda: admin.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, "capture-b", incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)])]),
        lambda: admin.list_topics(timeout=10) and {},
        lambda: admin.describe_cluster(),
        lambda: admin.list_consumer_groups(),
        lambda: admin.describe_consumer_groups(["capture-group"]),
        lambda: admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("capture-group")]),
        lambda: admin.delete_records([TopicPartition("capture-a", 0, 1)]),
        lambda: admin.list_offsets({TopicPartition("capture-a", 0): OffsetSpec.latest()}),
        lambda: admin.describe_topics(TopicCollection(["capture-a"])),
        lambda: admin.delete_topics(["capture-c"]),
        lambda: admin.delete_consumer_groups(["capture-nonexistent-group"]),
    ]
    with warnings.catch_warnings():  # alter_configs is deprecated in confluent-kafka; its request is still sent
        warnings.simplefilter("ignore", DeprecationWarning)
        for call in calls:
            wait(call)


def producer_workload(bootstrap: str) -> None:
    from confluent_kafka import Producer

    for compression in ("none", "gzip", "snappy", "lz4", "zstd"):
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                             "compression.type": compression, "linger.ms": 1, "log_level": 0})
        for i in range(20):
            producer.produce("capture-a", key=b"k%d" % i, value=b"v" * (i * 10), partition=i % 3,
                             headers=[("h", b"x")] if i % 2 else None)
        producer.flush(20)


def transactional_workload(bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "capture-txn", "log_level": 0})
    producer.init_transactions(20)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "capture-txn-group", "log_level": 0})
    for commit in (True, False):
        producer.begin_transaction()
        producer.produce("capture-a", value=b"in a transaction", partition=0)
        _attempt(producer.send_offsets_to_transaction, [TopicPartition("capture-a", 0, 1)],
                 consumer.consumer_group_metadata(), 20)
        (producer.commit_transaction if commit else producer.abort_transaction)(20)
    consumer.close()


def consumer_workload(bootstrap: str) -> None:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "capture-group", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "log_level": 0, "isolation.level": "read_committed"})
    consumer.subscribe(["capture-a"])
    deadline, seen = time.monotonic() + 10, 0
    while time.monotonic() < deadline and seen < 50:
        seen += len(consumer.consume(100, timeout=0.5))
    _attempt(consumer.commit, None, False)
    consumer.close()


def kafka_python_workload(bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(10):
        producer.send("capture-b", key=b"k", value=b"kafka-python %d" % i)
    producer.flush(20)
    producer.close()
    consumer = KafkaConsumer("capture-b", bootstrap_servers=bootstrap, group_id="capture-kp-group",
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    for _ in consumer:
        pass
    _attempt(consumer.commit)
    consumer.close()


def every_request_type() -> list[bytes]:
    """kbroker's encoding of every request type at every version, default fields (no size prefix)."""
    frames = []
    for message_class in REQUESTS.values():
        low, high = message_class.VERSIONS
        for version in range(low, high + 1):
            frames.append(encode_request(7, version, message_class(), "capture")[4:])
    return frames


_captured: list[bytes] = []


def real_client_frames(workdir: Path) -> list[bytes]:
    """Requests of real clients through a recording proxy; captured once per process, as both fuzzers
    (and a test session running both) want the same seeds."""
    if not _captured:
        _captured.extend(capture_with_clients(workdir))
    return list(_captured)


def capture_real_frames(workdir: Path) -> list[bytes]:
    """Requests of real clients plus every request type's encoding."""
    return real_client_frames(workdir) + every_request_type()


def capture_with_clients(workdir: Path) -> list[bytes]:
    port = free_port()
    proxy = RecordingProxy(port)
    broker = new_broker(workdir / "capture-data", {"listeners": f"PLAINTEXT://127.0.0.1:{port}",
                                                  "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"})
    try:
        broker.start()
        bootstrap = f"127.0.0.1:{proxy.port}"
        for workload in (admin_workload, producer_workload, transactional_workload, consumer_workload,
                         kafka_python_workload):
            _attempt(workload, bootstrap)
    finally:
        stop_broker(broker)
        proxy.close()
    return proxy.frames


def api_keys(frames: list[bytes]) -> set[int]:
    return {struct.unpack(">h", f[:2])[0] for f in frames if len(f) >= 2}
