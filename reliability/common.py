"""What every probe shares: the result row, brokers that are always stopped, and measurements.

A probe builds a `ProbeResult` (ok is True when the broker held, False when it found a defect) and
uses `running_broker` so that a broker process is stopped by PID even when the probe fails. The
measurements read /proc (RSS, open descriptors) and time real round trips on the wire.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from kbroker.protocol.codec import encode_request
from kbroker.protocol.messages import ApiVersionsRequest
from kbroker.testing import BrokerProcess


@dataclass(frozen=True)
class Size:
    name: str  # "quick", "full" or "ci"

    @property
    def quick(self) -> bool:
        return self.name != "full"


QUICK, FULL, CI = Size("quick"), Size("full"), Size("ci")


@dataclass
class ProbeResult:
    probe: str
    inputs: str  # rounds / inputs run, as a phrase
    ok: bool
    figures: str
    defects: list[str] = field(default_factory=list)
    error: bool = False  # the probe itself failed to run

    @property
    def result(self) -> str:
        return "ERROR" if self.error else "held" if self.ok else "DEFECT"


def new_broker(data_dir: Path, overrides: dict[str, Any] | None = None, **kwargs: Any) -> BrokerProcess:
    """A BrokerProcess (not started) whose data directory's parent exists."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return BrokerProcess(data_dir, {"num.partitions": 1, **(overrides or {})}, **kwargs)


@contextlib.contextmanager
def running_broker(data_dir: Path, overrides: dict[str, Any] | None = None, **kwargs: Any) -> Iterator[BrokerProcess]:
    broker = new_broker(data_dir, overrides, **kwargs)
    broker.start()
    try:
        yield broker
    finally:
        stop_broker(broker)


def stop_broker(broker: BrokerProcess) -> None:
    try:
        broker.stop(timeout=20)
    finally:
        broker.kill()


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def open_descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def host_port(bootstrap: str) -> tuple[str, int]:
    host, port = bootstrap.rsplit(":", 1)
    return host, int(port)


def api_versions_round_trip(bootstrap: str, timeout: float = 10) -> float:
    """Seconds for a new connection's ApiVersions request to be answered; raises if it is not."""
    started = time.monotonic()
    with socket.create_connection(host_port(bootstrap), timeout=timeout) as sock:
        sock.sendall(encode_request(1, 3, ApiVersionsRequest(client_software_name="probe",
                                                            client_software_version="1")))
        size = struct.unpack(">i", recv_exactly(sock, 4))[0]
        recv_exactly(sock, size)
    return time.monotonic() - started


def is_answered(bootstrap: str, timeout: float = 5) -> bool:
    try:
        api_versions_round_trip(bootstrap, timeout)
        return True
    except OSError:
        return False


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def log_since(broker: BrokerProcess, offset: int) -> str:
    with open(broker.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def log_size(broker: BrokerProcess) -> int:
    return broker.log_path.stat().st_size if broker.log_path.exists() else 0


def count_lines(text: str, pattern: str) -> int:
    return len(re.findall(pattern, text, flags=re.MULTILINE))


def create_topic(bootstrap: str, topic: str, partitions: int, **config: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config)], operation_timeout=60)
    for future in futures.values():
        future.result(timeout=120)


def read_partitions(bootstrap: str, topic: str, partitions: int, timeout: float = 120,
                    errors: list[str] | None = None) -> list[tuple[int, int, bytes]]:
    """Every record of the topic, (partition, offset, value), read with confluent-kafka up to each
    partition's high watermark as it is when reading starts. A read error raises, or with `errors`
    is appended there and ends the reading of that partition."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reliability-reader",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         "fetch.max.bytes": 52428800, "check.crcs": True})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions) if ends[p] > 0])
        positions = {p: 0 for p in range(partitions)}
        records: list[tuple[int, int, bytes]] = []
        deadline = time.monotonic() + timeout
        while any(positions[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {positions} of {ends} of {topic}")
            for message in consumer.consume(10000, timeout=1):
                if message.error():
                    if errors is None:
                        raise RuntimeError(f"reading {topic}: {message.error()}")
                    errors.append(f"partition {message.partition()}: {message.error().str()}")
                    if message.partition() is not None:
                        positions[message.partition()] = ends.get(message.partition(), 0)
                    continue
                if message.offset() < ends[message.partition()]:
                    records.append((message.partition(), message.offset(), message.value()))
                positions[message.partition()] = message.offset() + 1
        return records
    finally:
        consumer.close()


def duplicates(values: list[bytes]) -> int:
    return len(values) - len(set(values))
