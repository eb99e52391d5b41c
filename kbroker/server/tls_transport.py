"""The TLS transport: trio.SSLStream over the connection's socket stream (a listener whose security
protocol is SSL).

TLS encrypts in user space, so there is no zero-copy path: received plaintext is copied into the
framer's buffer, and a response is sent as bytes, its file regions read from the segment rather
than sent with sendfile. A response's parts are gathered into pieces of about 256 KB, one TLS write
each, a file region read 256 KB at a time, so a 50 MB fetch response never sits in memory whole.

The handshake happens on the first receive, so connections.max.idle.ms bounds it as it bounds any
receive (IdleConnection); a send piece that the peer does not take within connections.max.idle.ms
raises SendStalled. A broken TLS stream (a failed handshake, a peer gone) is reported as
ConnectionResetError, the transports' "peer went away".
"""

from __future__ import annotations

import ssl
from typing import Any, Iterable

import trio

from ..protocol.file_region import FileRegion
from .transport import IdleConnection, SendStalled

PIECE_BYTES = 256 * 1024


class TlsTransport:
    security_protocol = "SSL"

    def __init__(self, stream: trio.SocketStream, context: ssl.SSLContext, idle_seconds: float):
        self.stream = trio.SSLStream(stream, context, server_side=True)
        self.idle_seconds = idle_seconds
        try:
            self._peer = stream.socket.getpeername()[:2]
        except OSError:
            self._peer = ("?", 0)

    def peer(self) -> tuple[str, int]:
        return self._peer

    async def receive_into(self, buffer: memoryview) -> int:
        with trio.move_on_after(self.idle_seconds) as idle:
            try:
                # capped: ssl reads allocate their size up front, and a frame's tail may be 100 MB
                data = await self.stream.receive_some(min(len(buffer), PIECE_BYTES))
            except trio.BrokenResourceError as exc:
                raise ConnectionResetError(f"TLS: {exc.__cause__ or exc}") from exc
        if idle.cancelled_caught:
            raise IdleConnection(f"no bytes for {self.idle_seconds:g} s (connections.max.idle.ms)")
        count = len(data)
        buffer[:count] = data
        return count

    async def send(self, parts: Iterable[Any]) -> None:
        piece = bytearray()
        for part in parts:
            if isinstance(part, FileRegion):
                for data in part.pieces(PIECE_BYTES):
                    piece += data
                    if len(piece) >= PIECE_BYTES:
                        await self._send_piece(piece)
                        piece = bytearray()
            else:
                piece += part
                if len(piece) >= PIECE_BYTES:
                    await self._send_piece(piece)
                    piece = bytearray()
        if piece:
            await self._send_piece(piece)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)

    async def _send_piece(self, piece: bytearray) -> None:
        with trio.move_on_after(self.idle_seconds) as stalled:
            try:
                await self.stream.send_all(piece)
            except trio.BrokenResourceError as exc:
                raise ConnectionResetError(f"TLS: {exc.__cause__ or exc}") from exc
        if stalled.cancelled_caught:
            raise SendStalled(f"the client took no {len(piece)}-byte piece of a response for "
                              f"{self.idle_seconds:g} s (connections.max.idle.ms)")
