"""Size-prefixed frames out of a byte stream. Sans-IO: no sockets, no trio.

A Kafka frame is an int32 size followed by that many bytes. The framer owns the receive buffers and
lends them to whoever does the IO, so bytes are received straight into place (recv_into) and copied
at most once:

    while (frame := framer.next_frame()) is None:
        received = recv_into(framer.receive_buffer())   # the transport's call
        if not received:
            framer.end_of_stream()   # raises TruncatedFrame inside a frame; else the stream ended cleanly
            ...
        framer.received(received)

A small reusable buffer (16 KB) holds size prefixes and small pipelined frames; each frame is copied
out of it into a bytearray of its own, because a handler may keep views into its request (a group
member's metadata, a produced batch) after the next request is read. A frame not yet complete in the
small buffer gets its own buffer at once, and receive_buffer() then lends its unfilled tail, so a large
produce is received straight from the socket into the frame with no copy at all. The small buffer
keeps 1,000 idle connections at 16 MB.

Memory follows the bytes received, not the sizes announced: a frame up to 1 MiB (a producer's default
max.request.size) gets its whole buffer at once, a larger one is received into chunks that double as
they fill (1, 1, 2, 4 ... MiB) and joined once complete — one copy, for frames that large only. So a
peer announcing 99 MB and sending 20 bytes costs 1 MiB, not 99 MB.

A size below zero or above socket.request.max.bytes raises FrameTooLarge before anything is
allocated; a stream that ends inside a frame raises TruncatedFrame. Both are ProtocolErrors: the
connection is closed.
"""

from __future__ import annotations

import struct

from .errors import ErrorCode, ProtocolError

_SIZE = struct.Struct(">i")
RECEIVE_BUFFER_BYTES = 16 * 1024
WHOLE_FRAME_BYTES = 1 << 20  # frames up to this size get their buffer at once; larger ones grow


class FrameTooLarge(ProtocolError):
    """A size prefix below zero or above socket.request.max.bytes (Kafka's InvalidReceiveException)."""

    def __init__(self, message: str):
        super().__init__(message, ErrorCode.INVALID_REQUEST)


class TruncatedFrame(ProtocolError):
    """The stream ended inside a frame."""


class _LargeFrame:
    """A frame above WHOLE_FRAME_BYTES, received into chunks that double as they fill."""

    __slots__ = ("size", "chunks", "have", "_chunk", "_chunk_have")

    def __init__(self, size: int, first: memoryview):
        self.size = size
        self.chunks: list[bytearray] = []
        self.have = 0
        self._chunk = bytearray(WHOLE_FRAME_BYTES)
        self._chunk_have = 0
        self.add(first)

    def add(self, data: memoryview) -> None:
        self._chunk[:len(data)] = data
        self.received(len(data))

    def buffer(self) -> memoryview:
        return memoryview(self._chunk)[self._chunk_have:]

    def received(self, count: int) -> None:
        self.have += count
        self._chunk_have += count
        if self._chunk_have == len(self._chunk):
            self.chunks.append(self._chunk)
            remaining = self.size - self.have
            self._chunk = bytearray(min(remaining, max(WHOLE_FRAME_BYTES, self.have))) if remaining else None
            self._chunk_have = 0

    def complete(self) -> memoryview:
        if self._chunk is not None:  # the last chunk was the exact rest, so it is full
            self.chunks.append(self._chunk)
        return memoryview(bytearray().join(self.chunks))


class Framer:
    __slots__ = ("max_frame_bytes", "_buf", "_view", "_start", "_end", "_frame", "_have", "_large")

    def __init__(self, max_frame_bytes: int, buffer_bytes: int = RECEIVE_BUFFER_BYTES):
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray(buffer_bytes)
        self._view = memoryview(self._buf)
        self._start = self._end = 0  # unread bytes of the small buffer
        self._frame: memoryview | None = None  # a frame being filled straight from the stream
        self._have = 0  # how much of it is filled
        self._large: _LargeFrame | None = None  # or a frame above WHOLE_FRAME_BYTES being filled

    def next_frame(self) -> memoryview | None:
        """The next complete frame (without its size prefix), or None when more bytes are needed."""
        frame = self._frame
        if frame is not None:
            if self._have < len(frame):
                return None
            self._frame = None
            return frame
        large = self._large
        if large is not None:
            if large.have < large.size:
                return None
            self._large = None
            return large.complete()
        start = self._start
        if self._end - start < 4:
            return None
        size = _SIZE.unpack_from(self._buf, start)[0]
        if size < 0 or size > self.max_frame_bytes:
            raise FrameTooLarge(f"frame of {size} bytes (socket.request.max.bytes={self.max_frame_bytes})")
        start += 4
        have = min(size, self._end - start)
        if size > WHOLE_FRAME_BYTES:
            self._large = _LargeFrame(size, self._view[start:start + have])
            self._start = start + have
            return None
        frame = memoryview(bytearray(size))
        frame[:have] = self._view[start:start + have]
        self._start = start + have
        if have == size:
            return frame
        self._frame, self._have = frame, have
        return None

    def receive_buffer(self) -> memoryview:
        """Where the next received bytes go; valid until received(). Call after next_frame() gave None."""
        frame = self._frame
        if frame is not None:
            return frame[self._have:]
        if self._large is not None:
            return self._large.buffer()
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buf):  # fewer than 4 bytes left (next_frame took the rest): move them
            pending = self._end - self._start
            self._buf[:pending] = self._buf[self._start:self._end]
            self._start, self._end = 0, pending
        return self._view[self._end:]

    def received(self, count: int) -> None:
        """count bytes were written at the start of the last receive_buffer()."""
        if self._frame is not None:
            self._have += count
        elif self._large is not None:
            self._large.received(count)
        else:
            self._end += count

    def end_of_stream(self) -> None:
        """The stream ended: fine between frames, TruncatedFrame inside one."""
        if self._frame is not None:
            raise TruncatedFrame(f"connection closed after {self._have} of {len(self._frame)} frame bytes")
        if self._large is not None:
            raise TruncatedFrame(f"connection closed after {self._large.have} of {self._large.size} frame bytes")
        if self._end > self._start:
            raise TruncatedFrame("connection closed inside a frame's size prefix")

    def feed(self, data: bytes | bytearray | memoryview) -> list[memoryview]:
        """For callers that already hold bytes (tests): copy them in, return the frames they complete."""
        frames, data, pos = [], memoryview(data), 0
        while True:
            while (frame := self.next_frame()) is not None:
                frames.append(frame)
            if pos == len(data):
                return frames
            buffer = self.receive_buffer()
            count = min(len(buffer), len(data) - pos)
            buffer[:count] = data[pos:pos + count]
            self.received(count)
            pos += count
