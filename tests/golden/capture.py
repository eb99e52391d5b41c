"""Capture golden Kafka protocol frames from real clients talking to real Apache Kafka.

    python tests/golden/capture.py [kafka-python confluent-kafka kcat aiokafka java]

Starts Apache Kafka (compat/kafka oracle) with ``advertised.listeners`` pointing at a recording TCP
proxy on loopback, so every client connection (bootstrap and after Metadata/FindCoordinator) goes
through the proxy. The proxy pairs request and response frames by correlation id and writes them to
``tests/golden/<client>/NNN-<Api>-v<version>-{request,response}.bin`` (frames without the size
prefix) plus ``index.json``. Not run by the tests; tests/test_golden.py checks the files.

Proxy rewrites (so clients only negotiate versions our codec knows):
* ApiVersions responses: each API's max version is clamped to ``REQUESTS[key].VERSIONS[1]``; APIs we
  have no schema for, or whose Kafka min version exceeds our max, are dropped. Re-encoded with our
  codec; the stored response is what the client received.
* ApiVersions requests newer than our schema (Java clients send v5) are answered by the proxy itself,
  the way a broker whose ApiVersions max is ours would: UNSUPPORTED_VERSION in a v0 body whose
  ApiKeys lists only ApiVersions (0..our max). The client then retries at our max. Such exchanges
  are listed in index.json under "skipped" (the request body is not decodable by our schema).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compat.kafka.oracle import install, run_tool, start_kafka  # noqa: E402
from kbroker.protocol.codec import (  # noqa: E402
    decode_request_header, decode_response, encode_response, request_header_version)
from kbroker.protocol.errors import ProtocolError  # noqa: E402
from kbroker.protocol.messages import REQUESTS  # noqa: E402
from kbroker.protocol.messages.api_versions import ApiVersionsResponse  # noqa: E402
from kbroker.protocol.primitives import Writer  # noqa: E402

GOLDEN = Path(__file__).resolve().parent
MAX_FRAME = 64 * 1024
PER_API_VERSION = 3
UNSUPPORTED_VERSION = 35
API_VERSIONS = 18


def api_name(key: int) -> str:
    cls = REQUESTS.get(key)
    return cls.__name__.removesuffix("Request") if cls else f"Api{key}"


# ---------------------------------------------------------------------------------------------
# recording proxy

@dataclass
class Exchange:
    seq: int
    label: str
    conn: int
    api_key: int
    version: int
    correlation_id: int
    client_id: str | None
    request: bytes
    response: bytes | None = None
    rewritten: bool = False      # response re-encoded by the proxy (ApiVersions clamp)
    synthesized: bool = False    # response produced by the proxy, request never reached Kafka


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    return _recv_exact(sock, struct.unpack(">i", head)[0])


def _frame(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def _response_bytes(correlation_id: int, api_key: int, version: int, body) -> bytes:
    return b"".join(bytes(p) for p in encode_response(correlation_id, api_key, version, body))[4:]


def clamp_api_versions(body: ApiVersionsResponse) -> None:
    kept = []
    for av in body.api_keys:
        cls = REQUESTS.get(av.api_key)
        if cls is None:
            continue
        top = min(av.max_version, cls.VERSIONS[1])
        if av.min_version > top:
            continue
        av.max_version = top
        kept.append(av)
    body.api_keys = kept


class RecordingProxy:
    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream: tuple[str, int] | None = None
        self.label = "unlabelled"
        self.exchanges: list[Exchange] = []
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._conns = 0
        self._socks: set[socket.socket] = set()
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                csock, _ = self.listener.accept()
            except OSError:
                return
            if self.upstream is None:
                csock.close()
                continue
            with self._lock:
                self._conns += 1
                conn_id = self._conns
            threading.Thread(target=self._serve, args=(csock, conn_id, self.label), daemon=True).start()

    def _serve(self, csock: socket.socket, conn_id: int, label: str) -> None:
        try:
            usock = socket.create_connection(self.upstream)
        except OSError as exc:
            self.notes.append(f"{label}: upstream connect failed: {exc}")
            csock.close()
            return
        for s in (csock, usock):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._socks |= {csock, usock}
        pending: dict[int, Exchange] = {}
        client_send = threading.Lock()

        def close() -> None:
            for s in (csock, usock):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
                with self._lock:
                    self._socks.discard(s)

        def upstream_to_client() -> None:
            while True:
                frame = _read_frame(usock)
                if frame is None:
                    break
                corr = struct.unpack_from(">i", frame)[0]
                ex = pending.pop(corr, None)
                if ex is None:
                    self.notes.append(f"{label}: response with unknown correlation id {corr}")
                elif ex.api_key == API_VERSIONS:
                    try:
                        _, body = decode_response(frame, API_VERSIONS, ex.version)
                        if body.error_code == 0:
                            clamp_api_versions(body)
                            frame = _response_bytes(corr, API_VERSIONS, ex.version, body)
                            ex.rewritten = True
                    except ProtocolError as exc:
                        self.notes.append(f"{label}: ApiVersions v{ex.version} response not decodable: {exc}")
                if ex is not None:
                    ex.response = frame
                try:
                    with client_send:
                        csock.sendall(_frame(frame))
                except OSError:
                    break
            close()

        reader = threading.Thread(target=upstream_to_client, daemon=True)
        reader.start()
        while True:
            frame = _read_frame(csock)
            if frame is None:
                break
            api_key, version, corr = struct.unpack_from(">hhi", frame)
            try:
                header, _ = decode_request_header(frame)
                client_id = header.client_id
            except ProtocolError:
                client_id = None
            with self._lock:
                self._seq += 1
                ex = Exchange(self._seq, label, conn_id, api_key, version, corr, client_id, frame)
                self.exchanges.append(ex)
            if api_key == API_VERSIONS and version > REQUESTS[API_VERSIONS].VERSIONS[1]:
                body = ApiVersionsResponse(error_code=UNSUPPORTED_VERSION, api_keys=[
                    ApiVersionsResponse.ApiVersion(API_VERSIONS, 0, REQUESTS[API_VERSIONS].VERSIONS[1])])
                ex.response = _response_bytes(corr, API_VERSIONS, 0, body)
                ex.synthesized = True
                try:
                    with client_send:
                        csock.sendall(_frame(ex.response))
                except OSError:
                    break
                continue
            pending[corr] = ex
            try:
                usock.sendall(_frame(frame))
            except OSError:
                break
        close()
        reader.join(timeout=5)

    def close(self) -> None:
        self._closing = True
        self.listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# client scenarios (each gets the proxy address as bootstrap)

def scenario_kafka_python(bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = "golden-kafka-python"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="golden-kp-admin")
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.create_topics([NewTopic(topic + "-scratch", num_partitions=1, replication_factor=1)])
    admin.describe_topics([topic])
    admin.list_topics()
    admin.delete_topics([topic + "-scratch"])

    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="golden-kp-producer",
                             compression_type="gzip", linger_ms=5)
    for i in range(6):
        producer.send(topic, value=f"kafka-python value {i}".encode(), key=f"key-{i}".encode(),
                      headers=[("trace", f"t{i}".encode()), ("empty", b"")])
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, client_id="golden-kp-consumer",
                             group_id="golden-kp-group", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=8000)
    seen = 0
    for _ in consumer:
        seen += 1
        if seen >= 6:
            break
    consumer.commit()
    consumer.close()
    from kafka import TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, OffsetSpec
    for name, call in [
        ("list_groups", lambda: admin.list_groups()),
        ("describe_groups", lambda: admin.describe_groups(["golden-kp-group"])),
        ("list_group_offsets", lambda: admin.list_group_offsets({"golden-kp-group": None})),
        ("describe_cluster", lambda: admin.describe_cluster()),
        ("describe_configs", lambda: admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic), ConfigResource(ConfigResourceType.BROKER, "1")])),
        ("describe_log_dirs", lambda: admin.describe_log_dirs()),
        ("describe_topic_partitions", lambda: admin.describe_topic_partitions([topic])),
        ("list_partition_offsets", lambda: admin.list_partition_offsets(
            {TopicPartition(topic, 0): OffsetSpec.LATEST, TopicPartition(topic, 1): OffsetSpec.EARLIEST})),
        ("delete_records", lambda: admin.delete_records({TopicPartition(topic, 0): 1})),
    ]:
        try:
            call()
        except Exception as exc:  # coverage is best effort; report and go on
            print(f"kafka-python admin {name} failed: {exc!r}")
    admin.close()
    print(f"kafka-python consumed {seen}")


def scenario_confluent(bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicCollection
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

    topics = ["golden-confluent-lz4", "golden-confluent-zstd"]
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "golden-ck-admin"})
    for fut in admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1) for t in topics]).values():
        fut.result(timeout=30)
    for fut in admin.describe_topics(TopicCollection(topics)).values():
        fut.result(timeout=30)
    admin.describe_cluster().result(timeout=30)
    for fut in admin.describe_configs([ConfigResource("topic", topics[0])]).values():
        fut.result(timeout=30)
    admin.list_topics(timeout=10)

    for topic, codec in zip(topics, ("lz4", "zstd")):
        producer = Producer({"bootstrap.servers": bootstrap, "client.id": f"golden-ck-producer-{codec}",
                             "compression.type": codec, "linger.ms": 5})
        for i in range(6):
            producer.produce(topic, key=f"key-{i}", value=f"confluent {codec} value {i} " * 4,
                             headers=[("trace", f"t{i}".encode())])
        producer.flush(30)

    for protocol, topic in (("classic", topics[0]), ("consumer", topics[1])):
        conf = {"bootstrap.servers": bootstrap, "client.id": f"golden-ck-consumer-{protocol}",
                "group.id": f"golden-ck-{protocol}", "auto.offset.reset": "earliest",
                "enable.auto.commit": False}
        if protocol == "consumer":
            conf["group.protocol"] = "consumer"
        consumer = Consumer(conf)
        consumer.subscribe([topic])
        seen, deadline = 0, time.monotonic() + 20
        while seen < 6 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                seen += 1
        if seen:
            consumer.commit(asynchronous=False)
        consumer.close()
        print(f"confluent-kafka ({protocol}) consumed {seen}")

    admin.list_consumer_groups().result(timeout=30)
    admin.describe_consumer_groups(["golden-ck-classic"])["golden-ck-classic"].result(timeout=30)
    for fut in admin.create_partitions([NewPartitions(topics[0], 3)]).values():
        fut.result(timeout=30)
    for fut in admin.delete_consumer_groups(["golden-ck-classic"]).values():
        fut.result(timeout=30)
    for fut in admin.delete_topics([topics[1]]).values():
        fut.result(timeout=30)


def scenario_kcat(bootstrap: str) -> None:
    topic = "golden-kcat"

    def kcat(*args: str, input: str | None = None) -> None:
        res = subprocess.run(["kcat", "-b", bootstrap, "-X", "client.id=golden-kcat", *args], input=input,
                             text=True, capture_output=True, timeout=60)
        print(f"kcat {' '.join(args)} -> {res.returncode}", res.stderr.strip()[-300:])

    kcat("-L")
    kcat("-P", "-t", topic, "-K", ":", "-H", "origin=kcat", "-z", "snappy",
         input="".join(f"k{i}:kcat value {i}\n" for i in range(6)))
    kcat("-C", "-t", topic, "-o", "beginning", "-e", "-f", "%k=%s\n")
    kcat("-G", "golden-kcat-group", "-o", "beginning", "-e", topic)
    kcat("-L", "-t", topic)


def scenario_aiokafka(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = "golden-aiokafka"

    async def main() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="golden-aio-producer",
                                    compression_type="gzip", enable_idempotence=True)
        await producer.start()
        try:
            for i in range(6):
                await producer.send_and_wait(topic, f"aiokafka value {i}".encode(), key=f"key-{i}".encode(),
                                             headers=[("trace", f"t{i}".encode())])
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, client_id="golden-aio-consumer",
                                    group_id="golden-aio-group", auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        seen = 0
        try:
            while seen < 6:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 15)
                seen += sum(len(v) for v in batch.values())
            await consumer.commit()
        finally:
            await consumer.stop()
        print(f"aiokafka consumed {seen}")

    asyncio.run(main())


def scenario_java(bootstrap: str, prefix: str = "golden-java") -> None:
    cp = os.pathsep.join(install())
    res = subprocess.run(["java", "-cp", cp, str(GOLDEN / "GoldenClient.java"), bootstrap, prefix],
                         text=True, capture_output=True, timeout=240)
    print(res.stdout.strip())
    if res.returncode:
        print(res.stderr[-2000:])


def scenario_java_tv1(bootstrap: str) -> None:
    """The Java client once transaction.version is downgraded to 1 (main() does that first): the
    transactions v1 requests (AddPartitionsToTxn, AddOffsetsToTxn, Produce v11, EndTxn v4)."""
    scenario_java(bootstrap, "golden-java-tv1")


SCENARIOS = {
    "kafka-python": scenario_kafka_python,
    "confluent-kafka": scenario_confluent,
    "kcat": scenario_kcat,
    "aiokafka": scenario_aiokafka,
    "java": scenario_java,
    "java-tv1": scenario_java_tv1,  # after java: it downgrades transaction.version for good
}


# ---------------------------------------------------------------------------------------------
# selection and output

LIBRDKAFKA_5049 = ("librdkafka#5049: all-topics Metadata v9+ request writes the null Topics array as a "
                   "4-byte int32 placeholder (00 00 00 00) instead of one varint 00; Kafka reads 00 as "
                   "null Topics, the next 3 zero bytes as AllowAutoTopicCreation=false, "
                   "IncludeTopicAuthorizedOperations=false and empty tags, and ignores the 3 trailing bytes")


def roundtrip_problem(kind: str, api_key: int, version: int, frame: bytes) -> str | None:
    """None if our codec decodes the frame completely and re-encodes it byte for byte."""
    try:
        if kind == "request":
            header, reader = decode_request_header(frame)
            body = REQUESTS[api_key].decode(reader, version)
            if reader.remaining():
                return f"{reader.remaining()} trailing bytes"
            w = Writer()
            header.encode(w, request_header_version(api_key, version))
            body.encode(w, version)
            return None if w.getvalue() == frame else "re-encoding differs"
        corr, body = decode_response(frame, api_key, version)
        return None if _response_bytes(corr, api_key, version, body) == frame else "re-encoding differs"
    except Exception as exc:  # noqa: BLE001 - any failure is a finding to record
        return f"decode failed: {exc!r}"


def quirk(ex: Exchange) -> str | None:
    """A known client encoding bug that explains a frame not round-tripping."""
    if ex.api_key == 3 and ex.version >= 9:
        header, reader = decode_request_header(ex.request)
        if ex.request[reader.pos:reader.pos + 4] == bytes(4) and reader.remaining() == 7:
            return LIBRDKAFKA_5049
    return None

def select(exchanges: list[Exchange]) -> list[Exchange]:
    """Up to PER_API_VERSION exchanges per (api, version), all frames <= MAX_FRAME: first any that do
    not round-trip through our codec, then the first, the largest request, the largest response
    (which picks up Produce/Fetch with records)."""
    groups: dict[tuple[int, int], list[Exchange]] = {}
    for ex in exchanges:
        if len(ex.request) > MAX_FRAME or (ex.response is not None and len(ex.response) > MAX_FRAME):
            continue
        groups.setdefault((ex.api_key, ex.version), []).append(ex)
    chosen: list[Exchange] = []
    for group in groups.values():
        odd = [e for e in group if roundtrip_problem("request", e.api_key, e.version, e.request)
               or (e.response is not None and roundtrip_problem("response", e.api_key, e.version, e.response))]
        picks = [*odd, group[0], max(group, key=lambda e: len(e.request)),
                 max(group, key=lambda e: len(e.response or b"")), group[len(group) // 2]]
        unique: list[Exchange] = []
        for p in picks:
            if p not in unique:
                unique.append(p)
        chosen += unique[:PER_API_VERSION]
    return sorted(chosen, key=lambda e: e.seq)


def write_client(name: str, exchanges: list[Exchange]) -> dict:
    out = GOLDEN / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    skipped, usable = [], []
    for ex in exchanges:
        cls = REQUESTS.get(ex.api_key)
        if cls is None or not cls.VERSIONS[0] <= ex.version <= cls.VERSIONS[1]:
            skipped.append({"api_key": ex.api_key, "version": ex.version, "client_id": ex.client_id,
                            "reason": "request version outside our schema"
                            + ("; proxy answered UNSUPPORTED_VERSION" if ex.synthesized else "")})
        else:
            usable.append(ex)
    entries = []
    for n, ex in enumerate(select(usable), 1):
        stem = f"{n:03d}-{api_name(ex.api_key)}-v{ex.version}"
        for kind, data in (("request", ex.request), ("response", ex.response)):
            if data is None:
                continue
            fname = f"{stem}-{kind}.bin"
            (out / fname).write_bytes(data)
            entry = {"file": fname, "api_key": ex.api_key, "api": api_name(ex.api_key), "version": ex.version,
                     "kind": kind, "correlation_id": ex.correlation_id, "client_id": ex.client_id}
            if kind == "response" and ex.rewritten:
                entry["rewritten_by_proxy"] = "ApiVersions max versions clamped to our schemas"
            problem = roundtrip_problem(kind, ex.api_key, ex.version, data)
            if problem:
                known = quirk(ex) if kind == "request" else None
                entry["quirk" if known else "roundtrip_problem"] = known or problem
                print(f"{name}/{fname}: {known or problem}")
            entries.append(entry)
    index = {"client": name, "frames": entries, "skipped": skipped,
             "seen": sorted({(api_name(e.api_key), e.version) for e in exchanges})}
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clients", nargs="*", help=f"subset of {', '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args(argv)
    args.clients = args.clients or list(SCENARIOS)
    unknown = set(args.clients) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown clients {sorted(unknown)}")

    proxy = RecordingProxy()
    bootstrap = f"127.0.0.1:{proxy.port}"
    try:
        with start_kafka(overrides={"advertised.listeners": f"PLAINTEXT://{bootstrap}"}) as kafka:
            proxy.upstream = ("127.0.0.1", kafka.port)
            print(f"kafka {kafka.bootstrap} pid={kafka.pid}; proxy {bootstrap}")
            for name in args.clients:
                if name == "java-tv1":
                    # Kafka 4.4 finalizes transaction.version=2 (Java producers then use Produce v12+
                    # adding partitions implicitly, and EndTxn v5); back to TV1 for the v1 requests
                    proxy.label = "kafka-features"  # its admin client follows Metadata to the proxy
                    for args_ in (("describe",), ("downgrade", "--feature", "transaction.version=1")):
                        res = run_tool("kafka-features", "--bootstrap-server", bootstrap, *args_)
                        print("kafka-features", *args_, "->", res.returncode, res.stdout.strip(),
                              res.stderr.strip()[-300:])
                proxy.label = name
                t = time.monotonic()
                try:
                    SCENARIOS[name](bootstrap)
                except Exception as exc:  # record what we got; report the failure
                    print(f"scenario {name} failed: {exc!r}")
                time.sleep(1.0)  # let late responses (close, leave group) arrive
                print(f"{name}: {time.monotonic() - t:.1f}s")
            proxy.close()  # before Kafka stops, so its own clients' reconnects are not recorded
    finally:
        proxy.close()
    for note in proxy.notes:
        print("note:", note)
    # Kafka's own inter-broker clients (e.g. AddPartitionsManager, the transaction marker sender) also
    # connect to the advertised listener, i.e. through the proxy; every scenario client id starts with
    # "golden", so everything else is the broker's.
    for ex in proxy.exchanges:
        if not (ex.client_id or "").startswith("golden") and ex.label != "kafka-features":
            ex.label = "kafka-broker"
    labels = list(args.clients) + [x for x in ("kafka-features", "kafka-broker")
                                   if any(e.label == x for e in proxy.exchanges)]
    for name in labels:
        exchanges = [e for e in proxy.exchanges if e.label == name]
        index = write_client(name, exchanges)
        client_ids = sorted({str(e.client_id) for e in exchanges})
        print(f"{name}: {len(exchanges)} exchanges, stored {len(index['frames'])} frames, "
              f"skipped {len(index['skipped'])}; client ids {client_ids}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
