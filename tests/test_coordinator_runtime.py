"""The coordinator runtime on its own, over a real log: what a coordinator appends comes back on
replay in log order (data records with their transaction's producer, then the transaction's marker),
and a failed append is told to the client as Kafka's coordinators tell it, changing nothing."""

from __future__ import annotations

import errno

import pytest

from kbroker.coordinator import CoordinatorRuntime, InternalTopic, coordinator_error, partition_for
from kbroker.protocol.errors import ApiError
from kbroker.protocol.errors import ErrorCode as E
from tests.coordinator_world import CoordinatorWorld


@pytest.fixture
def world(tmp_path):
    world = CoordinatorWorld(tmp_path)
    yield world
    world.close()


def runtime_of(world: CoordinatorWorld, partitions: int = 3) -> CoordinatorRuntime:
    return CoordinatorRuntime(InternalTopic("__share_group_state", partitions, {"cleanup.policy": "compact"}),
                              catalogue=world.metadata, ensure_topic=world.topics.ensure_topic,
                              partitions=world.partitions)


async def test_what_a_coordinator_appends_is_replayed_in_log_order_with_its_markers(world):
    runtime = runtime_of(world)
    topic = await runtime.ensure_topic()
    assert (topic.name, topic.partitions, topic.configs) == ("__share_group_state", 3, {"cleanup.policy": "compact"})
    partition = runtime.partition_for("g1")
    assert partition == partition_for("g1", 3)
    assert runtime.append("g1", [(b"k1", b"v1"), (b"k2", None)]) == E.NONE
    assert runtime.append("g1", [(b"k3", b"pending")], producer_id=7, producer_epoch=0, transactional=True) == E.NONE
    world.partition_log("__share_group_state", partition).append_end_txn_marker(7, 0, commit=True)
    assert runtime.append("g1", []) == E.NONE  # nothing to write

    seen = []
    count = runtime.replay(lambda p, k, v, pid: seen.append(("record", p, k, v, pid)),
                           lambda p, pid, commit: seen.append(("marker", p, pid, commit)))
    assert count == 3
    assert seen == [("record", partition, b"k1", b"v1", None), ("record", partition, b"k2", None, None),
                    ("record", partition, b"k3", b"pending", 7), ("marker", partition, 7, True)]


def test_a_coordinator_without_its_topic_loads_nothing_and_cannot_write(world):
    runtime = runtime_of(world)
    assert runtime.topic() is None
    assert runtime.partition_for("g1") == partition_for("g1", 3)  # keys hash over the configured count meanwhile
    assert runtime.replay(lambda *record: None) == 0
    assert runtime.append("g1", [(b"k", b"v")]) == E.COORDINATOR_NOT_AVAILABLE


async def test_a_disk_error_during_an_offset_commit_answers_not_coordinator_and_commits_nothing(world, monkeypatch):
    await world.topics.create_topic("orders", 1)
    await world.groups.ensure_offsets_topic()
    offsets_log = world.partition_log("__consumer_offsets", world.groups.partition_for("shop"))

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(offsets_log, "append", disk_full)
    committed = world.groups.commit_offsets(group_id="shop", generation_id=-1, member_id="", group_instance_id=None,
                                            retention_time_ms=-1, topics=[("orders", [(0, 5, -1, None)])],
                                            api_version=9)
    assert committed == [("orders", [(0, E.NOT_COORDINATOR)])]
    assert world.groups.fetch_offsets("shop", [("orders", [0])]) == (E.NONE, [("orders", [(0, -1, -1, "", E.NONE)])])


@pytest.mark.parametrize("error, told", [
    (E.UNKNOWN_TOPIC_OR_PARTITION, E.COORDINATOR_NOT_AVAILABLE),
    (E.NOT_ENOUGH_REPLICAS, E.COORDINATOR_NOT_AVAILABLE),
    (E.REQUEST_TIMED_OUT, E.COORDINATOR_NOT_AVAILABLE),
    (E.NOT_LEADER_OR_FOLLOWER, E.NOT_COORDINATOR),
    (E.KAFKA_STORAGE_ERROR, E.NOT_COORDINATOR),
    (E.MESSAGE_TOO_LARGE, E.UNKNOWN_SERVER_ERROR),
    (E.RECORD_LIST_TOO_LARGE, E.UNKNOWN_SERVER_ERROR),
])
def test_failed_appends_are_told_as_kafkas_coordinators_tell_them(error, told):
    assert coordinator_error(ApiError(error)) == told
    assert coordinator_error(ApiError(error), E.UNKNOWN_SERVER_ERROR) == told


def test_other_append_errors_pass_on_unless_the_coordinator_says_otherwise():
    # a transactional offset commit of a fenced producer: the group coordinator passes the log's error on
    assert coordinator_error(ApiError(E.INVALID_PRODUCER_EPOCH)) == E.INVALID_PRODUCER_EPOCH
    # the transaction coordinator answers anything unexpected with UNKNOWN_SERVER_ERROR
    assert coordinator_error(ApiError(E.INVALID_PRODUCER_EPOCH), E.UNKNOWN_SERVER_ERROR) == E.UNKNOWN_SERVER_ERROR
    assert coordinator_error(OSError(errno.EIO, "I/O error")) == E.NOT_COORDINATOR
