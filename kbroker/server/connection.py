"""One client connection: a reader task that frames requests, and a processor that answers them.

The reader pulls bytes with recv_into into a reusable buffer and hands each complete frame (its own
bytearray, so later reads never overwrite it) to the processor through a bounded channel: the server
keeps reading while a request is being served, and stops reading when the channel is full
(backpressure). The processor answers strictly in request order, as Kafka does.

A frame that is too large, negative in size, truncated by a closed socket, or that does not decode
closes this connection with one log line; the broker and every other connection go on. OSError and
trio's broken/closed-stream errors are the peer going away and end the connection quietly.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

import trio

from ..protocol.errors import ProtocolError
from ..handlers.registry import CloseConnection
from .dispatch import dispatch
from .sending import send_parts

if TYPE_CHECKING:
    from ..broker import Broker

log = logging.getLogger("kbroker.server")

_SIZE = struct.Struct(">i")
# Small on purpose: a frame that does not fit gets a buffer of its own (filled straight from the socket),
# so this one only ever holds size prefixes and small requests — and 1,000 idle connections cost 16 MB.
READ_BUFFER_BYTES = 16 * 1024
QUEUED_REQUESTS_PER_CONNECTION = 16
PEER_GONE = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class FrameTooLarge(Exception):
    pass


class TruncatedFrame(Exception):
    pass


class FrameReader:
    """Reads length-prefixed frames from a trio socket with as few copies as possible."""

    def __init__(self, sock: trio.socket.SocketType, max_frame_bytes: int):
        self.sock = sock
        self.max_frame_bytes = max_frame_bytes
        self.buf = bytearray(READ_BUFFER_BYTES)
        self.view = memoryview(self.buf)
        self.start = self.end = 0

    async def _fill(self) -> int:
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end == len(self.buf):
            pending = self.end - self.start
            self.buf[:pending] = self.buf[self.start:self.end]
            self.start, self.end = 0, pending
        received = await self.sock.recv_into(self.view[self.end:])
        self.end += received
        return received

    async def read_frame(self) -> memoryview | None:
        """The next frame's bytes (size prefix removed), or None at a clean end of stream."""
        while self.end - self.start < 4:
            if not await self._fill():
                if self.end > self.start:
                    raise TruncatedFrame("connection closed inside a frame's size prefix")
                return None
        size = _SIZE.unpack_from(self.buf, self.start)[0]
        if size < 0 or size > self.max_frame_bytes:
            raise FrameTooLarge(f"frame of {size} bytes (socket.request.max.bytes={self.max_frame_bytes})")
        self.start += 4
        frame = bytearray(size)
        have = min(size, self.end - self.start)
        frame[:have] = self.view[self.start:self.start + have]
        self.start += have
        view = memoryview(frame)
        while have < size:
            received = await self.sock.recv_into(view[have:])
            if not received:
                raise TruncatedFrame(f"connection closed after {have} of {size} frame bytes")
            have += received
        return view


class Connection:
    def __init__(self, broker: Broker, stream: trio.SocketStream):
        self.broker = broker
        self.sock = stream.socket
        self.stream = stream
        try:
            self.peer = self.sock.getpeername()[:2]
        except OSError:
            self.peer = ("?", 0)

    async def serve(self) -> None:
        send_frames, receive_frames = trio.open_memory_channel[memoryview](QUEUED_REQUESTS_PER_CONNECTION)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_frames, send_frames)
                await self._process(receive_frames)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _read_frames(self, frames: trio.MemorySendChannel) -> None:
        reader = FrameReader(self.sock, self.broker.socket_request_max_bytes)
        idle_seconds = self.broker.connections_max_idle_ms / 1000
        async with frames:
            try:
                while True:
                    with trio.move_on_after(idle_seconds) as idle:
                        frame = await reader.read_frame()
                    if idle.cancelled_caught:
                        log.info("closing idle connection from %s:%s", *self.peer)
                        return
                    if frame is None:
                        return
                    await frames.send(frame)
            except (FrameTooLarge, TruncatedFrame) as exc:
                log.warning("closing connection from %s:%s: %s", *self.peer, exc)
            except PEER_GONE:
                pass

    async def _process(self, frames: trio.MemoryReceiveChannel) -> None:
        async with frames:
            async for frame in frames:
                try:
                    parts = await dispatch(self.broker, frame, self.peer)
                except (ProtocolError, CloseConnection) as exc:
                    log.warning("closing connection from %s:%s: %s", *self.peer, exc)
                    return
                except Exception:  # a handler bug must cost one connection, never the broker
                    log.exception("closing connection from %s:%s after an internal error", *self.peer)
                    return
                if parts is None:
                    continue
                try:
                    await send_parts(self.sock, parts)
                except PEER_GONE:
                    return
