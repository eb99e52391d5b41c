"""BrokerChannel: one broker's connection to another, speaking the Kafka protocol with kbroker's own
codec and framer (a follower's fetches and OffsetForLeaderEpoch go to the leader this way, as
Kafka's replica fetcher threads do over the inter-broker listener).

One request at a time: the fetcher waits for each answer before it asks again, so there is no
pipelining to keep in order. Every wait is the caller's: a request is bounded by the cancel scope
around it (the fetcher gives each one a deadline). Any failure -- refused connection, reset, a
closed socket, an undecodable answer -- raises OSError-like ``ChannelClosed`` and the channel is
unusable; the caller opens a new one.
"""

from __future__ import annotations

from typing import Any

import trio

from ..protocol.codec import decode_response, encode_request
from ..protocol.errors import ProtocolError
from ..protocol.framing import Framer

MAX_RESPONSE_BYTES = 1 << 30


class ChannelClosed(Exception):
    pass


class BrokerChannel:
    def __init__(self, stream: trio.SocketStream, client_id: str):
        self._stream = stream
        self._client_id = client_id
        self._framer = Framer(MAX_RESPONSE_BYTES)
        self._correlation_id = 0

    @classmethod
    async def connect(cls, host: str, port: int, client_id: str) -> BrokerChannel:
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise ChannelClosed(f"cannot connect to {host}:{port}: {exc}") from exc
        return cls(stream, client_id)

    async def request(self, body: Any, version: int) -> Any:
        self._correlation_id += 1
        try:
            await self._stream.send_all(encode_request(self._correlation_id, version, body, self._client_id))
            while (frame := self._framer.next_frame()) is None:
                received = await self._stream.socket.recv_into(self._framer.receive_buffer())
                if not received:
                    raise ChannelClosed("connection closed by the broker")
                self._framer.received(received)
            correlation_id, response = decode_response(frame, body.API_KEY, version)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError) as exc:
            raise ChannelClosed(str(exc)) from exc
        if correlation_id != self._correlation_id:
            raise ChannelClosed(f"answer {correlation_id} to request {self._correlation_id}")
        return response

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self._stream.aclose()
