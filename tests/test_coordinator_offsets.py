"""The group coordinator's offset store driven directly, without sockets: a deleted topic's committed
offsets go with it (also after a rebuild from the log); OffsetDelete removes the offsets of a topic
the group no longer consumes and refuses one it does; an empty group's offsets expire after
offsets.retention.minutes and the group goes with them, while a group with members keeps its own;
DeleteGroups tombstones a group and its offsets together."""

from __future__ import annotations

import pytest

from kbroker.protocol.errors import ErrorCode as E
from tests.coordinator_world import CoordinatorWorld
from tests.test_coordinator_groups import form_group

RETENTION_MS = 60_000


@pytest.fixture
async def world(tmp_path):
    world = CoordinatorWorld(tmp_path, **{"offsets.retention.minutes": RETENTION_MS // 60_000})
    await world.topics.create_topic("orders", 2)
    await world.topics.create_topic("refunds", 1)
    await world.groups.ensure_offsets_topic()
    yield world
    world.close()


def commit(world: CoordinatorWorld, group_id: str, offsets: dict[tuple[str, int], int], generation: int = -1,
           member_id: str = ""):
    by_topic: dict[str, list] = {}
    for (topic, partition), offset in offsets.items():
        by_topic.setdefault(topic, []).append((partition, offset, -1, None))
    return world.groups.commit_offsets(group_id=group_id, generation_id=generation, member_id=member_id,
                                       group_instance_id=None, retention_time_ms=-1, topics=list(by_topic.items()),
                                       api_version=9)


def committed(world: CoordinatorWorld, group_id: str) -> dict[tuple[str, int], int]:
    error, topics = world.groups.fetch_offsets(group_id, None)
    assert error == E.NONE
    return {(topic, p): offset for topic, parts in topics for p, offset, _, _, _ in parts}


async def test_a_deleted_topics_offsets_go_with_it_also_after_a_rebuild(world, autojump_clock):
    async with world.running():
        commit(world, "billing", {("orders", 0): 5, ("orders", 1): 6, ("refunds", 0): 7})
        await world.topics.delete_topic("orders")
        assert committed(world, "billing") == {("refunds", 0): 7}
    world.reopen()
    async with world.running():
        assert committed(world, "billing") == {("refunds", 0): 7}


async def test_offset_delete_removes_a_topic_no_longer_consumed_and_refuses_a_subscribed_one(world, autojump_clock):
    async with world.running():
        leader, _ = await form_group(world, "shop")  # both consume "orders"
        commit(world, "shop", {("orders", 0): 1, ("refunds", 0): 2}, generation=1, member_id=leader.member_id)
        assert world.groups.delete_offsets("shop", [("orders", [0]), ("refunds", [0]), ("missing", [0])]) == (
            E.NONE, [("orders", [(0, E.GROUP_SUBSCRIBED_TO_TOPIC)]), ("refunds", [(0, E.NONE)]),
                     ("missing", [(0, E.UNKNOWN_TOPIC_OR_PARTITION)])])
        assert committed(world, "shop") == {("orders", 0): 1}
        assert world.groups.delete_offsets("nobody", [("orders", [0])]) == (E.GROUP_ID_NOT_FOUND, [])


async def test_an_empty_groups_offsets_expire_and_the_group_with_them(world, autojump_clock):
    async with world.running():
        commit(world, "tool", {("refunds", 0): 3})  # a simple group: only offsets
        member, _ = await form_group(world, "shop")
        commit(world, "shop", {("orders", 0): 1}, generation=1, member_id=member.member_id)
        committed_at = world.groups.offsets["tool"][("refunds", 0)].commit_timestamp
        later = max(committed_at, world.groups.offsets["shop"][("orders", 0)].commit_timestamp) + RETENTION_MS

        assert world.groups.expire_offsets(committed_at + RETENTION_MS - 1) == 0
        assert world.groups.expire_offsets(later) == 1  # the simple group's; the group with members keeps its own
        assert committed(world, "tool") == {} and "tool" not in world.groups.groups
        assert committed(world, "shop") == {("orders", 0): 1}
        assert sorted(g for g, _, _, _ in world.groups.list_groups()) == ["shop"]


async def test_delete_groups_removes_an_empty_group_and_its_offsets_for_good(world, autojump_clock):
    async with world.running():
        commit(world, "tool", {("refunds", 0): 3, ("orders", 1): 4})
        leader, _ = await form_group(world, "shop")
        assert world.groups.delete_groups(["tool", "shop", "missing", ""]) == [
            ("tool", E.NONE), ("shop", E.NON_EMPTY_GROUP), ("missing", E.GROUP_ID_NOT_FOUND),
            ("", E.INVALID_GROUP_ID)]
        assert committed(world, "tool") == {}
    world.reopen()
    async with world.running():
        assert "tool" not in world.groups.groups and committed(world, "tool") == {}
        assert world.groups.groups["shop"].state == "Stable"
