"""Consumer-group error paths and formats by raw requests, where real clients never go.

Each test speaks the wire with tests/kafka_wire.py and checks what Apache Kafka 4.x answers.
"""

from __future__ import annotations

import threading

import pytest

from kbroker.groups import records as fmt
from kbroker.protocol import records as rec
from kbroker.protocol.errors import ErrorCode as E
from kbroker.protocol.messages import (DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
                                       HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
                                       OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
                                       SyncGroupRequest)
from kbroker.protocol.primitives import Writer
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata


def subscription(*topics: str) -> bytes:
    """A ConsumerProtocolSubscription v0, as the Java consumer sends it."""
    w = Writer()
    w.int16(0)
    w.int32(len(topics))
    for t in topics:
        w.string(t)
    w.nullable_bytes(None)
    return w.getvalue()


def join(client: WireClient, group: str, member_id: str = "", *, version: int = 9, session: int = 6000,
         rebalance: int = 6000, instance: str | None = None, protocol_type: str = "consumer",
         protocols=(("range", subscription("t")),)):
    return client.request(JoinGroupRequest(
        group_id=group, session_timeout_ms=session, rebalance_timeout_ms=rebalance, member_id=member_id,
        group_instance_id=instance, protocol_type=protocol_type,
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(n, m) for n, m in protocols]), version)


def join_fully(client: WireClient, group: str, **kw):
    first = join(client, group, **kw)
    if first.error_code == E.MEMBER_ID_REQUIRED:
        return join(client, group, first.member_id, **kw)
    return first


def sync(client: WireClient, group: str, generation: int, member_id: str, assignments=(), *, instance=None,
         version: int = 5):
    return client.request(SyncGroupRequest(
        group_id=group, generation_id=generation, member_id=member_id, group_instance_id=instance,
        protocol_type="consumer", protocol_name="range",
        assignments=[SyncGroupRequest.SyncGroupRequestAssignment(m, a) for m, a in assignments]), version)


def heartbeat(client, group, generation, member_id, instance=None, version=4):
    return client.request(HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id,
                                           group_instance_id=instance), version).error_code


def commit(client, group, offsets: dict, *, generation=-1, member_id="", version=9, metadata="m"):
    topics = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append(OffsetCommitRequest.OffsetCommitRequestPartition(
            partition_index=partition, committed_offset=offset, committed_metadata=metadata))
    response = client.request(OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
        topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name=t, partitions=ps) for t, ps in topics.items()]), version)
    return {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}


def fetch(client, group, partitions=None, version=8):
    topics = None
    if partitions is not None:
        by_topic = {}
        for t, p in partitions:
            by_topic.setdefault(t, []).append(p)
        topics = [OffsetFetchRequest.OffsetFetchRequestTopics(name=t, partition_indexes=ps) for t, ps in by_topic.items()]
    response = client.request(OffsetFetchRequest(groups=[OffsetFetchRequest.OffsetFetchRequestGroup(
        group_id=group, topics=topics)]), version)
    (g,) = response.groups
    return {(t.name, p.partition_index): (p.committed_offset, p.metadata, p.error_code)
            for t in g.topics for p in t.partitions}


@pytest.fixture
def broker(kbroker_factory):
    broker = kbroker_factory(**{"num.partitions": 3, "group.max.size": 3})
    create_topics_by_metadata(broker.bootstrap, "t", "u")
    return broker


def test_find_coordinator_every_version_and_batched_keys(broker):
    host, port = broker.broker.advertised_endpoints[0]
    with WireClient(broker.bootstrap) as c:
        for version in range(0, 4):
            r = c.request(FindCoordinatorRequest(key="g", key_type=0), version)
            assert (r.error_code, r.node_id, r.host, r.port) == (0, 1, host, port)
        for version in (4, 5, 6):
            r = c.request(FindCoordinatorRequest(key_type=0, coordinator_keys=["a", "b"]), version)
            assert [(x.key, x.node_id, x.host, x.port, x.error_code) for x in r.coordinators] == [
                ("a", 1, host, port, 0), ("b", 1, host, port, 0)]
        r = c.request(FindCoordinatorRequest(key_type=1, coordinator_keys=["txn"]), 4)
        assert r.coordinators[0].error_code == 0
        r = c.request(FindCoordinatorRequest(key_type=7, coordinator_keys=["x"]), 4)
        assert r.coordinators[0].error_code == E.INVALID_REQUEST
    topic = broker.broker.metadata.get("__consumer_offsets")
    assert topic is not None and topic.partitions == 50 and topic.configs["cleanup.policy"] == "compact"


def test_first_join_requires_a_member_id_from_v4(broker):
    with WireClient(broker.bootstrap, timeout=20) as c:
        first = join(c, "g", version=4)
        assert first.error_code == E.MEMBER_ID_REQUIRED
        assert first.member_id.startswith("wire-test-") and len(first.member_id) == len("wire-test-") + 36
        second = join(c, "g", first.member_id, version=4)
        assert second.error_code == 0 and second.generation_id == 1 and second.leader == first.member_id
        assert [m.member_id for m in second.members] == [first.member_id]
        # v3 and older join straight away with a broker-chosen member id
        old = join(c, "h", version=3)
        assert old.error_code == 0 and old.member_id.startswith("wire-test-") and old.generation_id == 1


def test_join_validation_errors(broker):
    with WireClient(broker.bootstrap, timeout=20) as c:
        assert join(c, "", version=9).error_code == E.INVALID_GROUP_ID
        assert join(c, "g", session=5999).error_code == E.INVALID_SESSION_TIMEOUT
        assert join(c, "g", session=1_800_001).error_code == E.INVALID_SESSION_TIMEOUT
        assert join(c, "g", protocol_type="").error_code == E.INCONSISTENT_GROUP_PROTOCOL
        assert join(c, "nope", "someone").error_code == E.UNKNOWN_MEMBER_ID
        leader = join_fully(c, "g")
        assert leader.error_code == 0
        # a member speaking another protocol type, or no common protocol, is refused
        assert join(c, "g", protocol_type="connect").error_code == E.INCONSISTENT_GROUP_PROTOCOL
        assert join(c, "g", protocols=(("roundrobin", b""),)).error_code == E.INCONSISTENT_GROUP_PROTOCOL


def test_sync_heartbeat_and_generation_errors(broker):
    with WireClient(broker.bootstrap, timeout=20) as c:
        j = join_fully(c, "g")
        me, gen = j.member_id, j.generation_id
        assert heartbeat(c, "g", gen, me) == E.NONE  # CompletingRebalance counts as alive
        assert sync(c, "g", gen + 1, me).error_code == E.ILLEGAL_GENERATION
        assert sync(c, "g", gen, "stranger").error_code == E.UNKNOWN_MEMBER_ID
        s = sync(c, "g", gen, me, [(me, b"assignment")])
        assert (s.error_code, s.assignment, s.protocol_type, s.protocol_name) == (0, b"assignment", "consumer", "range")
        assert heartbeat(c, "g", gen, me) == E.NONE
        assert heartbeat(c, "g", gen - 1, me) == E.ILLEGAL_GENERATION
        assert heartbeat(c, "g", gen, "stranger") == E.UNKNOWN_MEMBER_ID
        assert heartbeat(c, "missing", 1, me) == E.UNKNOWN_MEMBER_ID
        assert heartbeat(c, "", 1, me) == E.INVALID_GROUP_ID
        # a stable follower... here the leader rejoining forces a rebalance; meanwhile heartbeats say so
        with WireClient(broker.bootstrap, timeout=20) as other:
            first = join(other, "g")
            result = {}
            t = threading.Thread(target=lambda: result.update(j=join(other, "g", first.member_id)))
            t.start()
            # the group is PreparingRebalance until the existing member rejoins
            for _ in range(50):
                if broker.broker.group_coordinator.groups["g"].state == "PreparingRebalance":
                    break
                threading.Event().wait(0.05)
            assert heartbeat(c, "g", gen, me) == E.REBALANCE_IN_PROGRESS
            assert sync(c, "g", gen, me).error_code == E.REBALANCE_IN_PROGRESS
            mine = join(c, "g", me)
            t.join(10)
            assert mine.error_code == 0 and result["j"].error_code == 0
            assert mine.generation_id == result["j"].generation_id == gen + 1
            assert mine.leader == me and len(mine.members) == 2 and result["j"].members == []


def test_group_max_size(broker):
    clients = [WireClient(broker.bootstrap, timeout=20) for _ in range(4)]
    try:
        # v3 joins go straight in; the first rebalance completes with the first member
        joined = [join(clients[0], "g", version=3)]
        assert joined[0].error_code == 0
        results = {}
        threads = []
        for i in (1, 2):
            t = threading.Thread(target=lambda i=i: results.__setitem__(i, join(clients[i], "g", version=3)))
            t.start()
            threads.append(t)
        for _ in range(100):
            if broker.broker.group_coordinator.groups["g"].num_awaiting_join >= 2:
                break
            threading.Event().wait(0.05)
        rejoin = join(clients[0], "g", joined[0].member_id, version=3)
        for t in threads:
            t.join(10)
        assert rejoin.error_code == 0 and all(r.error_code == 0 for r in results.values())
        assert len(rejoin.members) == 3
        # three members (the group.max.size): a fourth is refused
        refused = join(clients[3], "g", version=3)
        assert (refused.error_code, refused.member_id) == (E.GROUP_MAX_SIZE_REACHED, "")
    finally:
        for c in clients:
            c.close()


def test_static_member_fencing_and_leave_by_instance_id(broker):
    with WireClient(broker.bootstrap, timeout=20) as c:
        a = join(c, "g", instance="instance-a")
        assert a.error_code == 0 and a.member_id.startswith("instance-a-")  # static members need no second join
        assert sync(c, "g", a.generation_id, a.member_id, [(a.member_id, b"x")], instance="instance-a").error_code == 0
        # the same instance id coming back with no member id takes over, without a rebalance
        b = join(c, "g", instance="instance-a")
        assert b.error_code == 0 and b.member_id != a.member_id and b.generation_id == a.generation_id
        assert heartbeat(c, "g", a.generation_id, a.member_id, "instance-a") == E.FENCED_INSTANCE_ID
        assert heartbeat(c, "g", a.generation_id, b.member_id, "instance-a") == E.NONE
        s = sync(c, "g", b.generation_id, b.member_id, instance="instance-a")
        assert (s.error_code, s.assignment) == (0, b"x")  # the assignment is kept
        r = c.request(LeaveGroupRequest(group_id="g", members=[
            LeaveGroupRequest.MemberIdentity(member_id="", group_instance_id="instance-a"),
            LeaveGroupRequest.MemberIdentity(member_id="", group_instance_id="nobody"),
            LeaveGroupRequest.MemberIdentity(member_id="ghost")]), 5)
        assert r.error_code == 0
        assert [(m.member_id, m.group_instance_id, m.error_code) for m in r.members] == [
            ("", "instance-a", 0), ("", "nobody", E.UNKNOWN_MEMBER_ID), ("ghost", None, E.UNKNOWN_MEMBER_ID)]
        assert broker.broker.group_coordinator.groups["g"].state == "Empty"


def test_leave_group_old_versions(broker):
    with WireClient(broker.bootstrap, timeout=20) as c:
        j = join_fully(c, "g")
        assert c.request(LeaveGroupRequest(group_id="g", member_id="ghost"), 1).error_code == E.UNKNOWN_MEMBER_ID
        assert c.request(LeaveGroupRequest(group_id="g", member_id=j.member_id), 2).error_code == 0
        assert c.request(LeaveGroupRequest(group_id="missing", member_id="x"), 0).error_code == E.UNKNOWN_MEMBER_ID
        r = c.request(LeaveGroupRequest(group_id="missing", members=[LeaveGroupRequest.MemberIdentity("x")]), 5)
        assert (r.error_code, [(m.member_id, m.error_code) for m in r.members]) == (0, [("x", E.UNKNOWN_MEMBER_ID)])


def test_simple_commits_fetch_and_errors(broker):
    with WireClient(broker.bootstrap, timeout=20) as c:
        assert commit(c, "simple", {("t", 0): 10, ("t", 1): 11, ("u", 2): 12}) == {
            ("t", 0): 0, ("t", 1): 0, ("u", 2): 0}
        assert commit(c, "simple", {("t", 9): 1, ("nope", 0): 1}) == {
            ("t", 9): E.UNKNOWN_TOPIC_OR_PARTITION, ("nope", 0): E.UNKNOWN_TOPIC_OR_PARTITION}
        assert commit(c, "simple", {("t", 0): 1}, metadata="x" * 4097) == {("t", 0): E.OFFSET_METADATA_TOO_LARGE}
        # a generation for a group that does not exist
        assert commit(c, "other", {("t", 0): 1}, generation=3, member_id="m", version=8) == {
            ("t", 0): E.ILLEGAL_GENERATION}
        assert commit(c, "other", {("t", 0): 1}, generation=3, member_id="m", version=9) == {
            ("t", 0): E.GROUP_ID_NOT_FOUND}
        assert fetch(c, "simple", [("t", 0), ("t", 2)]) == {("t", 0): (10, "m", 0), ("t", 2): (-1, "", 0)}
        assert fetch(c, "simple") == {("t", 0): (10, "m", 0), ("t", 1): (11, "m", 0), ("u", 2): (12, "m", 0)}
        assert fetch(c, "unknown-group", [("t", 0)]) == {("t", 0): (-1, "", 0)}
        # several groups in one request (v8+)
        r = c.request(OffsetFetchRequest(groups=[
            OffsetFetchRequest.OffsetFetchRequestGroup(group_id="simple", topics=None),
            OffsetFetchRequest.OffsetFetchRequestGroup(group_id="unknown-group", topics=None)],
            require_stable=True), 9)
        assert [(g.group_id, g.error_code, len(g.topics)) for g in r.groups] == [
            ("simple", 0, 2), ("unknown-group", 0, 0)]
        # the old single-group versions
        for version in range(1, 8):
            r = c.request(OffsetFetchRequest(group_id="simple", topics=[
                OffsetFetchRequest.OffsetFetchRequestTopic("t", [0])]), version)
            assert r.topics[0].partitions[0].committed_offset == 10
        r = c.request(OffsetFetchRequest(group_id="simple", topics=None), 2)
        assert sorted((t.name, p.partition_index) for t in r.topics for p in t.partitions) == [
            ("t", 0), ("t", 1), ("u", 2)]
        for version in range(2, 10):
            assert commit(c, "simple", {("t", 0): 100 + version}, version=version) == {("t", 0): 0}
            assert fetch(c, "simple", [("t", 0)])[("t", 0)][0] == 100 + version


def test_commits_from_members_are_checked(broker):
    with WireClient(broker.bootstrap, timeout=20) as c:
        j = join_fully(c, "g")
        me, gen = j.member_id, j.generation_id
        # CompletingRebalance: the member knows its generation but has no assignment yet
        assert commit(c, "g", {("t", 0): 1}, generation=gen, member_id=me) == {("t", 0): E.REBALANCE_IN_PROGRESS}
        sync(c, "g", gen, me, [(me, b"")])
        assert commit(c, "g", {("t", 0): 5}, generation=gen, member_id=me) == {("t", 0): 0}
        assert commit(c, "g", {("t", 0): 5}, generation=gen + 1, member_id=me) == {("t", 0): E.ILLEGAL_GENERATION}
        assert commit(c, "g", {("t", 0): 5}, generation=gen, member_id="x") == {("t", 0): E.UNKNOWN_MEMBER_ID}
        # a commit with no membership is refused while the group has members
        assert commit(c, "g", {("t", 0): 5}) == {("t", 0): E.UNKNOWN_MEMBER_ID}


def test_list_describe_delete_groups_and_offset_delete(broker):
    with WireClient(broker.bootstrap, timeout=20) as c:
        j = join_fully(c, "active", protocols=(("range", subscription("t")),))
        sync(c, "active", j.generation_id, j.member_id, [(j.member_id, b"assigned")])
        commit(c, "active", {("t", 0): 3, ("u", 0): 4}, generation=j.generation_id, member_id=j.member_id)
        commit(c, "simple", {("t", 0): 7})
        listed = c.request(ListGroupsRequest(), 5)
        assert {(g.group_id, g.protocol_type, g.group_state, g.group_type) for g in listed.groups} == {
            ("active", "consumer", "Stable", "classic"), ("simple", "", "Empty", "classic")}
        assert [g.group_id for g in c.request(ListGroupsRequest(states_filter=["stable"]), 4).groups] == ["active"]
        assert c.request(ListGroupsRequest(types_filter=["consumer"]), 5).groups == []
        assert {g.group_id for g in c.request(ListGroupsRequest(), 0).groups} == {"active", "simple"}

        d = c.request(DescribeGroupsRequest(groups=["active", "missing"], include_authorized_operations=True), 5)
        active, missing = d.groups
        assert (active.error_code, active.group_state, active.protocol_type, active.protocol_data) == (
            0, "Stable", "consumer", "range")
        (member,) = active.members
        assert (member.member_id, member.client_id, member.client_host, member.member_assignment) == (
            j.member_id, "wire-test", "/127.0.0.1", b"assigned")
        assert member.member_metadata == subscription("t") and active.authorized_operations == 3400
        assert (missing.error_code, missing.group_state, missing.members) == (0, "Dead", [])

        # offsets of a topic the members subscribe to cannot be deleted; others can
        r = c.request(OffsetDeleteRequest(group_id="active", topics=[
            OffsetDeleteRequest.OffsetDeleteRequestTopic("t", [OffsetDeleteRequest.OffsetDeleteRequestPartition(0)]),
            OffsetDeleteRequest.OffsetDeleteRequestTopic("u", [OffsetDeleteRequest.OffsetDeleteRequestPartition(0)])]),
            0)
        assert r.error_code == 0
        assert {(t.name, p.error_code) for t in r.topics for p in t.partitions} == {
            ("t", E.GROUP_SUBSCRIBED_TO_TOPIC), ("u", 0)}
        assert fetch(c, "active") == {("t", 0): (3, "m", 0)}
        r = c.request(OffsetDeleteRequest(group_id="missing", topics=[]), 0)
        assert r.error_code == E.GROUP_ID_NOT_FOUND

        r = c.request(DeleteGroupsRequest(groups_names=["active", "simple", "missing"]), 2)
        assert [(x.group_id, x.error_code) for x in r.results] == [
            ("active", E.NON_EMPTY_GROUP), ("simple", 0), ("missing", E.GROUP_ID_NOT_FOUND)]
        assert fetch(c, "simple") == {}
        c.request(LeaveGroupRequest(group_id="active", members=[LeaveGroupRequest.MemberIdentity(j.member_id)]), 5)
        assert c.request(DeleteGroupsRequest(groups_names=["active"]), 0).results[0].error_code == 0
        assert c.request(ListGroupsRequest(), 3).groups == []


def test_offsets_topic_records_use_kafkas_format(broker):
    with WireClient(broker.bootstrap, timeout=20) as c:
        commit(c, "my-group", {("t", 1): 42}, metadata="meta")
        j = join_fully(c, "my-group", instance="i-1")
        sync(c, "my-group", j.generation_id, j.member_id, [(j.member_id, b"A")], instance="i-1")
    b = broker.broker
    topic = b.metadata.get("__consumer_offsets")
    assert fmt.partition_for("my-group", 50) == 12  # Java: Math.abs("my-group".hashCode()) % 50
    log = b.partitions.partition_log(topic, 12)
    data = memoryview(log.read_bytes(0, 1 << 20))
    records = [r for h in rec.iter_batches(data) for r in rec.decode_batch_records(data[h.position:h.position + h.size])]
    keys = [r.key for r in records]
    assert keys[0] == b"\x00\x01" + b"\x00\x08my-group" + b"\x00\x01t" + b"\x00\x00\x00\x01"
    value = fmt.decode_offset_commit_value(records[0].value)
    assert records[0].value[:2] == b"\x00\x03" and (value.offset, value.metadata) == (42, "meta")
    group_values = [fmt.decode_group_metadata_value(r.value) for r in records if r.key[:2] == b"\x00\x02"]
    last = group_values[-1]
    assert (last.protocol_type, last.generation, last.protocol) == ("consumer", 1, "range")
    assert [(m.member_id, m.group_instance_id, m.assignment) for m in last.members] == [(j.member_id, "i-1", b"A")]


def test_offsets_expire_after_retention(kbroker_factory):
    import trio

    broker = kbroker_factory(**{"offsets.retention.minutes": 1})
    create_topics_by_metadata(broker.bootstrap, "t")
    with WireClient(broker.bootstrap) as c:
        commit(c, "old", {("t", 0): 1})
        coordinator = broker.broker.group_coordinator
        now = fmt_now = coordinator.offsets["old"][("t", 0)].commit_timestamp
        assert trio.from_thread.run_sync(coordinator.expire_offsets, now + 30_000, trio_token=broker._token) == 0
        assert trio.from_thread.run_sync(coordinator.expire_offsets, fmt_now + 60_000, trio_token=broker._token) == 1
        assert fetch(c, "old", [("t", 0)]) == {("t", 0): (-1, "", 0)}
        assert c.request(ListGroupsRequest(), 3).groups == []  # the empty group went with its offsets


def test_versions_advertised(broker):
    from kbroker.protocol.messages import ApiVersionsRequest

    with WireClient(broker.bootstrap) as c:
        served = {k.api_key: (k.min_version, k.max_version) for k in c.request(ApiVersionsRequest(), 3).api_keys}
    assert {k: served[k] for k in (10, 11, 12, 13, 14, 15, 16, 42, 8, 9, 47)} == {
        10: (0, 6), 11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 6), 16: (0, 5), 42: (0, 3),
        8: (2, 10), 9: (1, 10), 47: (0, 0)}
    assert (served[68], served[69]) == ((0, 1), (0, 1))  # ConsumerGroupHeartbeat, ConsumerGroupDescribe (KIP-848)


def test_internal_topic_settings_that_are_not_a_valid_topic_config_give_coordinator_not_available(kbroker_factory):
    """offsets.topic.segment.bytes below segment.bytes' minimum: __consumer_offsets cannot be made, and
    FindCoordinator says COORDINATOR_NOT_AVAILABLE (with the reason) instead of dropping the connection."""
    broker = kbroker_factory(**{"offsets.topic.segment.bytes": 100_000})
    with WireClient(broker.bootstrap) as client:
        response = client.request(FindCoordinatorRequest(key="g", key_type=0), 2)
        assert response.error_code == E.COORDINATOR_NOT_AVAILABLE
        assert "segment.bytes" in response.error_message
        assert client.request(FindCoordinatorRequest(key="g", key_type=0), 2).error_code == \
            E.COORDINATOR_NOT_AVAILABLE  # the connection is still open
