"""Writing a response to a non-blocking socket: gathered buffers in as few syscalls as possible, and
file regions (segment bytes for Fetch) with os.sendfile so they never pass through Python. The task
waits on trio only when the socket buffer is full."""

from __future__ import annotations

import os
import socket
from typing import Any, Iterable

import trio

_MAX_IOV = 512
_READ_INTO_MESSAGE_BYTES = 64 * 1024


class ShortFileRegion(Exception):
    """A segment file ended before the bytes a response already promised (it was truncated or deleted
    meanwhile): the response cannot be completed, so the connection is closed."""


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
            raise ShortFileRegion(f"read {len(data)} of {self.length} bytes at offset {self.offset}")
        return data


async def _send_buffers(sock: socket.socket, buffers: list[memoryview]) -> None:
    while buffers:
        try:
            sent = sock.sendmsg(buffers[:_MAX_IOV])
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        while sent:
            first = buffers[0]
            if sent >= len(first):
                sent -= len(first)
                buffers.pop(0)
            else:
                buffers[0] = first[sent:]
                sent = 0


async def _send_file_region(sock: socket.socket, region: FileRegion) -> None:
    offset, remaining = region.offset, region.length
    while remaining:
        try:
            sent = os.sendfile(sock.fileno(), region.fd, offset, remaining)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        if sent == 0:
            raise ShortFileRegion(f"file ended {remaining} bytes before the end of the region")
        offset += sent
        remaining -= sent


async def send_parts(sock: socket.socket, parts: Iterable[Any]) -> None:
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
