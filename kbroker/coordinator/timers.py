"""Keyed deadline timers on trio cancel scopes, owned by one coordinator's nursery.

Each armed timer is a task sleeping inside a cancel scope whose deadline is the expiry time; when the
deadline passes the scope cancels the sleep and the callback runs. Re-arming a key moves the
deadline of the scope that is already waiting (a heartbeat costs one attribute write, no new task);
cancelling a key cancels its scope without running the callback. No polling: a task wakes only when
its own deadline is reached.

Callbacks are plain synchronous functions, like every coordinator operation (kbroker.coordinator.
runtime): a callback and a request handler never interleave halfway through a state change.

With ``behind_received_requests``, an expired timer's callback runs only after the requests already
received by then have reached their coordinator, as in Kafka's coordinator runtime, where an expired
timer enqueues its operation behind the requests already in the coordinator's queue. In kbroker each
connection has one task, which reads its next request right after answering the last and makes no
scheduling point between the socket and the handler when the request's bytes are already there. So
a request that is in its socket when the timer expires is read and handled in the very scheduler
batch the expiry wakes the timer's task in (trio wakes both in the same I/O poll, and runs a batch's
tasks in no fixed order); letting one more batch pass puts the callback behind it. The timer waits
two (a few microseconds when idle, re-checking a deadline moved meanwhile): the second is a margin
for one scheduling point on that path, which a transport may take (a TLS stream does). This is what
makes a ``group.initial.rebalance.delay.ms=0`` group take in every JoinGroup received before its
first rebalance completes, instead of racing them.
"""

from __future__ import annotations

import logging
from typing import Callable

import trio

log = logging.getLogger("kbroker.coordinator")


class _Timer:
    __slots__ = ("scope", "callback", "cancelled")

    def __init__(self, deadline: float, callback: Callable[[], None]):
        self.scope = trio.CancelScope(deadline=deadline)
        self.callback = callback
        self.cancelled = False


# scheduler batches an expired timer lets pass before its callback: one puts it behind the requests its
# expiry found in their sockets, the second is a margin for one scheduling point on their way (docstring)
_SETTLE_BATCHES = 2


class Timers:
    def __init__(self, *, behind_received_requests: bool = False) -> None:
        self._settle_batches = _SETTLE_BATCHES if behind_received_requests else 0
        self._nursery: trio.Nursery | None = None
        self._timers: dict[object, _Timer] = {}
        self._pending: list[tuple[object, float, Callable[[], None]]] = []

    def attach(self, nursery: trio.Nursery) -> None:
        """Start serving timers from this nursery (timers armed before this start now)."""
        self._nursery = nursery
        pending, self._pending = self._pending, []
        now = trio.current_time()
        for key, delay_ms, callback in pending:
            self._arm(key, now + max(delay_ms, 0) / 1000, callback)

    def schedule(self, key: object, delay_ms: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``delay_ms`` unless re-scheduled or cancelled first."""
        try:
            now = trio.current_time()
        except RuntimeError:  # outside trio (loading at construction); attach() arms it later
            now = None
        if now is None or self._nursery is None:
            self._pending = [p for p in self._pending if p[0] != key]
            self._pending.append((key, delay_ms, callback))
            return
        self._arm(key, now + max(delay_ms, 0) / 1000, callback)

    def _arm(self, key: object, deadline: float, callback: Callable[[], None]) -> None:
        if key in self._timers and not self._timers[key].cancelled:
            timer = self._timers[key]
            timer.scope.deadline = deadline
            timer.callback = callback
            return
        timer = _Timer(deadline, callback)
        self._timers[key] = timer
        self._nursery.start_soon(self._run, key, timer)

    def cancel(self, key: object) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancelled = True
            timer.scope.cancel()
        self._pending = [p for p in self._pending if p[0] != key]

    def is_scheduled(self, key: object) -> bool:
        return key in self._timers

    async def _run(self, key: object, timer: _Timer) -> None:
        while True:
            with timer.scope:
                await trio.sleep_forever()
            if timer.cancelled or self._timers.get(key) is not timer:
                return
            for _ in range(self._settle_batches):
                await trio.lowlevel.checkpoint()
            if timer.cancelled or self._timers.get(key) is not timer:
                return
            deadline = timer.scope.deadline
            if deadline <= trio.current_time():
                break
            timer.scope = trio.CancelScope(deadline=deadline)  # re-armed while settling: wait again
        del self._timers[key]
        try:
            timer.callback()
        except Exception:  # a bug in one expiry must not take the broker down
            log.exception("coordinator timer %r failed", key)
