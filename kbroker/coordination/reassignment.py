"""Partition reassignments (KIP-455) as Kafka's controller computes them: pure functions of one
partition's replicas, ongoing reassignment and state, used by the brokers that record a
reassignment (kbroker.replication.reassignments) and by the controller that completes it.

1. **Start** (``start``): the target's replicas not yet assigned are *adding*, the assigned ones not
   in the target *removing*; the partition's replicas become the target followed by the removing
   ones, so the new replicas follow the leader and catch up while the old ones still serve. The
   leader and its epoch stay. A reassignment started while another is in progress starts from the
   replicas as they are (the union), as Kafka's does; a replica the earlier one was adding and the
   new target keeps is still adding.
2. **Complete** (``complete``, the controller): once every target replica is in the ISR, the
   replicas become the target, the removed ones leave the ISR, and a leader not in the target (or
   not alive) gives way to the first target replica alive and in sync. The leader epoch goes up when
   the leader changes or replicas are removed (fencing the removed ones, as Kafka's
   PartitionChangeBuilder does). Until then nothing moves.
3. **Cancel** (``revert``): the replicas go back to what they were (the replicas minus the adding
   ones); the controller then takes the adding replicas out of the ISR and, if one of them led,
   elects a leader among the original ones (``settle``). If only adding replicas are in sync the
   revert needs an unclean election: refused unless the topic allows one (``revert_is_unclean``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from .cluster import PartitionState

NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class Reassignment:
    replicas: tuple[int, ...]
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()

    @property
    def target(self) -> tuple[int, ...]:
        return tuple(r for r in self.replicas if r not in self.removing)

    @property
    def original(self) -> tuple[int, ...]:
        return tuple(r for r in self.replicas if r not in self.adding)


def start(current: Reassignment, target: Iterable[int]) -> Reassignment:
    """The reassignment to ``target`` of a partition as it is (``current``: its replicas, and the
    reassignment in progress if any: what it was adding and is not yet in sync stays adding)."""
    target = tuple(target)
    removing = tuple(sorted(set(current.replicas) - set(target)))
    adding = tuple(sorted(set(target) - set(current.original)))
    return Reassignment(target + removing, adding, removing)


def revert(ongoing: Reassignment) -> Reassignment:
    return Reassignment(ongoing.original)


def revert_is_unclean(ongoing: Reassignment, state: PartitionState) -> bool:
    """Only adding replicas are in sync: going back would elect an out-of-sync original replica."""
    return not any(r not in ongoing.adding for r in state.isr)


def _leader_among(state: PartitionState, order: tuple[int, ...], isr: tuple[int, ...], eligible: set[int]) -> int:
    """The current leader if it may stay, else the first replica alive and in sync (or none)."""
    if state.leader in isr and state.leader in order and state.leader in eligible:
        return state.leader
    return next((r for r in order if r in isr and r in eligible), NO_LEADER)


def complete(ongoing: Reassignment, state: PartitionState, eligible: set[int]
             ) -> tuple[tuple[int, ...], PartitionState] | None:
    """The partition's replicas and state once its reassignment completes, or None while a target
    replica is still catching up (or no target replica can lead)."""
    target = ongoing.target
    isr = tuple(r for r in state.isr if r not in ongoing.removing)
    if not target or not set(target) <= set(isr):
        return None
    leader = _leader_among(state, target, isr, eligible)
    if leader == NO_LEADER:
        return None
    bumped = leader != state.leader or bool(ongoing.removing)
    return target, replace(state, leader=leader, isr=isr, leader_epoch=state.leader_epoch + bumped)


def settle(replicas: tuple[int, ...], state: PartitionState, eligible: set[int]) -> PartitionState | None:
    """A partition no longer reassigned whose ISR or leader still names replicas it no longer has
    (after a cancel): they leave; a removed leader gives way (the first original replica when none
    of them is in sync: the unclean revert its topic allowed). None when it is consistent."""
    isr = tuple(r for r in state.isr if r in replicas)
    if isr == state.isr and (state.leader in replicas or state.leader == NO_LEADER):
        return None
    if not isr:
        isr = replicas[:1]
    leader = _leader_among(state, replicas, isr, eligible)
    return replace(state, leader=leader, isr=isr, leader_epoch=state.leader_epoch + 1)


def unsettled(replicas: tuple[int, ...], state: PartitionState) -> bool:
    return state.leader not in (*replicas, NO_LEADER) or any(r not in replicas for r in state.isr)
