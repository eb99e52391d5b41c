"""KIP-848 consumer groups driven through the group coordinator, without sockets, over a real log in a
temporary directory (tests/coordinator_world.py). Consumers heartbeat as a Kafka 4.x client does: join
with epoch 0, then report their epoch and the partitions they own. Time is trio's MockClock."""

from __future__ import annotations

import uuid

import pytest
import trio

from kbroker.groups.consumer_protocol import Heartbeat
from kbroker.protocol.errors import ErrorCode as E
from tests.coordinator_world import CoordinatorWorld

SESSION_S = 45.0


@pytest.fixture
def world(tmp_path):
    world = CoordinatorWorld(tmp_path)
    yield world
    world.close()


class Consumer:
    """A consumer's side of the protocol: it owns what it was given, revokes what it was not."""

    def __init__(self, world: CoordinatorWorld, group_id: str, topics=("orders",), regex: str | None = None,
                 instance_id: str | None = None, assignor: str | None = None):
        self.world, self.group_id = world, group_id
        self.member_id = str(uuid.uuid4())
        self.topics, self.regex, self.instance_id, self.assignor = topics, regex, instance_id, assignor
        self.epoch = 0
        self.owned: dict[uuid.UUID, frozenset[int]] = {}

    def heartbeat(self, epoch: int | None = None):
        joining = self.epoch == 0
        result = self.world.groups.consumer_group_heartbeat(Heartbeat(
            group_id=self.group_id, member_id=self.member_id, member_epoch=self.epoch if epoch is None else epoch,
            instance_id=self.instance_id, rebalance_timeout_ms=30_000 if joining else -1,
            subscribed_topic_names=list(self.topics) if joining and self.regex is None else None,
            subscribed_topic_regex=self.regex if joining else None, server_assignor=self.assignor if joining else None,
            owned=dict(self.owned), client_id="consumer", client_host="/127.0.0.1"))
        if result.error == E.NONE:
            self.epoch = result.member_epoch
            if result.assignment is not None:
                self.owned = dict(result.assignment)
        return result

    def partitions(self) -> set[tuple[str, int]]:
        names = {t.topic_id: t.name for t in self.world.metadata.topics()}
        return {(names[t], p) for t, ps in self.owned.items() for p in ps}

    def leave(self, epoch: int = -1):
        return self.heartbeat(epoch)


def settle(*consumers: Consumer, rounds: int = 10) -> None:
    """Heartbeat round after round until nobody's assignment or epoch changes."""
    for _ in range(rounds):
        before = [(c.epoch, dict(c.owned)) for c in consumers]
        for c in consumers:
            assert c.heartbeat().error == E.NONE
        if [(c.epoch, dict(c.owned)) for c in consumers] == before:
            return
    raise AssertionError("the group did not settle")


def assert_shared(consumers, expected: set[tuple[str, int]]) -> None:
    seen = [c.partitions() for c in consumers]
    assert set().union(*seen) == expected
    assert sum(len(s) for s in seen) == len(expected), f"a partition is owned twice: {seen}"
    sizes = sorted(len(s) for s in seen)
    assert sizes[-1] - sizes[0] <= 1, f"unbalanced: {seen}"


def orders(n: int = 6) -> set[tuple[str, int]]:
    return {("orders", p) for p in range(n)}


async def test_two_then_three_consumers_share_six_partitions_and_a_partition_moves_only_once_revoked(world):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = Consumer(world, "shop"), Consumer(world, "shop")
        first = a.heartbeat()
        assert (first.error, first.member_epoch, len(a.partitions())) == (E.NONE, 1, 6)
        b.heartbeat()
        assert b.partitions() == set()  # a still owns everything until it revokes
        a.heartbeat()  # told to give three up: it keeps its epoch until it did
        assert len(a.partitions()) == 3 and a.epoch == 1
        settle(a, b)
        assert_shared([a, b], orders())
        c = Consumer(world, "shop")
        c.heartbeat()
        settle(a, b, c)
        assert_shared([a, b, c], orders())
        group = world.groups.consumer.groups["shop"]
        assert group.state == "Stable" and {m.member_epoch for m in group.members.values()} == {group.group_epoch}
        assert world.groups.list_groups(types=["consumer"]) == [("shop", "consumer", "Stable", "consumer")]
        assert world.groups.list_groups(types=["classic"]) == []


async def test_a_member_that_leaves_or_goes_silent_has_its_partitions_moved(world, autojump_clock):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b, c = (Consumer(world, "shop") for _ in range(3))
        for consumer in (a, b, c):
            consumer.heartbeat()
        settle(a, b, c)
        assert c.leave().error == E.NONE
        settle(a, b)
        assert_shared([a, b], orders())
        # b stops heartbeating: after the session timeout a gets everything
        started = trio.current_time()
        while len(a.partitions()) < 6:
            await trio.sleep(5)
            assert a.heartbeat().error == E.NONE
        assert SESSION_S <= trio.current_time() - started <= SESSION_S + 5
        assert b.heartbeat().error == E.UNKNOWN_MEMBER_ID


async def test_epochs_are_checked(world):
    await world.topics.create_topic("orders", 2)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a = Consumer(world, "shop")
        a.heartbeat()
        assert a.heartbeat(epoch=a.epoch + 1).error == E.FENCED_MEMBER_EPOCH
        assert Consumer(world, "shop").heartbeat(epoch=3).error == E.UNKNOWN_MEMBER_ID
        assert Consumer(world, "nowhere").heartbeat(epoch=3).error == E.GROUP_ID_NOT_FOUND
        bad = Consumer(world, "shop", assignor="sticky")
        assert bad.heartbeat().error == E.UNSUPPORTED_ASSIGNOR
        assert Consumer(world, "shop", regex="orders(").heartbeat().error == E.INVALID_REGULAR_EXPRESSION
        # OffsetCommit v9: the member epoch must be the member's current one
        commit = dict(group_id="shop", member_id=a.member_id, group_instance_id=None, retention_time_ms=-1,
                      topics=[("orders", [(0, 5, -1, None)])])
        assert world.groups.commit_offsets(generation_id=a.epoch, api_version=9, **commit) == [("orders", [(0, E.NONE)])]
        assert world.groups.commit_offsets(generation_id=a.epoch - 1, api_version=9, **commit) == [
            ("orders", [(0, E.STALE_MEMBER_EPOCH)])]
        assert world.groups.commit_offsets(generation_id=a.epoch, api_version=8, **commit) == [
            ("orders", [(0, E.UNSUPPORTED_VERSION)])]
        assert world.groups.fetch_offsets("shop", None, member_id=a.member_id, member_epoch=a.epoch - 1)[0] == \
            E.STALE_MEMBER_EPOCH
        assert world.groups.delete_groups(["shop"]) == [("shop", E.NON_EMPTY_GROUP)]


async def test_the_range_assignor_when_the_members_ask_for_it(world):
    await world.topics.create_topic("orders", 4)
    await world.topics.create_topic("payments", 4)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = (Consumer(world, "shop", topics=("orders", "payments"), assignor="range") for _ in range(2))
        a.heartbeat()
        b.heartbeat()
        settle(a, b)
        first, second = sorted((a, b), key=lambda c: c.member_id)
        assert first.partitions() == {("orders", 0), ("orders", 1), ("payments", 0), ("payments", 1)}
        assert second.partitions() == {("orders", 2), ("orders", 3), ("payments", 2), ("payments", 3)}


async def test_a_regex_subscription_picks_up_a_topic_created_later(world):
    await world.topics.create_topic("events-a", 2)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a = Consumer(world, "shop", regex="events-.*")
        a.heartbeat()
        assert a.partitions() == {("events-a", 0), ("events-a", 1)}
        await world.topics.create_topic("events-b", 2)
        await world.topics.create_topic("other", 2)
        a.heartbeat()
        assert a.partitions() == {("events-a", 0), ("events-a", 1), ("events-b", 0), ("events-b", 1)}


async def test_a_static_member_leaving_with_epoch_minus_two_hands_its_partitions_to_its_next_instance(world):
    await world.topics.create_topic("orders", 4)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = Consumer(world, "shop", instance_id="a"), Consumer(world, "shop", instance_id="b")
        a.heartbeat()
        b.heartbeat()
        settle(a, b)
        mine = a.partitions()
        assert Consumer(world, "shop", instance_id="a").heartbeat().error == E.UNRELEASED_INSTANCE_ID
        assert a.leave(epoch=-2).error == E.NONE
        epoch = world.groups.consumer.groups["shop"].group_epoch
        again = Consumer(world, "shop", instance_id="a")
        assert again.heartbeat().error == E.NONE
        assert again.partitions() == mine  # no rebalance: the same partitions, the same group epoch
        assert world.groups.consumer.groups["shop"].group_epoch == epoch
        assert a.heartbeat(epoch=a.epoch).error == E.FENCED_INSTANCE_ID


async def test_the_group_its_assignment_and_its_offsets_come_back_after_a_restart(world, autojump_clock):
    await world.topics.create_topic("orders", 6)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        a, b = Consumer(world, "shop"), Consumer(world, "shop")
        a.heartbeat()
        b.heartbeat()
        settle(a, b)
        world.groups.commit_offsets(group_id="shop", generation_id=a.epoch, member_id=a.member_id,
                                    group_instance_id=None, retention_time_ms=-1,
                                    topics=[("orders", [(p, 10 + p, -1, None) for p in range(6)])], api_version=9)
        group = world.groups.consumer.groups["shop"]
        before = (group.group_epoch, group.assignment_epoch, dict(group.target),
                  {m.member_id: m.assignment for m in group.members.values()})

    world.reopen()
    async with world.running():
        group = world.groups.consumer.groups["shop"]
        assert (group.group_epoch, group.assignment_epoch, dict(group.target),
                {m.member_id: m.assignment for m in group.members.values()}) == before
        assert "shop" not in world.groups.groups  # not also a classic group
        owned = (a.partitions(), b.partitions())
        settle(a, b)  # the members go on with their epochs, nothing moves
        assert (a.partitions(), b.partitions()) == owned
        error, topics = world.groups.fetch_offsets("shop", None)
        assert error == E.NONE and [(p, o) for p, o, *_ in topics[0][1]] == [(p, 10 + p) for p in range(6)]
        # nobody heartbeats: both are fenced after the session timeout, the group is empty and deletable
        await trio.sleep(SESSION_S + 1)
        assert group.state == "Empty"
        assert world.groups.delete_groups(["shop"]) == [("shop", E.NONE)]
        assert world.groups.fetch_offsets("shop", None) == (E.NONE, [])


async def test_an_empty_classic_group_is_upgraded_and_an_empty_consumer_group_downgraded(world):
    from kbroker.groups.classic import Waiter
    from tests.test_coordinator_groups import join

    await world.topics.create_topic("orders", 2)
    async with world.running():
        await world.groups.ensure_offsets_topic()
        world.groups.commit_offsets(group_id="shop", generation_id=-1, member_id="", group_instance_id=None,
                                    retention_time_ms=-1, topics=[("orders", [(0, 7, -1, None)])], api_version=9)
        assert world.groups.list_groups() == [("shop", "", "Empty", "classic")]
        a = Consumer(world, "shop")
        assert a.heartbeat().error == E.NONE
        assert world.groups.list_groups() == [("shop", "consumer", "Stable", "consumer")]
        assert world.groups.fetch_offsets("shop", [("orders", [0])])[1] == [("orders", [(0, 7, -1, "", E.NONE)])]
        taken_in = join(world, "shop")  # a classic member of a non-empty consumer group: a mixed group
        assert taken_in.result.error == E.MEMBER_ID_REQUIRED
        assert a.leave().error == E.NONE
        joined: Waiter = join(world, "shop")
        assert joined.result.error == E.MEMBER_ID_REQUIRED  # a classic group now
        assert [g[3] for g in world.groups.list_groups()] == ["classic"]
        assert Consumer(world, "classic-busy").heartbeat().error == E.NONE
