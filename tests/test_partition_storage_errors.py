"""A disk that fills up under one partition: its producers are told KAFKA_STORAGE_ERROR (56), as Kafka
tells them, and the broker keeps serving every other partition on the same connection. (What a full
disk does beyond that — taking the log dir offline, recovering — is the reliability issue's.)"""

from __future__ import annotations

import errno
import os

import pytest

from kbroker.broker import Broker
from kbroker.cli import STANDALONE_DEFAULTS
from kbroker.config import load_broker_config
from kbroker.handlers.context import RequestContext
from kbroker.handlers.produce import handle_produce
from kbroker.protocol.errors import ApiError, ErrorCode
from kbroker.protocol.messages import FetchRequest, MetadataRequest, ProduceRequest
from kbroker.protocol.messages.request_header import RequestHeader
from kbroker.log import files as log_files
from kbroker.protocol.records import Record, build_batch
from kbroker.server.session import Session
from kbroker.testing import TEST_DEFAULTS
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata


def disk_full_under(monkeypatch, directory) -> None:
    """Writes to files under ``directory`` fail with ENOSPC, as on a full disk; others go through."""
    real_write = os.write
    prefix = os.path.realpath(directory) + os.sep

    def write(fd, data):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if path.startswith(prefix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(log_files, "write", write)  # the log's appends look the call up there


def produce_request(topic: str, batches: dict[int, bytes], acks: int = -1) -> ProduceRequest:
    return ProduceRequest(acks=acks, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.PartitionProduceData(index=i, records=b)
                                    for i, b in batches.items()])])


def answers(response) -> dict[int, tuple[int, int]]:
    """partition -> (error code, base offset)"""
    return {p.index: (p.error_code, p.base_offset) for t in response.responses for p in t.partition_responses}


def batch(value: bytes) -> bytes:
    return build_batch([Record(None, value)])


def log_refuses_with_storage_error(monkeypatch, partition_log) -> None:
    """The log's own answer to a failed write (its StorageError is an ApiError with code 56)."""
    def append(*args, **kwargs):
        raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, "No space left on device")

    monkeypatch.setattr(partition_log, "append", append)


@pytest.mark.parametrize("failure", ["ENOSPC from the disk", "StorageError from the log"])
async def test_a_produce_to_a_full_disk_partition_fails_alone(tmp_path, monkeypatch, caplog, failure):
    settings = {**TEST_DEFAULTS, "log.dirs": str(tmp_path)}
    broker = Broker(load_broker_config(None, [f"{k}={v}" for k, v in settings.items()],
                                       builtin_settings=STANDALONE_DEFAULTS))
    try:
        await broker.topics.create_topic("orders", 2)
        ctx = RequestContext(broker.services, RequestHeader(0, 9, 1, "producer"), Session("127.0.0.1", 50000))
        full = broker.logs.get("orders", 0)
        if failure == "ENOSPC from the disk":
            disk_full_under(monkeypatch, full.directory)
        else:
            log_refuses_with_storage_error(monkeypatch, full)
        response = await handle_produce(ctx, produce_request("orders", {0: batch(b"lost"), 1: batch(b"kept")}))
        assert answers(response) == {0: (ErrorCode.KAFKA_STORAGE_ERROR, -1), 1: (ErrorCode.NONE, 0)}
        assert response.responses[0].partition_responses[0].log_start_offset == -1  # as Kafka: not known
        orders = broker.metadata.get("orders")
        assert [broker.partitions.partition(orders, i).high_watermark for i in (0, 1)] == [0, 1]
        if failure == "ENOSPC from the disk":
            assert "Storage error on partition orders-0" in caplog.text  # an operator must act
    finally:
        monkeypatch.undo()  # the disk has room again for a clean close
        broker.logs.close()


def test_a_client_is_told_56_and_its_connection_keeps_serving(kbroker_factory, monkeypatch):
    kbroker = kbroker_factory(**{"num.partitions": 2})
    create_topics_by_metadata(kbroker.bootstrap, "orders")
    with WireClient(kbroker.bootstrap) as client:
        disk_full_under(monkeypatch, kbroker.broker.logs.get("orders", 0).directory)
        first = client.request(produce_request("orders", {0: batch(b"lost"), 1: batch(b"kept")}), 9)
        assert answers(first) == {0: (ErrorCode.KAFKA_STORAGE_ERROR, -1), 1: (ErrorCode.NONE, 0)}
        # the same connection goes on: more produce, a fetch of what was kept, metadata
        again = client.request(produce_request("orders", {0: batch(b"lost too"), 1: batch(b"kept too")}), 9)
        assert answers(again) == {0: (ErrorCode.KAFKA_STORAGE_ERROR, -1), 1: (ErrorCode.NONE, 1)}
        fetched = client.request(FetchRequest(max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, topics=[
            FetchRequest.FetchTopic(topic="orders", partitions=[
                FetchRequest.FetchPartition(partition=p, fetch_offset=0, partition_max_bytes=1 << 20)
                for p in (0, 1)])]), 12)
        by_partition = {p.partition_index: p for p in fetched.responses[0].partitions}
        assert (by_partition[0].error_code, by_partition[0].high_watermark) == (ErrorCode.NONE, 0)
        assert (by_partition[1].error_code, by_partition[1].high_watermark) == (ErrorCode.NONE, 2)
        assert len(bytes(by_partition[1].records)) > 0
        topics = client.request(MetadataRequest(topics=None), 9).topics
        assert "orders" in {t.name for t in topics}


def test_a_confluent_producer_gets_kafka_storage_error_for_the_full_partition_only(kbroker_factory, monkeypatch):
    from confluent_kafka import KafkaError, Producer

    kbroker = kbroker_factory(**{"num.partitions": 2})
    create_topics_by_metadata(kbroker.bootstrap, "orders")
    disk_full_under(monkeypatch, kbroker.broker.logs.get("orders", 0).directory)
    producer = Producer({"bootstrap.servers": kbroker.bootstrap, "enable.idempotence": False, "retries": 0,
                         "linger.ms": 0})
    reports = {}

    def delivered(error, message):
        reports[message.partition()] = error

    producer.produce("orders", b"lost", partition=0, on_delivery=delivered)
    producer.produce("orders", b"kept", partition=1, on_delivery=delivered)
    assert producer.flush(30) == 0
    assert reports[0] is not None and reports[0].code() == KafkaError.KAFKA_STORAGE_ERROR
    assert reports[1] is None
    producer.produce("orders", b"kept too", partition=1, on_delivery=delivered)
    assert producer.flush(30) == 0 and reports[1] is None
    assert kbroker.broker.logs.get("orders", 1).log_end_offset == 2
