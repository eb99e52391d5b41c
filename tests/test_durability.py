"""Nothing acknowledged is lost: across restarts, kill -9 mid-produce, corrupt input and torn tails."""

from __future__ import annotations

import threading
import time

from kbroker.protocol.errors import ErrorCode
from kbroker.protocol.messages import ProduceRequest
from kbroker.protocol.records import Record, build_batch
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata
from tests.test_produce_consume import consume_confluent


def produce_values(bootstrap: str, topic: str, values: list[bytes], partitions: int = 1, **extra) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, **extra})
    for i, value in enumerate(values):
        producer.produce(topic, value=value, partition=i % partitions)
    assert producer.flush(30) == 0


def test_everything_is_still_there_after_a_restart(kbroker_process):
    broker = kbroker_process(**{"num.partitions": 2})
    create_topics_by_metadata(broker.bootstrap, "ledger")
    values = [b"entry-%d" % i for i in range(3000)]
    produce_values(broker.bootstrap, "ledger", values, partitions=2)
    broker.restart()
    received = consume_confluent(broker.bootstrap, "ledger", len(values), partitions=2)
    assert sorted(r.value for _, r in received) == sorted(values)


def test_kill_9_during_acks_all_produce_loses_no_acknowledged_record(kbroker_process):
    from confluent_kafka import Producer

    broker = kbroker_process(**{"log.flush.interval.messages": 1, "num.partitions": 1})
    create_topics_by_metadata(broker.bootstrap, "payments")
    acknowledged: list[tuple[int, bytes]] = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 1,
                         "enable.idempotence": False, "message.timeout.ms": 3000, "retries": 0})

    def on_delivery(error, message):
        if error is None:
            acknowledged.append((message.offset(), message.value()))

    stop = threading.Event()

    def kill_soon():
        while len(acknowledged) < 500 and not stop.is_set():
            time.sleep(0.005)
        broker.kill()

    killer = threading.Thread(target=kill_soon)
    killer.start()
    i = 0
    deadline = time.monotonic() + 30
    while broker.process.poll() is None and time.monotonic() < deadline:
        producer.produce("payments", value=b"payment-%d" % i, on_delivery=on_delivery)
        producer.poll(0)
        i += 1
        if i % 100 == 0:
            time.sleep(0.001)
    stop.set()
    killer.join()
    producer.flush(5)
    assert len(acknowledged) >= 500

    broker.start()
    received = consume_confluent(broker.bootstrap, "payments", len(acknowledged), partitions=1)
    stored = {offset: record.value for offset, record in received}
    for offset, value in acknowledged:
        assert stored.get(offset) == value
    values = [record.value for _, record in received]
    assert len(values) == len(set(values)), "a record was stored twice"


def produce_raw(client: WireClient, topic: str, batch: bytes) -> ProduceRequest:
    request = ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)])])
    return client.request(request, 9).responses[0].partition_responses[0]


def test_a_flipped_byte_is_corrupt_message_and_nothing_is_written(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "orders")
    good = build_batch([Record(b"k", b"first")])
    with WireClient(kbroker.bootstrap) as client:
        assert produce_raw(client, "orders", good).error_code == ErrorCode.NONE
        corrupt = bytearray(build_batch([Record(b"k", b"second")]))
        corrupt[-3] ^= 0x40
        answer = produce_raw(client, "orders", bytes(corrupt))
        assert answer.error_code == ErrorCode.CORRUPT_MESSAGE
        log = kbroker.broker.logs.get("orders", 0)
        assert log.log_end_offset == 1
        third = produce_raw(client, "orders", build_batch([Record(b"k", b"third")]))
        assert (third.error_code, third.base_offset) == (ErrorCode.NONE, 1)
    received = consume_confluent(kbroker.bootstrap, "orders", 2, partitions=1)
    assert [r.value for _, r in received] == [b"first", b"third"]


def test_a_garbage_tail_is_truncated_at_start(kbroker_process):
    broker = kbroker_process(**{"num.partitions": 1})
    create_topics_by_metadata(broker.bootstrap, "events")
    values = [b"event-%d" % i for i in range(200)]
    produce_values(broker.bootstrap, "events", values)
    broker.stop()
    segment = sorted((broker.data_dir / "events-0").glob("*.log"))[-1]
    intact_size = segment.stat().st_size
    with open(segment, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\xc8\x00\x00\x01\x00" + b"torn write" * 7)
    broker.start()
    received = consume_confluent(broker.bootstrap, "events", len(values), partitions=1)
    assert [r.value for _, r in received] == values
    # the log was recovered when it was opened (at first use, or by the background opening at start)
    log_text = broker.log_path.read_text()
    assert "events-0" in log_text and "truncat" in log_text.lower()
    assert segment.stat().st_size == intact_size
    produce_values(broker.bootstrap, "events", [b"after"])
    assert consume_confluent(broker.bootstrap, "events", len(values) + 1, partitions=1)[-1][1].value == b"after"
