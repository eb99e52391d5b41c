"""What the broker refuses or rewrites on produce, as Kafka does: idempotent retries, sequence gaps,
fenced epochs, old message formats, oversized batches, LogAppendTime topics."""

from __future__ import annotations

import struct
import time

import pytest

from kbroker.protocol.errors import ErrorCode
from kbroker.protocol.messages import InitProducerIdRequest
from kbroker.protocol.records import Record, build_batch
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata
from tests.test_durability import produce_raw
from tests.test_produce_consume import consume_confluent


def idempotent_batch(producer_id: int, epoch: int, sequence: int, value: bytes) -> bytes:
    return build_batch([Record(None, value)], producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence)


def test_idempotent_retries_gaps_and_fenced_epochs(kbroker_process):
    broker = kbroker_process()
    create_topics_by_metadata(broker.bootstrap, "ledger")
    with WireClient(broker.bootstrap) as client:
        pid = client.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1), 4).producer_id
        first = produce_raw(client, "ledger", idempotent_batch(pid, 0, 0, b"a"))
        second = produce_raw(client, "ledger", idempotent_batch(pid, 0, 1, b"b"))
        retry = produce_raw(client, "ledger", idempotent_batch(pid, 0, 0, b"a"))
        assert (first.base_offset, second.base_offset, retry.error_code, retry.base_offset) == (0, 1, 0, 0)
        gap = produce_raw(client, "ledger", idempotent_batch(pid, 0, 5, b"gap"))
        assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce_raw(client, "ledger", idempotent_batch(pid, 1, 0, b"c")).error_code == ErrorCode.NONE
        fenced = produce_raw(client, "ledger", idempotent_batch(pid, 0, 2, b"stale"))
        assert fenced.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    broker.restart()  # producer state is rebuilt from the log
    with WireClient(broker.bootstrap) as client:
        again = produce_raw(client, "ledger", idempotent_batch(pid, 1, 0, b"c"))
        assert (again.error_code, again.base_offset) == (ErrorCode.NONE, 2)
        assert produce_raw(client, "ledger", idempotent_batch(pid, 1, 1, b"d")).base_offset == 3
    assert [r.value for _, r in consume_confluent(broker.bootstrap, "ledger", 4, partitions=1)] == [b"a", b"b", b"c", b"d"]


def test_producer_ids_are_never_reused_across_restarts(kbroker_process):
    broker = kbroker_process()
    with WireClient(broker.bootstrap) as client:
        before = {client.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1), 4).producer_id for _ in range(5)}
    broker.restart()
    with WireClient(broker.bootstrap) as client:
        after = client.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1), 4).producer_id
    assert len(before) == 5 and after not in before and after > max(before)


def legacy_message_set() -> bytes:
    """A magic-1 message set, as a 0.10 client would send."""
    body = struct.pack(">bbq", 1, 0, int(time.time() * 1000)) + struct.pack(">i", -1) + struct.pack(">i", 5) + b"hello"
    import zlib
    message = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", 0, len(message)) + message


def test_old_message_formats_are_invalid_record(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "old")
    with WireClient(kbroker.bootstrap) as client:
        answer = produce_raw(client, "old", legacy_message_set())
    # as Kafka 4: rejected before the log is touched, with no message and no log start offset
    assert (answer.error_code, answer.error_message, answer.log_start_offset) == (ErrorCode.INVALID_RECORD, None, -1)


def test_a_batch_over_max_message_bytes_is_message_too_large(kbroker):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic("small", 1, 1, config={"max.message.bytes": "2000"})])["small"].result(10)
    producer = Producer({"bootstrap.servers": kbroker.bootstrap, "message.max.bytes": 100_000})
    errors = []
    producer.produce("small", value=b"x" * 5000, on_delivery=lambda error, _: errors.append(error))
    producer.flush(10)
    producer.produce("small", value=b"fits", on_delivery=lambda error, _: errors.append(error))
    producer.flush(10)
    assert [e.name() if e else None for e in errors] == ["MSG_SIZE_TOO_LARGE", None]
    assert [r.value for _, r in consume_confluent(kbroker.bootstrap, "small", 1, partitions=1)] == [b"fits"]


def test_log_append_time_topics_stamp_the_broker_clock(kbroker):
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic("stamped", 1, 1, config={"message.timestamp.type": "LogAppendTime"})])["stamped"].result(10)
    producer = Producer({"bootstrap.servers": kbroker.bootstrap})
    before = int(time.time() * 1000)
    producer.produce("stamped", value=b"v", timestamp=1_000)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": kbroker.bootstrap, "group.id": "stamps"})
    consumer.assign([TopicPartition("stamped", 0, 0)])
    message = consumer.poll(10)
    consumer.close()
    kind, timestamp = message.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME
    assert before - 1000 <= timestamp <= int(time.time() * 1000) + 1000


@pytest.mark.parametrize("acks", [2, -2])
def test_invalid_acks(kbroker, acks):
    from kbroker.protocol.messages import ProduceRequest

    create_topics_by_metadata(kbroker.bootstrap, "acks")
    with WireClient(kbroker.bootstrap) as client:
        request = ProduceRequest(acks=acks, timeout_ms=1000, topic_data=[ProduceRequest.TopicProduceData(
            name="acks", partition_data=[ProduceRequest.PartitionProduceData(index=0, records=build_batch([Record(None, b"x")]))])])
        answer = client.request(request, 9).responses[0].partition_responses[0]
    assert answer.error_code == ErrorCode.INVALID_REQUIRED_ACKS


def test_acks_0_gets_no_response_and_a_failure_closes_the_connection(kbroker):
    from kbroker.protocol.codec import encode_request
    from kbroker.protocol.messages import ApiVersionsRequest, ProduceRequest

    create_topics_by_metadata(kbroker.bootstrap, "fire-and-forget")

    def produce_frame(correlation_id: int, topic: str) -> bytes:
        return encode_request(correlation_id, 9, ProduceRequest(acks=0, timeout_ms=1000, topic_data=[
            ProduceRequest.TopicProduceData(name=topic, partition_data=[ProduceRequest.PartitionProduceData(
                index=0, records=build_batch([Record(None, b"x")]))])]))

    with WireClient(kbroker.bootstrap) as client:
        client.send_raw(produce_frame(1, "fire-and-forget") + encode_request(2, 3, ApiVersionsRequest()))
        assert struct.unpack_from(">i", client.read_frame())[0] == 2  # the next response is the next request's
        client.send_raw(produce_frame(3, "no-such-topic"))
        assert client.is_closed_by_peer()
    assert kbroker.broker.logs.get("fire-and-forget", 0).log_end_offset == 1
