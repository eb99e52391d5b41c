"""Writing a response to a trio socket: gathered buffers in as few syscalls as possible, and
file regions (segment bytes for Fetch) with os.sendfile so they never pass through Python."""

from __future__ import annotations

import os
from typing import Any, Iterable

import trio

_MAX_IOV = 512
_READ_INTO_MESSAGE_BYTES = 64 * 1024


class FileRegion:
    """A byte range of an open file, sent with sendfile. Response encoders treat it as opaque bytes."""

    __slots__ = ("fd", "offset", "length")

    def __init__(self, fd: int, offset: int, length: int):
        self.fd, self.offset, self.length = fd, offset, length

    def __len__(self) -> int:
        return self.length

    def __bytes__(self) -> bytes:
        data = os.pread(self.fd, self.length, self.offset)
        if len(data) != self.length:  # the length is already on the wire; a short read cannot be sent
            raise trio.BrokenResourceError("file region shorter than promised")
        return data


async def _send_buffers(sock: trio.socket.SocketType, buffers: list[memoryview]) -> None:
    while buffers:
        sent = await sock.sendmsg(buffers[:_MAX_IOV])
        while sent:
            first = buffers[0]
            if sent >= len(first):
                sent -= len(first)
                buffers.pop(0)
            else:
                buffers[0] = first[sent:]
                sent = 0


async def _send_file_region(sock: trio.socket.SocketType, region: FileRegion) -> None:
    offset, remaining = region.offset, region.length
    while remaining:
        try:
            sent = os.sendfile(sock.fileno(), region.fd, offset, remaining)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        if sent == 0:
            raise trio.BrokenResourceError("file region shorter than promised")
        offset += sent
        remaining -= sent
    await trio.lowlevel.checkpoint()


async def send_parts(sock: trio.socket.SocketType, parts: Iterable[Any]) -> None:
    """Small file regions are read into the gather list (one sendmsg beats a sendfile per partition);
    large ones go by sendfile between the buffers around them."""
    pending: list[memoryview] = []
    for part in parts:
        if isinstance(part, FileRegion):
            if part.length <= _READ_INTO_MESSAGE_BYTES:
                pending.append(memoryview(bytes(part)))
                continue
            await _send_buffers(sock, pending)
            pending = []
            await _send_file_region(sock, part)
        elif len(part):
            pending.append(memoryview(part))
    await _send_buffers(sock, pending)
