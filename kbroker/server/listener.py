"""Accepting connections, within Kafka's connection quotas.

- `max.connections` (broker-wide): when that many connections are open, the broker stops accepting
  until one closes, as Kafka's acceptor waits for a connection slot; new clients wait in the
  listen backlog meanwhile, and are served as soon as a slot is free.
- `max.connections.per.ip` (and `max.connections.per.ip.overrides`, `host:count,...`): a connection
  from an address that has that many already is closed at once, as Kafka closes it
  (TooManyConnectionsException), with one log line.
The limits are read from the live config at each accept, so a dynamic change applies to the next
connection. An accept that fails because the process is out of file descriptors (or memory) is
logged and retried after a pause, as trio's serve_listeners does: the listener stays alive.
"""

from __future__ import annotations

import errno
import logging
from collections import Counter
from typing import Awaitable, Callable

import trio

log = logging.getLogger("kbroker.server")

# accept() failures that mean "not now" rather than "this listener is broken"
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_RETRY_SECONDS = 0.1


def parse_overrides(text: str) -> dict[str, int]:
    """`max.connections.per.ip.overrides`: "host:count,host:count" -> {host: count}."""
    overrides: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, count = item.rpartition(":")
        overrides[host] = int(count)
    return overrides


class ConnectionQuotas:
    """Counts open connections, in all and per address, against limits read when needed."""

    def __init__(self, limits: Callable[[], tuple[int, int, dict[str, int]]]):
        self._limits = limits  # () -> (max.connections, max.connections.per.ip, per-ip overrides)
        self.total = 0
        self.per_address: Counter[str] = Counter()
        self._slot_freed = trio.Event()

    async def wait_for_slot(self) -> None:
        while self.total >= self._limits()[0]:
            await self._slot_freed.wait()

    def admit(self, address: str) -> bool:
        _, per_ip, overrides = self._limits()
        if self.per_address[address] >= overrides.get(address, per_ip):
            return False
        self.total += 1
        self.per_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.total -= 1
        self.per_address[address] -= 1
        if not self.per_address[address]:
            del self.per_address[address]
        self._slot_freed.set()
        self._slot_freed = trio.Event()


async def serve_listener(listener: trio.SocketListener, handler: Callable[[trio.SocketStream], Awaitable[None]],
                         quotas: ConnectionQuotas, nursery: trio.Nursery) -> None:
    """Accept connections until cancelled; each is handled in `nursery` within the quotas (counted
    here, as it is accepted, so the next wait for a slot already sees it)."""
    while True:
        await quotas.wait_for_slot()
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                raise
            log.error("accept failed (%s); retrying in %.1f s", exc, _ACCEPT_RETRY_SECONDS)
            await trio.sleep(_ACCEPT_RETRY_SECONDS)
            continue
        try:
            address = stream.socket.getpeername()[0]
        except OSError:  # gone already
            nursery.start_soon(stream.aclose)
            continue
        if quotas.admit(address):
            nursery.start_soon(_handle, stream, address, handler, quotas)
        else:
            log.info("closing a connection from %s: max.connections.per.ip reached (%d open)", address,
                     quotas.per_address[address])
            nursery.start_soon(stream.aclose)


async def _handle(stream: trio.SocketStream, address: str, handler: Callable[[trio.SocketStream], Awaitable[None]],
                  quotas: ConnectionQuotas) -> None:
    try:
        await handler(stream)
    finally:
        quotas.release(address)
