"""A classic group upgraded online to a KIP-848 consumer group and back (group.consumer.migration.policy),
driven through the group coordinator without sockets over a real log (tests/coordinator_world.py).

Two classic consumers share "orders"; a consumer-protocol member joins and the group becomes a
consumer group whose classic members keep using JoinGroup/SyncGroup/Heartbeat: told to rejoin by
REBALANCE_IN_PROGRESS, they get their share in SyncGroup, and a partition moves only once the classic
member that had it rejoined without it. When the consumer-protocol member leaves, the group is
classic again and rebalances. Time is trio's MockClock where timeouts matter."""

from __future__ import annotations

import pytest
import trio

from kbroker.groups.classic import Waiter
from kbroker.protocol.errors import ErrorCode as E
from kbroker.protocol.messages.consumer_protocol_assignment import ConsumerProtocolAssignment
from kbroker.protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from kbroker.protocol.primitives import Reader, Writer
from tests.coordinator_world import CoordinatorWorld
from tests.test_coordinator_consumer_groups import Consumer

SESSION_MS = 10_000
ORDERS = {("orders", p) for p in range(6)}


@pytest.fixture
def world(tmp_path):
    world = CoordinatorWorld(tmp_path)
    yield world
    world.close()


def _subscription(owned: set[tuple[str, int]]) -> bytes:
    sub = ConsumerProtocolSubscription(topics=["orders"], owned_partitions=[
        ConsumerProtocolSubscription.TopicPartition(topic=t, partitions=sorted(p for tt, p in owned if tt == t))
        for t in sorted({t for t, _ in owned})])
    w = Writer()
    w.int16(1)
    sub.encode(w, 1)
    return w.getvalue()


def _assignment(partitions: set[tuple[str, int]]) -> bytes:
    a = ConsumerProtocolAssignment(assigned_partitions=[
        ConsumerProtocolAssignment.TopicPartition(topic="orders", partitions=sorted(p for _, p in partitions))])
    w = Writer()
    w.int16(1)
    a.encode(w, 1)
    return w.getvalue()


def _decode_assignment(data: bytes) -> set[tuple[str, int]]:
    r = Reader(data)
    version = r.int16()
    a = ConsumerProtocolAssignment.decode(r, version)
    return {(tp.topic, p) for tp in a.assigned_partitions for p in tp.partitions}


class ClassicConsumer:
    """A cooperative classic consumer: rejoins reporting what it owns, keeps what SyncGroup gives it."""

    def __init__(self, world: CoordinatorWorld, group_id: str = "shop", instance_id: str | None = None):
        self.world, self.group_id, self.instance_id = world, group_id, instance_id
        self.member_id, self.generation = "", -1
        self.owned: set[tuple[str, int]] = set()

    def join(self):
        waiter = Waiter()
        self.world.groups.join_group(
            group_id=self.group_id, member_id=self.member_id, group_instance_id=self.instance_id,
            protocol_type="consumer", protocols=[("cooperative-sticky", _subscription(self.owned))], session_timeout_ms=SESSION_MS,
            rebalance_timeout_ms=SESSION_MS, client_id="classic", client_host="/127.0.0.1", api_version=9,
            waiter=waiter)
        return waiter

    def rejoin(self):
        """JoinGroup (twice when the member id is first given) answered at once: a consumer group's way."""
        result = self.join().result
        if result.error == E.MEMBER_ID_REQUIRED:
            self.member_id = result.member_id
            result = self.join().result
        assert result.error == E.NONE, result
        assert result.leader == "" and result.members == []  # never the leader: the coordinator assigns
        self.member_id, self.generation = result.member_id, result.generation_id
        return result

    def sync(self, assignments: dict[str, bytes] | None = None):
        waiter = Waiter()
        self.world.groups.sync_group(group_id=self.group_id, generation_id=self.generation, member_id=self.member_id,
                                     group_instance_id=self.instance_id, protocol_type="consumer",
                                     protocol_name="cooperative-sticky", assignments=assignments or {}, waiter=waiter)
        return waiter

    def heartbeat(self) -> int:
        return self.world.groups.heartbeat(self.group_id, self.generation, self.member_id, self.instance_id)

    def rebalance(self) -> None:
        """What the client does on REBALANCE_IN_PROGRESS: rejoin, sync, keep only what it was given."""
        self.rejoin()
        result = self.sync().result
        assert result.error == E.NONE, result
        self.owned = _decode_assignment(result.assignment)


async def form_classic_group(world: CoordinatorWorld) -> tuple[ClassicConsumer, ClassicConsumer]:
    """Two classic consumers with the leader's assignment: 0-2 to the first, 3-5 to the second."""
    a, b = ClassicConsumer(world), ClassicConsumer(world)
    for c in (a, b):
        first = c.join().result
        assert first.error == E.MEMBER_ID_REQUIRED
        c.member_id = first.member_id
    joins = [a.join(), b.join()]
    while not all(w.done for w in joins):
        await trio.sleep(0.5)  # the initial rebalance delay
    for c, w in zip((a, b), joins):
        assert w.result.error == E.NONE
        c.generation = w.result.generation_id
    leader = a if joins[0].result.members else b
    shares = {a.member_id: {("orders", p) for p in range(3)}, b.member_id: {("orders", p) for p in range(3, 6)}}
    syncs = {c.member_id: c.sync({m: _assignment(s) for m, s in shares.items()} if c is leader else None)
             for c in (b, a)}
    for c in (a, b):
        await syncs[c.member_id].event.wait()
        c.owned = _decode_assignment(syncs[c.member_id].result.assignment)
    assert a.owned | b.owned == ORDERS
    return a, b


def run_until_stable(classics: list[ClassicConsumer], consumers: list[Consumer], rounds: int = 12,
                     settle: bool = True) -> None:
    """Every member heartbeats in turn; classic members rebalance whenever told to (``settle``:
    until nothing changes any more)."""
    for _ in range(rounds):
        before = ([c.owned for c in classics], [dict(c.owned) for c in consumers])
        for c in classics:
            error = c.heartbeat()
            if error == E.REBALANCE_IN_PROGRESS:
                c.rebalance()
            else:
                assert error == E.NONE
        for c in consumers:
            assert c.heartbeat().error == E.NONE
        if ([c.owned for c in classics], [dict(c.owned) for c in consumers]) == before and all(
                c.heartbeat() == E.NONE for c in classics):
            return
    if settle:
        raise AssertionError("the mixed group did not settle")


def assert_shared_once(classics: list[ClassicConsumer], consumers: list[Consumer]) -> None:
    seen = [c.owned for c in classics] + [c.partitions() for c in consumers]
    assert set().union(*seen) == ORDERS
    assert sum(len(s) for s in seen) == len(ORDERS), f"a partition is owned twice: {seen}"
    assert sorted(len(s) for s in seen) == [2, 2, 2]


async def test_a_consumer_protocol_member_upgrades_a_classic_group_online_and_the_three_share_it(world,
                                                                                                 autojump_clock):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = await form_classic_group(world)
        generation = a.generation
        c = Consumer(world, "shop")
        joined = c.heartbeat()
        assert joined.error == E.NONE
        group = world.groups.consumer.groups["shop"]
        assert "shop" not in world.groups.groups
        assert world.groups.list_groups() == [("shop", "consumer", "Reconciling", "consumer")]
        assert group.group_epoch == generation + 1
        assert {m.member_id for m in group.classic_members()} == {a.member_id, b.member_id}
        assert c.partitions() == set()  # nothing is free yet: the classic members still own all six
        # the classic members learn of the new epoch by their heartbeat
        assert a.heartbeat() == E.REBALANCE_IN_PROGRESS
        run_until_stable([a, b], [c])
        assert_shared_once([a, b], [c])
        assert group.state == "Stable"
        # a classic member's generation is its member epoch, for its commits too
        commit = dict(group_id="shop", member_id=a.member_id, group_instance_id=None, retention_time_ms=-1,
                      topics=[("orders", [(p, 5, -1, None) for _, p in sorted(a.owned)])], api_version=8)
        assert world.groups.commit_offsets(generation_id=a.generation, **commit)[0][1][0][1] == E.NONE
        assert world.groups.commit_offsets(generation_id=a.generation - 1, **commit)[0][1][0][1] == \
            E.ILLEGAL_GENERATION


async def test_a_partition_moves_from_a_classic_member_only_once_it_rejoined_without_it(world, autojump_clock):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = await form_classic_group(world)
        c = Consumer(world, "shop")
        c.heartbeat()
        group = world.groups.consumer.groups["shop"]
        # a rejoins still owning its three: it must revoke one, and nobody gets it before it did
        a.rejoin()
        member_a = group.members[a.member_id]
        assert member_a.state == 1  # UNREVOKED_PARTITIONS
        kept = _decode_assignment(a.sync().result.assignment)
        assert len(kept) == 2 and kept < a.owned
        released = a.owned - kept
        c.heartbeat()
        assert not c.partitions() & released
        a.owned = kept  # the cooperative client revokes, then rejoins
        assert a.heartbeat() == E.REBALANCE_IN_PROGRESS
        a.rebalance()
        c.heartbeat()
        assert released <= c.partitions()


async def test_the_mixed_group_comes_back_after_a_restart_with_its_classic_members(world, autojump_clock):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = await form_classic_group(world)
        c = Consumer(world, "shop")
        c.heartbeat()
        run_until_stable([a, b], [c])
        group = world.groups.consumer.groups["shop"]
        before = {m.member_id: (m.assignment, m.metadata) for m in group.members.values()}
    world.reopen()
    async with world.running():
        group = world.groups.consumer.groups["shop"]
        assert {m.member_id: (m.assignment, m.metadata) for m in group.members.values()} == before
        assert group.members[a.member_id].classic.session_timeout_ms == SESSION_MS
        assert "shop" not in world.groups.groups
        assert a.heartbeat() == E.NONE and b.heartbeat() == E.NONE
        # a classic member's own session timeout applies (10 s, not the consumer protocol's 45 s)
        for _ in range(2):
            await trio.sleep(4)
            assert b.heartbeat() == E.NONE and c.heartbeat().error == E.NONE
        assert a.member_id in group.members
        await trio.sleep(3)
        assert a.member_id not in group.members
        assert b.heartbeat() == E.REBALANCE_IN_PROGRESS


async def test_when_the_last_consumer_protocol_member_leaves_the_group_is_classic_again(world, autojump_clock):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = await form_classic_group(world)
        c = Consumer(world, "shop")
        c.heartbeat()
        run_until_stable([a, b], [c])
        epoch = world.groups.consumer.groups["shop"].group_epoch
        assert c.leave().error == E.NONE
        assert "shop" not in world.groups.consumer.groups
        classic = world.groups.groups["shop"]
        assert (classic.state, classic.generation_id, classic.protocol_type) == ("PreparingRebalance", epoch,
                                                                                   "consumer")
        assert [g[3] for g in world.groups.list_groups()] == ["classic"]
        # both rejoin as in any classic rebalance; the leader assigns all six between them
        assert a.heartbeat() == E.REBALANCE_IN_PROGRESS
        joins = [a.join(), b.join()]
        while not all(w.done for w in joins):
            await trio.sleep(0.5)
        assert {w.result.generation_id for w in joins} == {epoch + 1}
        for cons, w in zip((a, b), joins):
            cons.generation = w.result.generation_id
        leader = a if joins[0].result.members else b
        shares = {a.member_id: {("orders", p) for p in (0, 1, 2)}, b.member_id: {("orders", p) for p in (3, 4, 5)}}
        syncs = [cons.sync({m: _assignment(s) for m, s in shares.items()} if cons is leader else None)
                 for cons in (b, a)]
        for w in syncs:
            await w.event.wait()
            assert w.result.error == E.NONE
        assert classic.state == "Stable"
    world.reopen()
    async with world.running():
        assert world.groups.groups["shop"].state == "Stable" and "shop" not in world.groups.consumer.groups


async def test_the_migration_policy_can_forbid_the_online_upgrade(tmp_path, autojump_clock):
    world = CoordinatorWorld(tmp_path, **{"group.consumer.migration.policy": "downgrade"})
    try:
        await world.topics.create_topic("orders", 6)
        async with world.running():
            await world.groups.ensure_offsets_topic()
            await form_classic_group(world)
            refused = Consumer(world, "shop").heartbeat()
            assert refused.error == E.GROUP_ID_NOT_FOUND
            assert world.groups.groups["shop"].state == "Stable"
    finally:
        world.close()


async def test_a_classic_member_of_another_protocol_type_is_not_upgraded(world):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        waiter = Waiter()
        world.groups.join_group(group_id="connect", member_id="", group_instance_id=None, protocol_type="connect",
                                protocols=[("default", b"x")], session_timeout_ms=SESSION_MS,
                                rebalance_timeout_ms=SESSION_MS, client_id="w", client_host="/h", api_version=3,
                                waiter=waiter)
        refused = Consumer(world, "connect").heartbeat()
        assert refused.error == E.GROUP_ID_NOT_FOUND
        assert "connect" in world.groups.groups and "connect" not in world.groups.consumer.groups


async def test_a_classic_member_told_to_rejoin_that_never_does_is_fenced_after_its_rebalance_timeout(
        world, autojump_clock):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = await form_classic_group(world)
        c = Consumer(world, "shop")
        c.heartbeat()
        group = world.groups.consumer.groups["shop"]
        b.rebalance()
        # a keeps heartbeating (its session never lapses) but never rejoins
        for _ in range(3):
            assert a.heartbeat() == E.REBALANCE_IN_PROGRESS
            run_until_stable([b], [c], rounds=1, settle=False)
            await trio.sleep(3)
        assert a.member_id in group.members
        run_until_stable([b], [c], rounds=1, settle=False)
        await trio.sleep(2)  # 11 s after it was first told: past its 10 s rebalance timeout
        assert a.member_id not in group.members
        assert a.heartbeat() == E.UNKNOWN_MEMBER_ID
        run_until_stable([b], [c])
        assert sorted([len(b.owned), len(c.partitions())]) == [3, 3]
        assert not b.owned & c.partitions()


async def test_a_static_classic_member_restarted_with_the_consumer_protocol_takes_its_own_place(world):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        c = Consumer(world, "shop")
        c.heartbeat()
        static = ClassicConsumer(world, instance_id="checkout-1")
        static.rebalance()  # a static member joins at once, no member id round trip
        run_until_stable([static], [c])
        group = world.groups.consumer.groups["shop"]
        assert group.static_member("checkout-1").uses_classic_protocol
        kept = static.owned
        # the same instance comes back with group.protocol=consumer: no need to wait for a -2 leave
        restarted = Consumer(world, "shop", instance_id="checkout-1")
        assert restarted.heartbeat().error == E.NONE
        member = group.static_member("checkout-1")
        assert member.member_id == restarted.member_id and not member.uses_classic_protocol
        assert static.member_id not in group.members
        assert restarted.partitions() == kept
        assert static.heartbeat() == E.FENCED_INSTANCE_ID


async def test_the_last_consumer_protocol_static_member_restarted_as_classic_downgrades_without_a_rebalance(
        world, autojump_clock):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = await form_classic_group(world)
        c = Consumer(world, "shop", instance_id="checkout-1")
        c.heartbeat()
        run_until_stable([a, b], [c])
        epoch = world.groups.consumer.groups["shop"].group_epoch
        owned_by_c = c.partitions()
        # the instance restarts with group.protocol=classic (a rolling downgrade)
        restarted = ClassicConsumer(world, instance_id="checkout-1")
        joined = restarted.rejoin()
        assert "shop" not in world.groups.consumer.groups
        classic = world.groups.groups["shop"]
        assert (classic.state, classic.generation_id, joined.generation_id) == ("Stable", epoch, epoch)
        assert set(classic.members) == {a.member_id, b.member_id, restarted.member_id}
        synced = restarted.sync().result
        assert synced.error == E.NONE and _decode_assignment(synced.assignment) == owned_by_c
        assert a.heartbeat() == E.NONE and b.heartbeat() == E.NONE  # nobody rebalances
    world.reopen()
    async with world.running():
        assert set(world.groups.groups["shop"].members) == {a.member_id, b.member_id, restarted.member_id}
