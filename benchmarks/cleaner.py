"""The log cleaner: how fast it compacts, and what it costs requests meanwhile.

    python benchmarks/cleaner.py [--mb 100] [--seconds 10]

1. **Throughput** (in process, no broker): a compacted log of ``--mb`` MB of 1 KB updates over
   10,000 keys in producer-like batches of 16 records (uncompressed, then lz4), rolled, then one
   cleaning's steps on this thread (the worker's offset map and rewrite -- with the GIL pauses a
   thread takes, which the broker's worker process skips -- then commit and swap): MB of log
   cleaned per second, and the bytes before/after. The broker's own line (phase 2) gives its rate.
2. **Latency while cleaning vs idle** (a `kbroker serve` process): a compacted topic ``churn`` gets
   ``--mb`` MB of updates while its min.cleanable.dirty.ratio is 1 (never cleaned); a probe producer
   (librdkafka, acks=all, linger.ms=0, 1 KB every 2 ms) and a probe consumer on another topic
   measure Produce latency (send -> delivery report) and end-to-end Fetch latency (send -> received)
   for ``--seconds`` idle; then AlterConfigs sets churn's ratio to 0.01 and the same is measured
   while the cleaner works, until its "Cleaned log churn-0" line. p50 / p99 / max of each.

3. **Side by side with Apache Kafka 4.4** (``--vs-kafka``): the same ``--mb`` MB of updates into a
   compacted topic of a `kbroker serve` process and of a single-node Kafka 4.4 (compat/kafka/oracle.py,
   log.cleaner.backoff.ms lowered on both), then each broker's own report of its cleaning: kbroker's
   "Cleaned log" line and Kafka's LogCleaner stats ("MB of log processed in ... (N MB/sec)"); the
   ratio of the two rates. One broker at a time on this 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kbroker.log import LogManager  # noqa: E402
from kbroker.log.config import LogConfig  # noqa: E402
from kbroker.protocol import compression  # noqa: E402
from kbroker.protocol import records as rec  # noqa: E402

KEYS = 10_000
VALUE = 1000
BATCH = 16


VALUES = [os.urandom(VALUE // 2).hex().encode() for _ in range(64)]  # hex: lz4 gets about 2x


def fill_log(log, mb: int, codec: int) -> int:
    written, i = 0, 0
    while written < mb * 1_000_000:
        batch = rec.build_batch([rec.Record(b"key-%d" % ((i + j) * 7919 % KEYS), VALUES[(i + j) % 64])
                                 for j in range(BATCH)], compression_type=codec)
        log.append(batch)
        written += len(batch)
        i += BATCH
    log.roll()
    return written


def cleaner_throughput(mb: int, codec: int) -> str:
    directory = tempfile.mkdtemp(prefix="kbroker-cleaner-bench-")
    try:
        mgr = LogManager(directory)
        config = LogConfig.from_dict({"cleanup.policy": "compact", "segment.bytes": str(64 << 20),
                                      "min.cleanable.dirty.ratio": "0.01"})
        log = mgr.get_or_create("churn", 0, config=config)
        fill_log(log, mb, codec)
        log.flush()
        before = log.size_in_bytes
        job = mgr.cleaner.grab()
        started = time.perf_counter()
        pairs = job.accept(job.work.run(mgr.cleaner.throttler))  # the worker's part, here on this thread
        mapped = time.perf_counter()
        for old, cleaned in pairs:
            job.commit(cleaned)
            job.swap(old, cleaned)
            job.make_durable()
        job.finish()
        mgr.cleaner.write_checkpoint()
        took = time.perf_counter() - started
        after = log.size_in_bytes
        mgr.close()
        return (f"{compression.NAMES[codec]:>5}: {before / 1e6:.0f} MB -> {after / 1e6:.1f} MB in {took:.2f} s = "
                f"{before / 1e6 / took:.1f} MB/s of log cleaned (map + rewrite {mapped - started:.2f} s, "
                f"commit + swap {took - (mapped - started):.2f} s)")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------------------------------ latency


class Probe:
    """A paced acks=all producer and a consumer on topic ``probe``, recording latencies in ms."""

    def __init__(self, bootstrap: str):
        from confluent_kafka import Consumer, Producer, TopicPartition

        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe", "fetch.wait.max.ms": 100,
                                  "enable.auto.commit": False})
        self.consumer.assign([TopicPartition("probe", 0, -1)])  # from the end
        self.produce_ms: list[float] = []
        self.fetch_ms: list[float] = []
        self.stop = threading.Event()
        self.padding = b"x" * (VALUE - 20)

    def run(self, seconds_or_until) -> tuple[list[float], list[float]]:
        self.produce_ms, self.fetch_ms = [], []
        self.stop.clear()
        reader = threading.Thread(target=self._read)
        reader.start()
        deadline = time.monotonic() + seconds_or_until if isinstance(seconds_or_until, (int, float)) else None
        next_send = time.perf_counter()
        while (deadline is None and not seconds_or_until()) or (deadline is not None and time.monotonic() < deadline):
            sent = time.perf_counter()
            self.producer.produce("probe", value=b"%.6f|" % time.time() + self.padding,
                                  on_delivery=lambda e, m, s=sent: self.produce_ms.append((time.perf_counter() - s) * 1000))
            next_send += 0.002
            while time.perf_counter() < next_send:
                self.producer.poll(0.0005)
        self.producer.flush(10)
        time.sleep(0.3)
        self.stop.set()
        reader.join()
        return self.produce_ms, self.fetch_ms

    def _read(self) -> None:
        while not self.stop.is_set():
            message = self.consumer.poll(0.05)
            if message is not None and message.error() is None:
                sent = float(message.value().split(b"|", 1)[0])
                self.fetch_ms.append((time.time() - sent) * 1000)


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.1f}  p99 {p99:6.1f}  max {ordered[-1]:6.1f} ms  ({len(ordered)} samples)"


def latency_while_cleaning(mb: int, seconds: float) -> list[str]:
    from confluent_kafka.admin import AdminClient, NewTopic

    from kbroker.testing import BrokerProcess

    data = Path(tempfile.mkdtemp(prefix="kbroker-cleaner-latency-"))
    broker = BrokerProcess(data / "data", {"log.cleaner.backoff.ms": 200}).start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        topics = [NewTopic("churn", 1, 1, config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "1",
                                                  "segment.bytes": str(8 << 20)}),
                  NewTopic("probe", 1, 1)]
        for future in admin.create_topics(topics).values():
            future.result(15)
        _produce_churn(broker.bootstrap, mb, flush_timeout=120)
        probe = Probe(broker.bootstrap)
        probe.run(2)  # warm up
        idle = probe.run(seconds)
        start_of_cleaning = broker.log_path.stat().st_size
        _make_cleanable(admin, timeout=15)

        def cleaned() -> str | None:
            with open(broker.log_path, "rb") as f:
                f.seek(start_of_cleaning)
                match = re.search(rb"Cleaned log churn-0 .*", f.read())
            return match[0].decode() if match else None

        started = time.monotonic()
        busy = probe.run(lambda: cleaned() is not None or time.monotonic() - started > 120)
        return [f"idle            produce {percentiles(idle[0])}", f"                fetch   {percentiles(idle[1])}",
                f"while cleaning  produce {percentiles(busy[0])}", f"                fetch   {percentiles(busy[1])}",
                f"the broker's line: {cleaned()}"]
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


def _fill_churn(bootstrap: str, mb: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    # not cleanable (ratio 1) while it fills; made cleanable once all of it is there, so one cleaning
    # covers the whole log on both brokers
    config = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "1", "segment.bytes": str(8 << 20),
              "min.compaction.lag.ms": "0"}
    admin.create_topics([NewTopic("churn", 1, 1, config=config)])["churn"].result(30)
    if _produce_churn(bootstrap, mb, flush_timeout=300):
        raise RuntimeError("records left unsent")
    _make_cleanable(admin, timeout=30)


def _produce_churn(bootstrap: str, mb: int, flush_timeout: float) -> int:
    """``mb`` thousand 1 KB updates of KEYS keys to "churn", then one record so the segments before it
    can roll; the number of records left unsent after ``flush_timeout``."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                         "queue.buffering.max.kbytes": 1 << 20})
    for i in range(mb * 1000):
        while True:
            try:
                producer.produce("churn", key=b"key-%d" % (i * 7919 % KEYS), value=VALUES[i % 64])
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.produce("churn", key=b"roll", value=b"")  # segments roll by size; the last stays active
    return producer.flush(flush_timeout)


def _make_cleanable(admin, timeout: float) -> None:
    """"churn" was filled at min.cleanable.dirty.ratio 1 (never cleanable); now any dirt is enough."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    ratio = ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET)
    for future in admin.incremental_alter_configs([ConfigResource("TOPIC", "churn",
                                                                  incremental_configs=[ratio])]).values():
        future.result(timeout)


def _wait_for(log_path: Path, pattern: bytes, timeout: float = 300) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log_path.read_bytes(), re.S)
        if match:
            return match
        time.sleep(0.5)
    raise RuntimeError(f"no {pattern!r} in {log_path} within {timeout} s")


def side_by_side(mb: int) -> list[str]:
    """Each broker's own cleaning rate for the same log, kbroker then Kafka 4.4."""
    from compat.kafka.oracle import start_kafka
    from kbroker.testing import BrokerProcess

    data = Path(tempfile.mkdtemp(prefix="kbroker-cleaner-vs-kafka-"))
    broker = BrokerProcess(data / "data", {"log.cleaner.backoff.ms": 200}).start()
    try:
        _fill_churn(broker.bootstrap, mb)
        line = _wait_for(broker.log_path, rb"Cleaned log churn-0 [^\n]*")[0].decode()
        kbroker_rate = float(re.search(r"([\d.]+) MB/s", line)[1])
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)
    kafka = start_kafka(overrides={"log.cleaner.backoff.ms": 200})
    try:
        _fill_churn(kafka.bootstrap, mb)
        match = _wait_for(kafka.log_path, rb"cleaned log churn-0.*?([\d.]+) MB of log processed in ([\d.]+) seconds "
                                          rb"\(([\d.]+) MB/sec\)")
        kafka_rate = float(match[3])
        kafka_line = f"{float(match[1]):.1f} MB processed in {float(match[2]):.2f} s ({kafka_rate:.1f} MB/sec)"
    finally:
        kafka.stop()
    return [f"kbroker: {line}", f"kafka 4.4: {kafka_line}",
            f"cleaning rate kbroker/Kafka: {kbroker_rate / kafka_rate:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--vs-kafka", action="store_true", help="only phase 3: the same cleaning on kbroker and Kafka 4.4")
    args = parser.parse_args()
    if args.vs_kafka:
        print(f"{args.mb} MB of 1 KB updates over {KEYS} keys, compacted by each broker (its own report):")
        for line in side_by_side(args.mb):
            print("  " + line)
        return
    print(f"cleaner throughput, {args.mb} MB of 1 KB updates over {KEYS} keys, batches of {BATCH}:")
    for codec in (compression.NONE, compression.LZ4):
        print("  " + cleaner_throughput(args.mb, codec))
    if not args.skip_latency:
        print(f"Produce (acks=all) and end-to-end Fetch latency of a 1 KB probe every 2 ms, {args.mb} MB to clean:")
        for line in latency_while_cleaning(args.mb, args.seconds):
            print("  " + line)


if __name__ == "__main__":
    main()
