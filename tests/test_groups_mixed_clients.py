"""An online upgrade of a classic group to a KIP-848 consumer group and back, with real clients
(confluent-kafka): two consumers with the classic protocol read a 6-partition topic; a third with
`group.protocol=consumer` joins the same group, which becomes a consumer group whose classic members
go on with JoinGroup/SyncGroup/Heartbeat; the three share the partitions without overlap and every
record is read once; the consumer-protocol member leaves, the group is classic again, and the two
remaining ones go on consuming from the committed offsets."""

from __future__ import annotations

import pytest

from tests.test_consumer_groups_clients import BROKER_SETTINGS, Member, produce, read_once, split
from tests.test_bootstrap import create_topics_by_metadata
from tests.test_groups_clients import wait_for
from tests.kafka_wire import WireClient
from kbroker.protocol.messages import ConsumerGroupDescribeRequest, DescribeGroupsRequest, ListGroupsRequest

confluent_kafka = pytest.importorskip("confluent_kafka")

# a classic member heartbeats often, so that it hears of a rebalance quickly
CLASSIC = {"group.protocol": "classic", "session.timeout.ms": 6000, "heartbeat.interval.ms": 300}


@pytest.fixture
def broker(kbroker_factory):
    broker = kbroker_factory(**BROKER_SETTINGS, **{"group.initial.rebalance.delay.ms": 0})
    create_topics_by_metadata(broker.bootstrap, "orders")
    return broker


@pytest.mark.parametrize("assignor", ["range", "cooperative-sticky"])  # eager: revoke all, then rejoin
def test_a_consumer_protocol_member_upgrades_a_busy_classic_group_and_leaving_downgrades_it(broker, assignor):
    coordinator = broker.broker.group_coordinator
    produce(broker.bootstrap, "orders", 300)
    classic = [Member(broker.bootstrap, "mixed", ["orders"], **CLASSIC, **{"partition.assignment.strategy": assignor})
               for _ in range(2)]
    members = list(classic)
    try:
        wait_for(lambda: split(classic) and read_once(members, 300), 30,
                 "two classic members to share the partitions and read the first 300 records")
        assert "mixed" in coordinator.groups
        for m in classic:
            m.commit()

        modern = Member(broker.bootstrap, "mixed", ["orders"])
        members.append(modern)
        wait_for(lambda: "mixed" in coordinator.consumer.groups, 20, "the group to become a consumer group")
        assert "mixed" not in coordinator.groups
        wait_for(lambda: split(members), 30, "the three members to own two partitions each")
        group = coordinator.consumer.groups["mixed"]
        assert sorted(m.uses_classic_protocol for m in group.members.values()) == [False, True, True]
        produce(broker.bootstrap, "orders", 300)
        wait_for(lambda: read_once(members, 600), 30, "all 600 records, each read once")
        assert_described_as_kafka_44_describes_a_mixed_group(broker.bootstrap)

        modern.close()  # commits and leaves: the last consumer-protocol member is gone
        wait_for(lambda: "mixed" in coordinator.groups and "mixed" not in coordinator.consumer.groups, 20,
                 "the group to be classic again")
        wait_for(lambda: split(classic), 30, "the two classic members to share all six partitions again")
        produce(broker.bootstrap, "orders", 300)
        wait_for(lambda: read_once(members, 900), 30, "all 900 records, each read once")
        assert coordinator.groups["mixed"].state == "Stable"
        assert not [e for m in members for e in m.errors]
    finally:
        for m in members:
            m.close()


def assert_described_as_kafka_44_describes_a_mixed_group(bootstrap: str) -> None:
    """What Kafka 4.4 answers for a mixed group (checked against it): a consumer group to ListGroups,
    not a classic group to DescribeGroups, and ConsumerGroupDescribe v1 tells the members' types."""
    with WireClient(bootstrap) as client:
        listed = client.request(ListGroupsRequest(states_filter=[], types_filter=[]), 5).groups
        assert [(g.group_id, g.protocol_type, g.group_type) for g in listed] == [("mixed", "consumer", "consumer")]
        described = client.request(DescribeGroupsRequest(groups=["mixed"]), 6).groups[0]
        assert (described.error_code, described.error_message, described.group_state) == (
            69, "Group mixed is not a classic group.", "Dead")
        group = client.request(ConsumerGroupDescribeRequest(group_ids=["mixed"]), 1).groups[0]
        assert group.error_code == 0 and group.group_state == "Stable"
        assert sorted(m.member_type for m in group.members) == [0, 0, 1]  # two classic, one consumer
        assert {m.member_epoch for m in group.members} == {group.group_epoch}
