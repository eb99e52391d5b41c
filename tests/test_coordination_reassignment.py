"""A reassignment's steps as Kafka's controller takes them (kbroker.coordination.reassignment): start
with the union of old and new replicas, complete once the target is in sync (a removed leader gives
way, the leader epoch fences the removed replicas), cancel back to the original replicas."""

from __future__ import annotations

from kbroker.coordination.cluster import PartitionState
from kbroker.coordination.reassignment import (Reassignment, complete, revert, revert_is_unclean, settle, start,
                                               unsettled)


def state(leader: int, isr, epoch: int = 4) -> PartitionState:
    return PartitionState(leader, epoch, tuple(isr), controller_epoch=1, version=7)


def test_moving_12_to_23_keeps_every_replica_until_the_new_one_is_in_sync():
    moving = start(Reassignment((1, 2)), [2, 3])
    assert moving == Reassignment((2, 3, 1), adding=(3,), removing=(1,))
    assert moving.target == (2, 3) and moving.original == (2, 1)
    assert complete(moving, state(1, [1, 2]), eligible={1, 2, 3}) is None  # 3 is still catching up
    replicas, done = complete(moving, state(1, [1, 2, 3]), eligible={1, 2, 3})
    assert replicas == (2, 3)
    assert (done.leader, done.isr, done.leader_epoch, done.version) == (2, (2, 3), 5, 7)


def test_a_new_target_while_one_is_in_progress_starts_from_the_union():
    first = start(Reassignment((1, 2)), [2, 3])
    second = start(first, [2, 3, 4])
    assert second == Reassignment((2, 3, 4, 1), adding=(3, 4), removing=(1,))  # 3 is still being added


def test_adding_replicas_keeps_the_leader_and_its_epoch():
    growing = start(Reassignment((3,)), [3, 1, 2])
    assert growing == Reassignment((3, 1, 2), adding=(1, 2))
    replicas, done = complete(growing, state(3, [1, 2, 3]), eligible={1, 2, 3})
    assert replicas == (3, 1, 2) and (done.leader, done.leader_epoch) == (3, 4)


def test_no_live_target_replica_to_lead_waits():
    moving = start(Reassignment((1, 2)), [2, 3])
    assert complete(moving, state(1, [1, 2, 3]), eligible={1}) is None


def test_cancel_goes_back_and_settles_the_state():
    moving = start(Reassignment((1, 2)), [3, 4])
    assert revert(moving) == Reassignment((1, 2))
    assert not revert_is_unclean(moving, state(3, [1, 3]))
    assert revert_is_unclean(moving, state(3, [3, 4]))
    settled = settle((1, 2), state(3, [1, 3]), eligible={1, 2, 3, 4})
    assert (settled.leader, settled.isr, settled.leader_epoch) == (1, (1,), 5)
    assert settle((1, 2), settled, eligible={1, 2, 3}) is None
    assert unsettled((1, 2), state(3, [1, 3])) and not unsettled((1, 2), state(1, [1, 2]))
    unclean = settle((1, 2), state(3, [3, 4]), eligible={1, 2, 3, 4})
    assert (unclean.leader, unclean.isr) == (1, (1,))
