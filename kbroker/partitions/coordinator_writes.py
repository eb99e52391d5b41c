"""Coordinator writes a response waits for: a committed offset, a group's assignment or a
transaction's state is acknowledged only once every in-sync replica has it, as Kafka's coordinators
append with acks=all before they answer.

The coordinators' operations are synchronous (kbroker.coordinator.runtime): they append to their
internal partition through the partition layer and apply the change at once. So the wait is not
theirs; it is the request's: the server collects, per request, the internal-partition appends made
while handling it (``collecting`` puts a list in a context variable, which each connection's task
has its own copy of; ``note`` adds to it from Partition.append) and, before sending the response,
waits until each partition's high watermark covers its append (``replicated``). A partition whose
leader is its whole ISR (a broker alone) is never noted: its high watermark is already there.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import trio

from ..protocol.errors import ApiError

_WRITES: ContextVar[list | None] = ContextVar("kbroker_coordinator_writes", default=None)


def collecting() -> list:
    """Start collecting the current request's coordinator writes; the list they go to."""
    writes: list = []
    _WRITES.set(writes)
    return writes


def note(partition: Any, end_offset: int) -> None:  # a Partition (imported by it, so not typed here)
    writes = _WRITES.get()
    if writes is not None:
        writes.append((partition, end_offset))


async def replicated(writes: list, timeout_s: float) -> bool:
    """Whether every write reached its partition's high watermark within ``timeout_s`` (False also
    when leadership moved meanwhile: the write may be lost, so it must not be acknowledged)."""
    deadline = trio.current_time() + timeout_s
    for partition, end_offset in writes:
        try:
            if not await partition.wait_for_high_watermark(end_offset, deadline):
                return False
        except ApiError:
            return False
    return True
