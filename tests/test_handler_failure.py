"""A bug in one handler costs the client one connection; the broker and everyone else carry on."""

from __future__ import annotations

import struct

import trio

from kbroker.broker import Broker
from kbroker.cli import STANDALONE_DEFAULTS
from kbroker.config import load_broker_config
from kbroker.handlers import Handler, Registry, default_registry
from kbroker.protocol.codec import decode_response, encode_request
from kbroker.protocol.messages import ApiVersionsRequest, DescribeClusterRequest


async def broken_handler(ctx, request):
    raise RuntimeError("a bug")


async def ask(port: int, body, version: int) -> bytes | None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(encode_request(1, version, body))
        received = b""
        with trio.move_on_after(5):
            while len(received) < 4 or len(received) < 4 + struct.unpack_from(">i", received)[0]:
                chunk = await stream.receive_some()
                if not chunk:
                    return None
                received += chunk
        return received[4:]


async def test_a_failing_handler_closes_only_its_connection(tmp_path):
    config = load_broker_config(None, ["listeners=PLAINTEXT://127.0.0.1:0", f"log.dirs={tmp_path}"],
                                builtin_settings=STANDALONE_DEFAULTS)
    handlers = [h for h in default_registry().handlers() if h.request_class is not DescribeClusterRequest]
    registry = Registry(handlers + [Handler(DescribeClusterRequest, 0, 1, broken_handler)])
    async with trio.open_nursery() as nursery:
        broker = await nursery.start(Broker(config, registry).serve)
        port = broker.advertised_endpoints[0][1]
        assert await ask(port, DescribeClusterRequest(), 1) is None
        _, response = decode_response(await ask(port, ApiVersionsRequest(), 3), 18, 3)
        assert response.error_code == 0
        nursery.cancel_scope.cancel()
