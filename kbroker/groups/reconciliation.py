"""A consumer group member's next assignment on its way to the target (Kafka's CurrentAssignmentBuilder).

Given the member's current assignment (epoch, state, assigned and pending-revocation partitions), the
target assignment and its epoch, and the partitions the member reported owning in its heartbeat
(None when it did not say), the next current assignment is:

- partitions it has and keeps (assigned ∩ target) stay assigned;
- partitions it has and must give up (assigned - target) are pending revocation: while the member
  still owns any, it stays at its epoch in UNREVOKED_PARTITIONS and gets nothing new;
- once they are revoked (its heartbeat no longer lists them), it moves to the target epoch and gets
  the target's partitions that no other member still owns; the others it waits for in
  UNRELEASED_PARTITIONS, and gets them on a later heartbeat once their previous owner let go.

So no partition is ever owned by two members at once: a member only gets a partition after its
previous owner revoked it. A pure function: the protocol (kbroker.groups.consumer_protocol) persists
what it returns.
"""

from __future__ import annotations

import uuid
from typing import Callable

from ..protocol.errors import ApiError, ErrorCode
from . import consumer_records as fmt
from .consumer_group import MEMBER_STABLE, MEMBER_UNKNOWN, UNRELEASED_PARTITIONS, UNREVOKED_PARTITIONS

Partitions = fmt.Partitions
# (topic id, partition) -> whether the member may take it now (nobody else owns it)
IsFree = Callable[[uuid.UUID, int], bool]


def _owns_any(owned: Partitions | None, partitions: Partitions) -> bool:
    if owned is None:  # not reported: assume the member still has them
        return True
    return any(owned.get(topic_id, frozenset()) & indexes for topic_id, indexes in partitions.items())


def _with_epoch(current: fmt.CurrentAssignment, epoch: int, state: int, assigned: Partitions,
                pending: Partitions) -> fmt.CurrentAssignment:
    return fmt.CurrentAssignment(epoch, current.member_epoch, state, assigned, pending)


def _next(current: fmt.CurrentAssignment, epoch: int, target_epoch: int, target: Partitions,
          owned: Partitions | None, is_free: IsFree) -> fmt.CurrentAssignment:
    assigned: Partitions = {}
    pending_revocation: Partitions = {}
    pending_assignment: Partitions = {}
    unreleased = False
    for topic_id in set(target) | set(current.assigned):
        wanted = target.get(topic_id, frozenset())
        has = current.assigned.get(topic_id, frozenset())
        keep = has & wanted
        revoke = has - keep
        add = wanted - keep
        free = frozenset(p for p in add if is_free(topic_id, p))
        unreleased = unreleased or free != add
        if keep:
            assigned[topic_id] = keep
        if revoke:
            pending_revocation[topic_id] = revoke
        if free:
            pending_assignment[topic_id] = free
    if pending_revocation and _owns_any(owned, pending_revocation):
        return _with_epoch(current, epoch, UNREVOKED_PARTITIONS, assigned, pending_revocation)
    for topic_id, indexes in pending_assignment.items():
        assigned[topic_id] = assigned.get(topic_id, frozenset()) | indexes
    state = UNRELEASED_PARTITIONS if unreleased else MEMBER_STABLE
    return _with_epoch(current, target_epoch, state, assigned, {})


def reconcile(current: fmt.CurrentAssignment, target_epoch: int, target: Partitions,
              owned: Partitions | None, is_free: IsFree) -> fmt.CurrentAssignment:
    """The member's next current assignment (``current`` itself when nothing changes)."""
    state = current.state
    if state == MEMBER_STABLE:
        if current.member_epoch == target_epoch:
            return current
        return _next(current, current.member_epoch, target_epoch, target, owned, is_free)
    if state == UNREVOKED_PARTITIONS:
        if _owns_any(owned, current.pending_revocation):
            return current
        return _next(current, current.member_epoch + 1, target_epoch, target, owned, is_free)
    if state == UNRELEASED_PARTITIONS:
        nxt = _next(current, current.member_epoch, target_epoch, target, owned, is_free)
        return current if (nxt.member_epoch, nxt.state, nxt.assigned, nxt.pending_revocation) == (
            current.member_epoch, current.state, current.assigned, current.pending_revocation) else nxt
    if owned is None or any(owned.values()):
        raise ApiError(ErrorCode.FENCED_MEMBER_EPOCH, "The consumer group member is in a unknown state. "
                       "The member must abandon all its partitions and rejoin.")
    return _next(current, target_epoch, target_epoch, target, owned, is_free)


__all__ = ["reconcile", "MEMBER_UNKNOWN"]
