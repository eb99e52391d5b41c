"""A byte range of an open file that goes into a response as it is: Fetch hands segment bytes to the
transport this way, never reading them into Python. Encoders treat it as opaque bytes (len() and
bytes()); the plain-socket transport sends it with os.sendfile, the TLS transport reads it."""

from __future__ import annotations

import os
from typing import Iterator


class ShortFileRegion(Exception):
    """A segment file ended before the bytes a response already promised (it was truncated or deleted
    meanwhile): the response cannot be completed, so the connection is closed."""


class FileRegion:
    __slots__ = ("fd", "offset", "length")

    def __init__(self, fd: int, offset: int, length: int):
        self.fd, self.offset, self.length = fd, offset, length

    def __len__(self) -> int:
        return self.length

    def __bytes__(self) -> bytes:
        return self._read(self.offset, self.length)

    def pieces(self, piece_bytes: int) -> Iterator[bytes]:
        """The region's bytes, read piece_bytes at a time."""
        offset, end = self.offset, self.offset + self.length
        while offset < end:
            length = min(piece_bytes, end - offset)
            yield self._read(offset, length)
            offset += length

    def _read(self, offset: int, length: int) -> bytes:
        data = os.pread(self.fd, length, offset)
        if len(data) != length:  # the length is already on the wire; a short read cannot be sent
            raise ShortFileRegion(f"read {len(data)} of {length} bytes at offset {offset}")
        return data
