"""Records in, records out, byte-exact, with every Python client: 10,000 records with keys, values,
headers, null keys and values and explicit timestamps go to a 3-partition topic and come back in
order per partition."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.records_story import by_partition, story_records, StoryRecord
from tests.test_bootstrap import create_topics_by_metadata

COUNT = 10_000
PARTITIONS = 3


@pytest.fixture
def broker(kbroker_factory):
    broker = kbroker_factory(**{"num.partitions": PARTITIONS})
    create_topics_by_metadata(broker.bootstrap, "story")
    return broker


def consume_confluent(bootstrap: str, topic: str, expected: int, partitions: int = PARTITIONS, **extra) -> list[StoryRecord]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False,
                         **extra})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    received, deadline = [], time.monotonic() + 60
    try:
        while len(received) < expected and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1):
                assert message.error() is None, message.error()
                received.append((message.offset(), StoryRecord(
                    message.partition(), message.key(), message.value(),
                    tuple((k, v or b"") for k, v in (message.headers() or [])), message.timestamp()[1])))
    finally:
        consumer.close()
    return received


def assert_story(expected: list[StoryRecord], received: list[tuple[int, StoryRecord]]) -> None:
    assert len(received) == len(expected)
    got = by_partition(r for _, r in received)
    for partition, records in by_partition(expected).items():
        assert got[partition] == records, f"partition {partition} differs"
    for partition, offsets in by_partition_offsets(received).items():
        assert offsets == list(range(len(offsets)))


def by_partition_offsets(received):
    offsets: dict[int, list[int]] = {}
    for offset, record in received:
        offsets.setdefault(record.partition, []).append(offset)
    return offsets


def test_confluent_kafka_round_trip(broker):
    from confluent_kafka import Producer

    records = story_records(COUNT, PARTITIONS)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for r in records:
        producer.produce("story", key=r.key, value=r.value, partition=r.partition, headers=list(r.headers) or None,
                         timestamp=r.timestamp)
    assert producer.flush(30) == 0
    assert_story(records, consume_confluent(broker.bootstrap, "story", COUNT))


def test_kafka_python_round_trip(broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    records = story_records(COUNT, PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    futures = [producer.send("story", key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                             timestamp_ms=r.timestamp) for r in records]
    producer.flush(30)
    assert all(f.get(10) for f in futures)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition("story", p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    received = [(m.offset, StoryRecord(m.partition, m.key, m.value, tuple(m.headers), m.timestamp))
                for _, m in zip(range(COUNT), consumer)]
    consumer.close()
    assert_story(records, received)


def test_aiokafka_round_trip(broker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    records = story_records(COUNT, PARTITIONS)

    async def story():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send("story", key=r.key, value=r.value, partition=r.partition,
                                           headers=list(r.headers), timestamp_ms=r.timestamp) for r in records]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([TopicPartition("story", p) for p in range(PARTITIONS)])
            await consumer.seek_to_beginning()
            received = []
            async with asyncio.timeout(60):
                while len(received) < COUNT:
                    batches = await consumer.getmany(timeout_ms=1000)
                    for messages in batches.values():
                        received += [(m.offset, StoryRecord(m.partition, m.key, m.value, tuple(m.headers), m.timestamp))
                                     for m in messages]
            return received
        finally:
            await consumer.stop()

    assert_story(records, asyncio.run(story()))


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_idempotent_producer_with_each_compression_type(broker, codec):
    from confluent_kafka import Producer

    records = story_records(2000, PARTITIONS)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "compression.type": codec, "linger.ms": 10})
    for r in records:
        producer.produce("story", key=r.key, value=r.value, partition=r.partition, headers=list(r.headers) or None,
                         timestamp=r.timestamp)
    assert producer.flush(30) == 0
    assert_story(records, consume_confluent(broker.bootstrap, "story", len(records)))


def test_offsets_for_times(broker):
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(100):
        producer.produce("story", value=b"%d" % i, partition=0, timestamp=1_000_000 + 10 * i)
        producer.flush(10)  # one batch per record, so the time index has many entries
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "times"})
    try:
        def offset_for(timestamp):
            [found] = consumer.offsets_for_times([TopicPartition("story", 0, timestamp)], timeout=10)
            assert found.error is None
            return found.offset

        asked = (0, 1_000_000, 1_000_005, 1_000_500, 1_000_990, 2_000_000)
        assert [offset_for(ts) for ts in asked] == [0, 0, 1, 50, 99, -1]
        low, high = consumer.get_watermark_offsets(TopicPartition("story", 0), timeout=10)
        assert (low, high) == (0, 100)
    finally:
        consumer.close()
