"""A client that stops reading its responses is dropped after connections.max.idle.ms, as Kafka expires
a connection with no activity — and the broker serves everyone else meanwhile."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from kbroker.protocol.codec import encode_request
from kbroker.protocol.messages import ApiVersionsRequest, FetchRequest, MetadataRequest, ProduceRequest
from kbroker.protocol.records import Record, build_batch
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata

IDLE_MS = 700


def fetch_request(correlation_id: int, topic: str) -> bytes:
    return encode_request(correlation_id, 11, FetchRequest(
        replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=50 << 20, topics=[FetchRequest.FetchTopic(
            topic=topic, partitions=[FetchRequest.FetchPartition(partition=0, fetch_offset=0,
                                                                 partition_max_bytes=1 << 20)])]))


def produce(client: WireClient, topic: str, value: bytes) -> None:
    response = client.request(ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.PartitionProduceData(index=0, records=build_batch(
            [Record(None, value)]))])]), 9)
    assert response.responses[0].partition_responses[0].error_code == 0


def stall_log_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if "closing idle connection" in r.getMessage() and "took no" in r.getMessage()]


def a_reader_that_stops_is_dropped(broker, caplog, requests: bytes) -> None:
    """Send pipelined requests whose answers fill every socket buffer, read none of them; another
    client keeps being served until the broker drops the stalled one after the idle time."""
    with WireClient(broker.bootstrap) as stalled, WireClient(broker.bootstrap) as other:
        stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        stalled_port = stalled.sock.getsockname()[1]
        with caplog.at_level(logging.INFO, logger="kbroker.server"):
            # the broker stops reading requests while a response is stuck, so the sender blocks too
            sender = threading.Thread(target=send_until_dropped, args=(stalled.sock, requests))
            sender.start()
            started, served_meanwhile = time.monotonic(), 0
            while not stall_log_lines(caplog):
                assert time.monotonic() - started < 15, "the stalled connection was never dropped"
                assert other.request(ApiVersionsRequest(), 3).error_code == 0
                served_meanwhile += 1
                time.sleep(0.05)
            dropped_after = time.monotonic() - started
            sender.join(10)
        (line,) = stall_log_lines(caplog)
        assert f":{stalled_port} on PLAINTEXT (client id 'kbroker')" in line  # from its session
        assert dropped_after >= IDLE_MS / 1000
        assert served_meanwhile >= 5
        assert is_closed(stalled.sock)
        assert other.request(MetadataRequest(topics=None), 12).brokers[0].node_id == 1


def send_until_dropped(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # the broker dropped the connection before taking every request


def is_closed(sock: socket.socket) -> bool:
    """Read what the broker sent before it closed; True once the end (or a reset) arrives."""
    sock.settimeout(5)
    try:
        while sock.recv(1 << 20):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_a_consumer_that_fetches_large_batches_and_never_reads_is_dropped(kbroker_factory, caplog):
    broker = kbroker_factory(**{"connections.max.idle.ms": IDLE_MS})
    create_topics_by_metadata(broker.bootstrap, "videos")
    with WireClient(broker.bootstrap) as producer:
        for _ in range(2):
            produce(producer, "videos", os.urandom(700_000))
    # each answer carries a ~700 KB segment region (sendfile); 40 of them fill any socket buffer
    a_reader_that_stops_is_dropped(broker, caplog, b"".join(fetch_request(i, "videos") for i in range(1, 41)))


def test_a_client_that_pipelines_metadata_and_never_reads_is_dropped(kbroker_factory, caplog):
    broker = kbroker_factory(**{"connections.max.idle.ms": IDLE_MS})
    create_topics_by_metadata(broker.bootstrap, *[f"sensor-readings-{i}" for i in range(30)])
    # each answer is ~1.5 KB of gathered buffers (sendmsg); 20,000 of them fill any socket buffer
    metadata = [encode_request(i, 12, MetadataRequest(topics=None)) for i in range(1, 20_001)]
    a_reader_that_stops_is_dropped(broker, caplog, b"".join(metadata))
