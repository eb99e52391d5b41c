"""Kafka over TLS: the broker's connections served through the TLS transport (trio.SSLStream) answer a
real TLS client as they answer plain ones — ApiVersions, and a Fetch whose records come from a segment
file region (read and encrypted, since sendfile cannot carry TLS). SSL:// listeners are not wired to
Kafka's ssl.* configs yet, so the test puts a TLS listener of its own in front of the broker's services.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import ssl
import threading
import time

import pytest
import trio
import trustme

from kbroker.broker import Broker
from kbroker.cli import STANDALONE_DEFAULTS
from kbroker.config import load_broker_config
from kbroker.handlers import Registry, default_registry
from kbroker.protocol.codec import encode_request
from kbroker.protocol.messages import ApiVersionsRequest, FetchRequest, MetadataRequest, ProduceRequest
from kbroker.protocol.records import Record, build_batch, decode_batch_records, iter_batches
from kbroker.server.connection import Connection
from kbroker.server.tls_transport import TlsTransport
from tests.kafka_wire import WireClient
from tests.test_transport import send_until_dropped, stall_log_lines


class TlsListener:
    """A loopback TLS listener whose connections the broker serves through the TLS transport."""

    def __init__(self, broker: Broker, context: ssl.SSLContext, idle_seconds: float = 10):
        self.broker, self.context, self.idle_seconds = broker, context, idle_seconds
        self.port = 0

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(self._serve_connection, listeners, task_status=task_status)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        transport = TlsTransport(stream, self.context, self.idle_seconds)
        await Connection(self.broker.services, transport, listener_name="SSL",
                         max_frame_bytes=self.broker.config.socket_request_max_bytes).serve()


@pytest.fixture
def certificates():
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


async def start_broker(nursery, tmp_path, server_context, registry=None) -> tuple[Broker, TlsListener]:
    config = load_broker_config(None, ["listeners=PLAINTEXT://127.0.0.1:0", f"log.dirs={tmp_path}"],
                                builtin_settings=STANDALONE_DEFAULTS)
    broker = await nursery.start(Broker(config, registry).serve)
    tls = TlsListener(broker, server_context)
    await nursery.start(tls.serve)
    return broker, tls


def fetch(client: WireClient, topic: str) -> FetchRequest:
    return client.request(FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=50 << 20, topics=[
        FetchRequest.FetchTopic(topic=topic, partitions=[
            FetchRequest.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])]), 11)


async def test_a_tls_client_is_answered_api_versions_and_fetches_segment_bytes(tmp_path, certificates):
    server_context, client_context = certificates
    # a value larger than the plain transport's sendfile threshold and the TLS piece size
    values = [os.urandom(300_000), b"second"]

    def story(tls_bootstrap: str) -> bytes:
        with WireClient(tls_bootstrap, ssl_context=client_context) as client:
            assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
            versions = client.request(ApiVersionsRequest(client_software_name="tls-test",
                                                         client_software_version="1"), 3)
            assert versions.error_code == 0
            assert {k.api_key for k in versions.api_keys} >= {0, 1, 3, 18}
            metadata = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="secrets")],
                                                      allow_auto_topic_creation=True), 9)
            assert metadata.topics[0].error_code == 0
            for value in values:
                produced = client.request(ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[
                    ProduceRequest.TopicProduceData(name="secrets", partition_data=[
                        ProduceRequest.PartitionProduceData(index=0, records=build_batch([Record(b"k", value)]))])]), 9)
                assert produced.responses[0].partition_responses[0].error_code == 0
            partition = fetch(client, "secrets").responses[0].partitions[0]
            assert (partition.error_code, partition.high_watermark) == (0, 2)
            data = memoryview(bytes(partition.records))
            records = [r for h in iter_batches(data) for r in decode_batch_records(data[h.position:h.position + h.size])]
            assert [r.value for r in records] == values
            return bytes(partition.records)

    async with trio.open_nursery() as nursery:
        broker, tls = await start_broker(nursery, tmp_path, server_context)
        over_tls = await trio.to_thread.run_sync(story, f"127.0.0.1:{tls.port}")
        with WireClient(broker.bootstrap) as plain:  # the plain transport sends the same region by sendfile
            over_plain = await trio.to_thread.run_sync(fetch, plain, "secrets")
        assert bytes(over_plain.responses[0].partitions[0].records) == over_tls
        nursery.cancel_scope.cancel()


async def test_a_handler_sees_who_is_asking_and_how_they_came_in(tmp_path, certificates):
    """Every request's context carries its connection's session: the client's address, the listener
    and its security protocol, the principal (ANONYMOUS until SASL), and the client id."""
    server_context, client_context = certificates
    seen = []
    registry = default_registry()
    api_versions = registry.get(ApiVersionsRequest.API_KEY)

    async def recording_api_versions(ctx, request):
        session = ctx.session
        seen.append((session.listener_name, session.security_protocol, session.principal, session.client_id,
                     session.client_host, session.client_port))
        return await api_versions.handle(ctx, request)

    registry = Registry([h for h in registry.handlers() if h is not api_versions]
                        + [dataclasses.replace(api_versions, handle=recording_api_versions)])

    def story(plain_bootstrap: str, tls_bootstrap: str) -> list[int]:
        with WireClient(plain_bootstrap) as plain, WireClient(tls_bootstrap, ssl_context=client_context) as tls:
            assert plain.request(ApiVersionsRequest(), 3, client_id="billing").error_code == 0
            assert tls.request(ApiVersionsRequest(), 3, client_id="audit").error_code == 0
            return [plain.sock.getsockname()[1], tls.sock.getsockname()[1]]

    async with trio.open_nursery() as nursery:
        broker, tls = await start_broker(nursery, tmp_path, server_context, registry)
        plain_port, tls_port = await trio.to_thread.run_sync(story, broker.bootstrap, f"127.0.0.1:{tls.port}")
        nursery.cancel_scope.cancel()
    assert seen == [("PLAINTEXT", "PLAINTEXT", "User:ANONYMOUS", "billing", "127.0.0.1", plain_port),
                    ("SSL", "SSL", "User:ANONYMOUS", "audit", "127.0.0.1", tls_port)]


async def test_a_plaintext_client_on_the_tls_listener_is_disconnected(tmp_path, certificates):
    server_context, client_context = certificates

    def story(tls_bootstrap: str) -> None:
        with WireClient(tls_bootstrap) as confused:  # no TLS: its request is no TLS handshake
            confused.send_raw(b"\x00\x00\x00\x0a" + b"\x00\x12\x00\x03\x00\x00\x00\x01\xff\xff")
            assert confused.is_closed_by_peer()
        with WireClient(tls_bootstrap, ssl_context=client_context) as client:
            assert client.request(ApiVersionsRequest(), 3).error_code == 0

    async with trio.open_nursery() as nursery:
        _, tls = await start_broker(nursery, tmp_path, server_context)
        await trio.to_thread.run_sync(story, f"127.0.0.1:{tls.port}")
        nursery.cancel_scope.cancel()


async def test_a_tls_client_that_stops_reading_is_dropped(tmp_path, certificates, caplog):
    server_context, client_context = certificates
    flood = b"".join(encode_request(i, 12, MetadataRequest(topics=None)) for i in range(2, 100_000))

    def story(tls_bootstrap: str) -> int:
        with WireClient(tls_bootstrap, ssl_context=client_context) as stalled, \
                WireClient(tls_bootstrap, ssl_context=client_context) as other:
            assert stalled.request(ApiVersionsRequest(), 3).error_code == 0
            stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sender = threading.Thread(target=send_until_dropped, args=(stalled.sock, flood))
            sender.start()  # and never reads an answer
            served_meanwhile, deadline = 0, time.monotonic() + 15
            while not stall_log_lines(caplog):
                assert time.monotonic() < deadline, "the stalled TLS connection was never dropped"
                assert other.request(ApiVersionsRequest(), 3).error_code == 0
                served_meanwhile += 1
                time.sleep(0.05)
            sender.join(10)
            return served_meanwhile

    async with trio.open_nursery() as nursery:
        _, tls = await start_broker(nursery, tmp_path, server_context)
        tls.idle_seconds = 0.5
        with caplog.at_level(logging.INFO, logger="kbroker.server"):
            served_meanwhile = await trio.to_thread.run_sync(story, f"127.0.0.1:{tls.port}")
        nursery.cancel_scope.cancel()
    assert served_meanwhile >= 5
    (line,) = stall_log_lines(caplog)
    assert " on SSL" in line
