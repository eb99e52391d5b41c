"""The plain-socket transport: the kernel calls made on the non-blocking socket itself.

The connection's socket is detached from trio; every call is tried first and the task waits on trio
only when the kernel says EAGAIN, so a request whose bytes are already here, or a response that fits
the socket buffer, costs no scheduling point. Receives go straight into the framer's buffer
(recv_into); a response's buffers go out gathered (sendmsg, up to 512 at a time); file regions above
64 KB go by os.sendfile so segment bytes never pass through Python, smaller ones are read into the
gather list (one sendmsg beats a sendfile per partition).

Each wait is bounded by connections.max.idle.ms: for a byte to arrive (IdleConnection), or for the
socket to take another byte of a response (SendStalled). Any progress starts a new wait.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Iterable

import trio

from ..protocol.file_region import FileRegion, ShortFileRegion
from .transport import IdleConnection, SendStalled

_MAX_IOV = 512
_READ_INTO_MESSAGE_BYTES = 64 * 1024


class SocketTransport:
    security_protocol = "PLAINTEXT"

    def __init__(self, stream: trio.SocketStream, idle_seconds: float):
        self.sock = socket.socket(fileno=stream.socket.detach())
        self.sock.setblocking(False)
        self.idle_seconds = idle_seconds

    def peer(self) -> tuple[str, int]:
        try:
            return self.sock.getpeername()[:2]
        except OSError:
            return ("?", 0)

    async def receive_into(self, buffer: memoryview) -> int:
        while True:
            try:
                return self.sock.recv_into(buffer)
            except BlockingIOError:
                pass
            with trio.move_on_after(self.idle_seconds) as idle:
                await trio.lowlevel.wait_readable(self.sock)
            if idle.cancelled_caught:
                raise IdleConnection(f"no bytes for {self.idle_seconds:g} s (connections.max.idle.ms)")

    async def send(self, parts: Iterable[Any]) -> None:
        pending: list[memoryview] = []
        for part in parts:
            if isinstance(part, FileRegion):
                if part.length <= _READ_INTO_MESSAGE_BYTES:
                    pending.append(memoryview(bytes(part)))
                    continue
                await self._send_buffers(pending)
                pending = []
                await self._send_file_region(part)
            elif len(part):
                pending.append(memoryview(part))
        await self._send_buffers(pending)

    async def aclose(self) -> None:
        trio.lowlevel.notify_closing(self.sock)
        self.sock.close()

    async def _wait_writable(self) -> None:
        with trio.move_on_after(self.idle_seconds) as idle:
            await trio.lowlevel.wait_writable(self.sock)
        if idle.cancelled_caught:
            raise SendStalled(f"the client took no byte of a response for {self.idle_seconds:g} s "
                              "(connections.max.idle.ms)")

    async def _send_buffers(self, buffers: list[memoryview]) -> None:
        while buffers:
            try:
                sent = self.sock.sendmsg(buffers[:_MAX_IOV])
            except BlockingIOError:
                await self._wait_writable()
                continue
            while sent:
                first = buffers[0]
                if sent >= len(first):
                    sent -= len(first)
                    buffers.pop(0)
                else:
                    buffers[0] = first[sent:]
                    sent = 0

    async def _send_file_region(self, region: FileRegion) -> None:
        offset, remaining = region.offset, region.length
        while remaining:
            try:
                sent = os.sendfile(self.sock.fileno(), region.fd, offset, remaining)
            except BlockingIOError:
                await self._wait_writable()
                continue
            if sent == 0:
                raise ShortFileRegion(f"file ended {remaining} bytes before the end of the region")
            offset += sent
            remaining -= sent
