"""Brokers coordinate through the store with Kafka's ZooKeeper layout, on the in-memory tree and on a
real ZooKeeper alike: they register and are seen to die, one of them is the controller and a stale
controller is fenced, topics and partition states are recorded, and ISR changes are conditional."""

from __future__ import annotations

import uuid

import pytest
import trio

from kbroker.coordination import BadVersion
from kbroker.coordination.cluster import (BrokerIdTaken, BrokerRegistration, ClusterCoordination, NotController,
                                          PartitionState, TopicAssignment)
from kbroker.coordination.placement import PlacementError, assign_replicas


def registration(node_id: int, rack: str | None = None) -> BrokerRegistration:
    return BrokerRegistration(node_id, (("PLAINTEXT", "127.0.0.1", 9090 + node_id),), rack)


async def broker(sessions, node_id: int) -> ClusterCoordination:
    coordination = ClusterCoordination(await sessions.open(), node_id)
    await coordination.ensure_layout()
    return coordination


async def test_brokers_register_and_a_dead_one_leaves(sessions):
    one, two = await broker(sessions, 1), await broker(sessions, 2)
    await one.register(registration(1, "rack-a"))
    await two.register(registration(2))
    with pytest.raises(BrokerIdTaken):
        await (await broker(sessions, 2)).register(registration(2))
    live, changed = await one.watch_brokers()
    assert live == {1: registration(1, "rack-a"), 2: registration(2)}
    await two.store.close()  # broker 2's process dies; its session goes
    with trio.fail_after(10):
        await changed.wait()
    assert list(await one.live_brokers()) == [1]
    assert await one.cluster_id("first-proposal") == await (await broker(sessions, 3)).cluster_id("other") \
        == "first-proposal"


async def test_one_controller_at_a_time_and_a_stale_one_is_fenced(sessions):
    one, two = await broker(sessions, 1), await broker(sessions, 2)
    fence_1 = await one.elect()
    assert fence_1 is not None and fence_1.controller_epoch == 1
    assert await two.elect() is None
    controller, changed = await two.watch_controller()
    assert controller == 1

    await one.store.close()  # the controller's session expires
    with trio.fail_after(10):
        await changed.wait()
    fence_2 = await two.elect()
    assert fence_2.controller_epoch == 2 and await two.controller_epoch() == 2

    zombie = await broker(sessions, 1)  # broker 1 comes back and still believes it is controller
    topic = TopicAssignment("orders", uuid.uuid4(), {0: (1, 2)})
    with pytest.raises(NotController):
        await zombie.create_topic(fence_1, topic, {0: PartitionState(1, 0, (1, 2), 1)})
    assert await two.topic("orders") is None
    await two.create_topic(fence_2, topic, {0: PartitionState(1, 0, (1, 2), 2)})
    assert await zombie.topic("orders") == TopicAssignment("orders", topic.topic_id, {0: (1, 2)}, {})


async def test_a_topic_and_its_partition_states_are_recorded_and_changed_conditionally(sessions):
    controller, leader = await broker(sessions, 1), await broker(sessions, 2)
    fence = await controller.elect()
    replicas = assign_replicas({1: None, 2: None, 3: None}, 2, 3)
    topic = TopicAssignment("payments", uuid.uuid4(), {p: tuple(r) for p, r in replicas.items()},
                            {"min.insync.replicas": "2"})
    await controller.create_topic(fence, topic, {p: PartitionState(r[0], 0, tuple(r), fence.controller_epoch)
                                                 for p, r in replicas.items()})
    names, _ = await leader.watch_topics()
    assert names == ["payments"]
    assert (await leader.topic("payments")).configs == {"min.insync.replicas": "2"}

    state, changed = await leader.watch_partition_state("payments", 0)
    assert (state.leader, state.leader_epoch, state.isr) == (1, 0, (1, 2, 3))
    shrunk = await leader.update_isr("payments", 0, PartitionState(1, 0, (1, 2), state.controller_epoch,
                                                                    state.version))
    with trio.fail_after(10):
        await changed.wait()
    with pytest.raises(BadVersion):  # a second writer that read the old state loses
        await leader.update_isr("payments", 0, PartitionState(1, 0, (1,), state.controller_epoch, state.version))
    await controller.elect_leaders(fence, "payments", {0: PartitionState(2, 1, (2,), 0, shrunk.version)})
    moved = await leader.partition_state("payments", 0)
    assert (moved.leader, moved.leader_epoch, moved.isr, moved.controller_epoch) == (2, 1, (2,), 1)

    await controller.delete_topic(fence, "payments")
    assert await leader.topic("payments") is None and await leader.partition_state("payments", 0) is None


def test_replicas_are_spread_over_brokers_and_racks_as_kafka_spreads_them():
    assert assign_replicas({1: None, 2: None, 3: None}, 6, 3) == {
        0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2], 3: [1, 3, 2], 4: [2, 1, 3], 5: [3, 2, 1]}
    racks = {1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}
    for replicas in assign_replicas(racks, 12, 3).values():
        assert len({racks[b] for b in replicas}) == 3  # one replica per rack
    assert sorted(assign_replicas({1: "A", 2: "B", 3: "C", 4: "C", 5: "C"}, 1, 5)[0]) == [1, 2, 3, 4, 5]
    with pytest.raises(PlacementError):
        assign_replicas({1: None}, 1, 2)
