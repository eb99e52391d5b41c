"""What the replication stories share: a cluster fixture that runs each story on the in-process
cluster (in-memory coordination) and on a cluster of broker processes on a real ZooKeeper, and the
client-side steps (create a replicated topic, produce with acks=all, read everything back) done
with confluent-kafka, plus the check that every replica holds the same records at the same offsets."""

from __future__ import annotations

import collections
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kbroker.log import PartitionLog
from kbroker.protocol import records as R
from kbroker.testing import InProcessCluster, ProcessCluster

FAST_CLUSTER = {"replica.lag.time.max.ms": "3000", "replica.fetch.backoff.ms": "200"}


@pytest.fixture(params=["in-process", "zookeeper"])
def cluster_factory(request, tmp_path_factory):
    """``start(brokers=3, **overrides)``: a cluster of this run's kind, stopped at the end."""
    started = []

    def start(brokers: int = 3, **overrides):
        settings = {**FAST_CLUSTER, **overrides}
        if request.param == "in-process":
            cluster = InProcessCluster(tmp_path_factory.mktemp("cluster"), brokers, settings)
        else:
            server = request.getfixturevalue("zookeeper_server")
            cluster = ProcessCluster(tmp_path_factory.mktemp("cluster"),
                                     f"{server.connect}/kbroker-{uuid.uuid4().hex[:8]}", brokers, settings)
        started.append(cluster.start())
        wait_for_brokers(cluster, brokers)
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


def admin(cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap})


def wait_for_brokers(cluster, count: int, timeout: float = 30) -> None:
    """Until every broker sees ``count`` live brokers (each follows the cluster on its own: one that
    has not seen the last registration yet would refuse a replication factor of ``count``)."""
    deadline = time.monotonic() + timeout
    addresses = cluster.bootstrap.split(",")
    while time.monotonic() < deadline:
        try:
            if all(len(AdminClient({"bootstrap.servers": address}).list_topics(timeout=5).brokers) >= count
                   for address in addresses):
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{count} brokers did not register in {timeout} s")


def create_topic(cluster, name: str, partitions: int = 1, replication_factor: int = 3, **configs) -> None:
    client = admin(cluster)  # kept alive until the answer: a collected client cancels its requests
    futures = client.create_topics([NewTopic(name, partitions, replication_factor,
                                             config={k: str(v) for k, v in configs.items()})])
    futures[name].result(30)
    wait_until(lambda: all(p.leader >= 0 and len(p.isrs) == replication_factor
                           for p in admin(cluster).list_topics(name, timeout=5).topics[name].partitions.values()),
               what=f"{name} to have leaders and full ISRs")


def partition_metadata(cluster, topic: str, partition: int = 0):
    return admin(cluster).list_topics(topic, timeout=10).topics[topic].partitions[partition]


def wait_until(condition, timeout: float = 30, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Acks:
    """An idempotent acks=all producer that records every acknowledged value and every error."""

    def __init__(self, cluster, **config):
        self.producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 5, "message.timeout.ms": 60000, **config})
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.errors: list = []

    def _delivered(self, err, msg) -> None:
        if err is None:
            self.acked[msg.value()] = (msg.partition(), msg.offset())
        else:
            self.errors.append(err)

    def send(self, topic: str, values, partition: int | None = None) -> None:
        for value in values:
            kwargs = {} if partition is None else {"partition": partition}
            self.producer.produce(topic, value, on_delivery=self._delivered, **kwargs)
            self.producer.poll(0)

    def flush(self, timeout: float = 60) -> int:
        return self.producer.flush(timeout)

    def ends(self) -> dict[int, int]:
        """partition -> the end offset of what was acknowledged there."""
        out: dict[int, int] = {}
        for partition, offset in self.acked.values():
            out[partition] = max(out.get(partition, 0), offset + 1)
        return out


def read_all(cluster, topic: str, partitions: int = 1, timeout: float = 60,
             at_least: dict[int, int] | None = None) -> dict[int, list[tuple[int, bytes]]]:
    """Every record of every partition, from offset 0 to the high watermark: partition -> [(offset, value)].
    ``at_least``: partition -> an end offset to wait for first (a new leader's high watermark moves
    once its followers have fetched from it, a fetch round after a leader change)."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        ends = {}
        for p in range(partitions):
            wanted = (at_least or {}).get(p, 0)
            wait_until(lambda: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] >= wanted,
                       what=f"the high watermark of {topic}-{p} to reach {wanted}")
            ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1]
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        done: set[int] = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout
        while len(done) < partitions and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF and msg.offset() >= ends[msg.partition()]:
                    done.add(msg.partition())
                continue
            out[msg.partition()].append((msg.offset(), msg.value()))
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        assert len(done) == partitions, f"did not reach the end of {sorted(set(range(partitions)) - done)}"
        return out
    finally:
        consumer.close()


def replica_batches(base_dir: Path, node_id: int, topic: str, partition: int) -> list[bytes]:
    """The batches of one broker's replica, read from its directory (the broker must be stopped)."""
    directory = Path(base_dir) / f"broker-{node_id}" / f"{topic}-{partition}"
    if not directory.exists():
        return []
    log = PartitionLog.open(str(directory), {})
    try:
        batches, offset = [], log.log_start_offset
        while offset < log.log_end_offset:
            data = log.read_bytes(offset, 1 << 30)
            for h in R.iter_batches(data):
                batches.append(bytes(data[h.position:h.position + h.size]))
                offset = h.next_offset
        return batches
    finally:
        log.close()


def assert_replicas_agree(base_dir: Path, brokers, topic: str, partition: int) -> list[list[bytes]]:
    """Every replica's log is a prefix of the longest one: the same batch (offsets, leader epoch,
    records, CRC) at every offset, whichever broker holds it."""
    logs = [replica_batches(base_dir, n, topic, partition) for n in brokers]
    longest = max(logs, key=len)
    for node_id, batches in zip(brokers, logs):
        assert batches == longest[:len(batches)], f"broker {node_id}'s replica of {topic}-{partition} diverges"
    return logs


__all__ = ["Acks", "FAST_CLUSTER", "admin", "assert_replicas_agree", "cluster_factory", "create_topic",
           "partition_metadata", "read_all", "replica_batches", "wait_for_brokers", "wait_until"]


class LibrdkafkaTransactions:
    """A confluent-kafka transactional producer in a thread, recording each value's outcome as the
    Java one does: committed, aborted, or unknown (the producer gave up)."""

    def __init__(self, cluster, topic: str, transactional_id: str, partitions: int):
        self.cluster, self.topic, self.transactional_id = cluster, topic, transactional_id
        self.partitions = partitions
        self.outcomes: dict[bytes, str] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        producer = Producer({"bootstrap.servers": self.cluster.bootstrap, "transactional.id": self.transactional_id,
                             "linger.ms": 2, "transaction.timeout.ms": 60000, "message.timeout.ms": 60000,
                             "log_level": 0})
        producer.init_transactions(60)
        t = 0
        while not self.stopping.is_set():
            values = [b"%s-%d-%d" % (self.transactional_id.encode(), t, i) for i in range(20)]
            t += 1
            outcome = self._one(producer, values)
            self.outcomes.update((v, outcome) for v in values)
            if outcome == "unknown":
                return

    def _one(self, producer: Producer, values: list[bytes]) -> str:
        try:
            producer.begin_transaction()
            for i, value in enumerate(values):
                producer.produce(self.topic, value, partition=i % self.partitions)
            for _ in range(5):
                try:
                    producer.commit_transaction(30)
                    return "committed"
                except KafkaException as exc:
                    if not exc.args[0].retriable():
                        raise
            return "unknown"
        except KafkaException as exc:
            if not exc.args[0].txn_requires_abort():
                return "unknown"
            for _ in range(5):
                try:
                    producer.abort_transaction(30)
                    return "aborted"
                except KafkaException as abort_exc:
                    if not abort_exc.args[0].retriable():
                        return "unknown"
            return "unknown"


def read_committed(cluster, topic: str, partitions: int, expected: int, timeout: float = 60) -> list[bytes]:
    """Every committed record of the topic (read_committed), once ``expected`` were read and a poll brought no more."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg.value())
            elif msg is None and len(got) >= expected:
                break  # a quiet poll after everything: nothing more (aborted records would come here)
    finally:
        consumer.close()
    return got


def check_transaction_outcomes(outcomes: dict[bytes, str], read: list[bytes]) -> None:
    """Every committed value read once, no aborted one read (unknown ones either way)."""
    seen = collections.Counter(read)
    duplicated = [v for v, n in seen.items() if n > 1]
    assert not duplicated, f"read twice: {duplicated[:5]}"
    lost = [v for v, o in outcomes.items() if o == "committed" and v not in seen]
    assert not lost, f"{len(lost)} committed values lost, e.g. {lost[:5]}"
    leaked = [v for v in seen if outcomes.get(v) == "aborted"]
    assert not leaked, f"{len(leaked)} aborted values read, e.g. {leaked[:5]}"
