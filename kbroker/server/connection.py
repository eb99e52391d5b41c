"""One client connection: read a request frame, answer it, read the next — as Kafka does.

Kafka reads a connection's next request only after the previous response is on its way (it mutes the
channel meanwhile), so responses go out in request order and a client pipelining requests waits in
its own socket buffer: that is the backpressure. kbroker does the same with one task per connection.

The socket calls are made on the plain non-blocking socket and the task waits on trio only when the
kernel says EAGAIN; a request whose bytes are already here costs one scheduling point (for fairness
and cancellation), not one per syscall. At 2,000 requests/s on one connection the scheduling points
were as costly as the request itself.

A frame that is too large, negative in size, truncated by a closed socket, or that does not decode
closes this connection with one log line; the broker and every other connection go on. OSError from
the socket is the peer going away and ends the connection quietly.
"""

from __future__ import annotations

import logging
import socket
import struct
import trio

from ..handlers.context import Services
from ..handlers.registry import CloseConnection
from ..protocol.errors import ProtocolError
from .dispatch import dispatch
from .sending import ShortFileRegion, send_parts
from .session import Session

log = logging.getLogger("kbroker.server")

_SIZE = struct.Struct(">i")
# Small on purpose: a frame that does not fit gets a buffer of its own (filled straight from the socket),
# so this one only ever holds size prefixes and small requests — and 1,000 idle connections cost 16 MB.
READ_BUFFER_BYTES = 16 * 1024


class FrameTooLarge(Exception):
    pass


class TruncatedFrame(Exception):
    pass


class IdleConnection(Exception):
    pass


class FrameReader:
    """Reads length-prefixed frames from a non-blocking socket with as few copies as possible."""

    def __init__(self, sock: socket.socket, max_frame_bytes: int, idle_seconds: float):
        self.sock = sock
        self.max_frame_bytes = max_frame_bytes
        self.idle_seconds = idle_seconds
        self.buf = bytearray(READ_BUFFER_BYTES)
        self.view = memoryview(self.buf)
        self.start = self.end = 0

    async def _recv_into(self, view: memoryview) -> int:
        while True:
            try:
                return self.sock.recv_into(view)
            except BlockingIOError:
                pass
            with trio.move_on_after(self.idle_seconds) as idle:
                await trio.lowlevel.wait_readable(self.sock)
            if idle.cancelled_caught:
                raise IdleConnection(f"no bytes for {self.idle_seconds:g} s (connections.max.idle.ms)")

    async def _fill(self) -> int:
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end == len(self.buf):
            pending = self.end - self.start
            self.buf[:pending] = self.buf[self.start:self.end]
            self.start, self.end = 0, pending
        received = await self._recv_into(self.view[self.end:])
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
            received = await self._recv_into(view[have:])
            if not received:
                raise TruncatedFrame(f"connection closed after {have} of {size} frame bytes")
            have += received
        return view


class Connection:
    def __init__(self, services: Services, stream: trio.SocketStream, *, max_frame_bytes: int,
                 idle_seconds: float):
        self.services = services
        self.max_frame_bytes = max_frame_bytes
        self.idle_seconds = idle_seconds
        # the plain socket: this module makes the non-blocking calls itself and waits on trio only on EAGAIN
        self.sock = socket.socket(fileno=stream.socket.detach())
        self.sock.setblocking(False)
        try:
            self.peer = self.sock.getpeername()[:2]
        except OSError:
            self.peer = ("?", 0)
        self.session = Session(*self.peer)

    async def serve(self) -> None:
        try:
            await self._serve_requests()
        except (FrameTooLarge, TruncatedFrame, ProtocolError, CloseConnection, ShortFileRegion) as exc:
            log.warning("closing connection from %s:%s: %s", *self.peer, exc)
        except IdleConnection as exc:
            log.info("closing idle connection from %s:%s: %s", *self.peer, exc)
        except OSError:
            pass  # the peer went away
        finally:
            trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    async def _serve_requests(self) -> None:
        services, session = self.services, self.session
        reader = FrameReader(self.sock, self.max_frame_bytes, self.idle_seconds)
        while True:
            # one scheduling point per request: other connections get their turn, and cancellation lands
            await trio.lowlevel.checkpoint()
            frame = await reader.read_frame()
            if frame is None:
                return
            try:
                parts = await dispatch(services, session, frame)
            except (ProtocolError, CloseConnection):
                raise
            except Exception:  # a handler bug must cost one connection, never the broker
                log.exception("closing connection from %s:%s after an internal error", *self.peer)
                return
            if parts is not None:
                await send_parts(self.sock, parts)
