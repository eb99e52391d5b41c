"""What a connection needs from its byte stream, whatever carries it: receive into a buffer it lends,
send a response's parts, close. Two transports implement it: the plain socket
(kbroker.server.socket_transport: recv_into, sendmsg, sendfile) and TLS
(kbroker.server.tls_transport: trio.SSLStream). The connection loop uses only these calls.

Both apply connections.max.idle.ms in both directions, as Kafka expires a connection with no
activity: a receive that waits that long for a byte raises IdleConnection, and a send that makes no
progress that long (the peer stopped reading) raises SendStalled. A peer that went away raises
OSError (the TLS transport turns trio's BrokenResourceError into ConnectionResetError).
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol


class IdleConnection(Exception):
    """Nothing moved on the connection for connections.max.idle.ms."""


class SendStalled(IdleConnection):
    """The peer accepted no byte of a response for connections.max.idle.ms."""


class Transport(Protocol):
    security_protocol: str

    def peer(self) -> tuple[str, int]:
        """The client's (host, port)."""

    async def receive_into(self, buffer: memoryview) -> int:
        """Wait for bytes and write them at the start of buffer; 0 at the end of the stream."""

    async def send(self, parts: Iterable[Any]) -> None:
        """Send a response: buffers (bytes-like) and FileRegions, in order."""

    async def aclose(self) -> None:
        """Close at once, without waiting for the peer (safe when cancelled)."""
