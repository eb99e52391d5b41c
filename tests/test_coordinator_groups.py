"""The group coordinator driven directly, without sockets, over a real log in a temporary directory:
two consumers form a group and get the leader's assignment; a consumer that stops heartbeating is
removed after its session timeout and the other one rebalances alone; committed offsets and a stable
group come back when the coordinator is rebuilt from its log (a broker restart). Time is trio's
MockClock: a session timeout passes in no time."""

from __future__ import annotations

import pytest
import trio

from kbroker.groups.classic import JoinResult, SyncResult, Waiter
from kbroker.protocol.errors import ErrorCode as E
from tests.coordinator_world import CoordinatorWorld
from tests.test_groups_wire import subscription as consumer_subscription

SESSION_TIMEOUT_MS = 10_000


@pytest.fixture
def world(tmp_path):
    world = CoordinatorWorld(tmp_path)
    yield world
    world.close()


def join(world: CoordinatorWorld, group_id: str, member_id: str = "", *, topics: tuple[str, ...] = ("orders",),
         session_timeout_ms: int = SESSION_TIMEOUT_MS) -> Waiter:
    """A JoinGroup v9 of a consumer of ``topics``; the waiter completes when the join phase ends (at once if refused)."""
    waiter = Waiter()
    world.groups.join_group(
        group_id=group_id, member_id=member_id, group_instance_id=None, protocol_type="consumer",
        protocols=[("range", consumer_subscription(*topics))], session_timeout_ms=session_timeout_ms,
        rebalance_timeout_ms=SESSION_TIMEOUT_MS, client_id="consumer", client_host="/127.0.0.1", api_version=9,
        waiter=waiter)
    return waiter


def member_id_given(world: CoordinatorWorld, group_id: str) -> str:
    """KIP-394: a new member's first JoinGroup is answered MEMBER_ID_REQUIRED with its member id."""
    first = join(world, group_id).result
    assert first.error == E.MEMBER_ID_REQUIRED
    return first.member_id


def sync(world: CoordinatorWorld, group_id: str, join_result: JoinResult,
         assignments: dict[str, bytes] | None = None) -> Waiter:
    waiter = Waiter()
    world.groups.sync_group(group_id=group_id, generation_id=join_result.generation_id,
                            member_id=join_result.member_id, group_instance_id=None, protocol_type="consumer",
                            protocol_name="range", assignments=assignments or {}, waiter=waiter)
    return waiter


async def result(waiter: Waiter):
    await waiter.event.wait()
    return waiter.result


async def form_group(world: CoordinatorWorld, group_id: str, consumers: int = 2) -> list[JoinResult]:
    """Consumers join together and the leader hands out partition i to the i-th member; the join results."""
    member_ids = [member_id_given(world, group_id) for _ in range(consumers)]
    joins = [await result(w) for w in [join(world, group_id, m) for m in member_ids]]
    (leader,) = [j for j in joins if j.members]
    assignments = {member_id: f"partition-{i}".encode() for i, (member_id, _, _) in enumerate(leader.members)}
    followers = [sync(world, group_id, j) for j in joins if j is not leader]
    assert not any(w.done for w in followers)  # parked until the leader's assignment is stored
    synced = [await result(w) for w in [sync(world, group_id, leader, assignments), *followers]]
    assert all(s.error == E.NONE for s in synced)
    return joins


async def test_two_members_join_and_both_get_the_leaders_assignment(world, autojump_clock):
    async with world.running():
        await world.groups.ensure_offsets_topic()
        first, second = member_id_given(world, "shop"), member_id_given(world, "shop")
        joins = [join(world, "shop", first), join(world, "shop", second)]
        assert not any(w.done for w in joins)  # the first rebalance waits group.initial.rebalance.delay.ms
        started = trio.current_time()
        a, b = [await result(w) for w in joins]
        assert trio.current_time() - started >= 3.0  # the default delay, in mock time
        assert (a.error, b.error, a.generation_id, b.generation_id) == (E.NONE, E.NONE, 1, 1)
        assert a.leader == b.leader and a.leader in (first, second)
        leader, follower = (a, b) if a.member_id == a.leader else (b, a)
        assert sorted(m for m, _, _ in leader.members) == sorted([first, second]) and follower.members == []

        follower_sync = sync(world, "shop", follower)
        assert not follower_sync.done
        leader_sync = sync(world, "shop", leader, {leader.member_id: b"orders-0", follower.member_id: b"orders-1"})
        got: list[SyncResult] = [await result(leader_sync), await result(follower_sync)]
        assert [(s.error, s.assignment) for s in got] == [(E.NONE, b"orders-0"), (E.NONE, b"orders-1")]
        group = world.groups.groups["shop"]
        assert (group.state, group.generation_id) == ("Stable", 1)
        assert world.groups.heartbeat("shop", 1, follower.member_id, None) == E.NONE


async def test_a_member_that_stops_heartbeating_is_removed_after_its_session_timeout(world, autojump_clock):
    async with world.running():
        await world.groups.ensure_offsets_topic()
        alive, silent = await form_group(world, "shop")
        started = trio.current_time()
        heartbeats = []
        while (error := world.groups.heartbeat("shop", 1, alive.member_id, None)) == E.NONE:
            heartbeats.append(trio.current_time() - started)
            await trio.sleep(3)  # only one member heartbeats, well within its session timeout
        assert error == E.REBALANCE_IN_PROGRESS
        removed_after = trio.current_time() - started
        assert SESSION_TIMEOUT_MS / 1000 <= removed_after <= SESSION_TIMEOUT_MS / 1000 + 3
        assert silent.member_id not in world.groups.groups["shop"].members

        rejoined = await result(join(world, "shop", alive.member_id))
        assert (rejoined.error, rejoined.generation_id, rejoined.leader) == (E.NONE, 2, alive.member_id)
        assert [m for m, _, _ in rejoined.members] == [alive.member_id]
        assert world.groups.heartbeat("shop", 1, silent.member_id, None) == E.UNKNOWN_MEMBER_ID


async def test_offsets_and_a_stable_group_come_back_when_the_coordinator_is_rebuilt(world, autojump_clock):
    await world.topics.create_topic("orders", 2)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = await form_group(world, "shop")
        committed = world.groups.commit_offsets(
            group_id="shop", generation_id=1, member_id=a.member_id, group_instance_id=None, retention_time_ms=-1,
            topics=[("orders", [(0, 42, 5, "a's progress"), (1, 7, 5, None)])], api_version=9)
        assert committed == [("orders", [(0, E.NONE), (1, E.NONE)])]
        simple = world.groups.commit_offsets(group_id="tool", generation_id=-1, member_id="", group_instance_id=None,
                                             retention_time_ms=-1, topics=[("orders", [(0, 3, -1, None)])],
                                             api_version=9)
        assert simple == [("orders", [(0, E.NONE)])]
        assignments = {m.member_id: m.assignment for m in world.groups.groups["shop"].members.values()}

    world.reopen()  # a broker restart: new logs, new coordinators, the same data directory
    assert world.groups.groups == {}
    async with world.running():
        assert world.groups.fetch_offsets("shop", None) == (E.NONE, [
            ("orders", [(0, 42, 5, "a's progress", E.NONE), (1, 7, 5, "", E.NONE)])])
        assert world.groups.fetch_offsets("tool", [("orders", [0, 1])]) == (E.NONE, [
            ("orders", [(0, 3, -1, "", E.NONE), (1, -1, -1, "", E.NONE)])])
        group = world.groups.groups["shop"]
        assert (group.state, group.generation_id, group.leader_id) == ("Stable", 1, a.leader)
        assert {m.member_id: m.assignment for m in group.members.values()} == assignments
        # the members go on heartbeating with their generation, no rebalance
        assert [world.groups.heartbeat("shop", 1, j.member_id, None) for j in (a, b)] == [E.NONE, E.NONE]
        assert sorted(g for g, _, _, _ in world.groups.list_groups()) == ["shop", "tool"]
