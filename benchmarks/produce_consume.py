"""Produce then consume N records of S bytes through librdkafka (confluent-kafka) against a kbroker
process on loopback; prints MB/s, records/s and the broker's RSS.

    python benchmarks/produce_consume.py --records 200000 --size 1024
    python benchmarks/produce_consume.py --records 1000000 --size 100 --acks all --compression lz4
    python benchmarks/produce_consume.py --bootstrap HOST:PORT ...   (any running broker instead)

Not a test: numbers go into issue notes and benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from kbroker.testing import BrokerProcess  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def produce(bootstrap: str, topic: str, records: int, size: int, partitions: int, acks: str, compression: str,
            sample_rss) -> tuple[float, float]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5, "batch.size": 1_000_000,
                         "compression.type": compression, "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 2_000_000})
    payload = os.urandom(size)
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, payload, partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.001)
        if i % 50_000 == 0:
            producer.poll(0)
            sample_rss()
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining:
        raise SystemExit(f"{remaining} records were not delivered")
    return elapsed, records * size / elapsed / 1e6


def consume(bootstrap: str, topic: str, records: int, partitions: int, sample_rss) -> tuple[float, float]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                         "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760,
                         "queued.max.messages.kbytes": 1_048_576, "queued.min.messages": 2_000_000})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    received = received_bytes = 0
    started = time.perf_counter()
    while received < records:
        for message in consumer.consume(10_000, timeout=5):
            if message.error():
                raise SystemExit(str(message.error()))
            received += 1
            received_bytes += len(message.value())
        sample_rss()
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed, received_bytes / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--acks", default="1")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--bootstrap", help="use this broker instead of starting kbroker")
    args = parser.parse_args()

    broker = None
    if args.bootstrap is None:
        broker = BrokerProcess(Path(tempfile.mkdtemp(prefix="kbroker-bench-")) / "data").start()
    bootstrap = args.bootstrap or broker.bootstrap
    peak = [0.0]

    def sample_rss() -> None:
        if broker:
            peak[0] = max(peak[0], rss_mb(broker.pid))

    try:
        topic = f"bench-{int(time.time())}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futures = admin.create_topics([NewTopic(topic, args.partitions, 1)])
        try:
            futures[topic].result(10)
        except KafkaException as exc:  # a broker without CreateTopics: Metadata auto-creation then works
            print(f"(create_topics: {exc}; relying on auto-creation)")
            admin.list_topics(topic, timeout=10)
        idle = rss_mb(broker.pid) if broker else float("nan")
        produce_s, produce_mb = produce(bootstrap, topic, args.records, args.size, args.partitions, args.acks,
                                        args.compression, sample_rss)
        consume_s, consume_mb = consume(bootstrap, topic, args.records, args.partitions, sample_rss)
        print(f"records={args.records} size={args.size}B partitions={args.partitions} acks={args.acks} "
              f"compression={args.compression}")
        print(f"{'':10} {'seconds':>8} {'MB/s':>8} {'records/s':>11}")
        print(f"{'produce':10} {produce_s:8.2f} {produce_mb:8.1f} {args.records / produce_s:11.0f}")
        print(f"{'consume':10} {consume_s:8.2f} {consume_mb:8.1f} {args.records / consume_s:11.0f}")
        if broker:
            print(f"broker RSS: idle {idle:.1f} MB, peak {peak[0]:.1f} MB, after {rss_mb(broker.pid):.1f} MB")
    finally:
        if broker:
            broker.stop()


if __name__ == "__main__":
    main()
