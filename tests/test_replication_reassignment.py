"""Partition reassignments in a cluster (kafka-reassign-partitions' API, KIP-455), with kafka-python's
admin client: the new replicas catch up, then the partition switches to them; the removed brokers
delete their copy; a cancel goes back to the original replicas; Kafka's errors for bad requests.
Also DescribeLogDirs and DescribeCluster asked of each broker. The stories run on the in-process
cluster and on broker processes on ZooKeeper (tests/replication_story.py)."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (InvalidReplicationAssignmentError, InvalidReplicationFactorError,
                          NoReassignmentInProgressError, UnknownTopicOrPartitionError)

from kbroker.protocol.messages import AlterPartitionReassignmentsRequest, DescribeClusterRequest
from tests.kafka_wire import WireClient
from tests.replication_story import (Acks, cluster_factory, partition_metadata, read_all,  # noqa: F401
                                     replica_batches, wait_for_brokers, wait_until)


def kafka_admin(cluster) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)


def create_placed_topic(cluster, name: str, replicas: list[int]) -> None:
    kafka_admin(cluster).create_topics([NewTopic(name, num_partitions=-1, replication_factor=-1,
                                                 replica_assignments={0: replicas})])
    wait_until(lambda: sorted(partition_metadata(cluster, name).isrs) == sorted(replicas),
               what=f"{name} to be in sync on {replicas}")


def test_a_reassignment_moves_a_partition_and_its_records_to_other_brokers(cluster_factory):
    cluster = cluster_factory(3)
    create_placed_topic(cluster, "moving", [1, 2])
    assert cluster.leader_of("moving") == 1
    producer = Acks(cluster)
    producer.send("moving", [b"before-%d" % i for i in range(2000)])
    assert producer.flush() == 0 and not producer.errors
    client = kafka_admin(cluster)
    tp = TopicPartition("moving", 0)

    assert client.alter_partition_reassignments({tp: [2, 3]}) == {tp: None}
    producer.send("moving", [b"during-%d" % i for i in range(2000)])
    wait_until(lambda: client.list_partition_reassignments() == {}, what="the reassignment to complete")
    wait_until(lambda: partition_metadata(cluster, "moving").replicas == [2, 3], what="metadata to show [2, 3]")
    metadata = partition_metadata(cluster, "moving")
    assert sorted(metadata.isrs) == [2, 3]
    assert metadata.leader == 2  # the old leader was removed: the first in-sync target replica leads
    assert producer.flush() == 0 and not producer.errors  # acks=all writes went on through the move
    wait_until(lambda: not (cluster.base_dir / "broker-1" / "moving-0").exists(),
               what="broker 1 to delete its copy")
    producer.send("moving", [b"after-%d" % i for i in range(100)])
    assert producer.flush() == 0 and not producer.errors
    records = read_all(cluster, "moving", at_least=producer.ends())[0]
    values = [v for _, v in records]
    assert len(values) == len(set(values)) == 4100 and set(values) == set(producer.acked)
    time.sleep(1)  # the last fetches land
    cluster.stop()
    moved_to = replica_batches(cluster.base_dir, 3, "moving", 0)
    assert moved_to and moved_to == replica_batches(cluster.base_dir, 2, "moving", 0)  # byte for byte


def test_a_reassignment_in_progress_is_listed_and_can_be_cancelled(cluster_factory, request):
    if request.node.callspec.params["cluster_factory"] != "zookeeper":
        pytest.skip("holding a target replica back needs a broker process to SIGSTOP (its session stays alive)")
    cluster = cluster_factory(3)
    controller = kafka_admin(cluster).describe_cluster()["controller_id"]
    held_back = next(n for n in (3, 2, 1) if n != controller)
    first, second = (n for n in (1, 2, 3) if n != held_back)
    create_placed_topic(cluster, "undecided", [first, second])
    producer = Acks(cluster)
    producer.send("undecided", [b"r-%d" % i for i in range(200)])
    assert producer.flush() == 0
    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_of(controller), request_timeout_ms=30000)
    tp = TopicPartition("undecided", 0)
    client.list_partition_reassignments()  # connected to the controller before a broker stops answering
    cluster.pause_broker(held_back)  # registered for zookeeper.session.timeout.ms more, but fetching nothing
    try:
        assert client.alter_partition_reassignments({tp: [first, held_back]}) == {tp: None}
        assert client.list_partition_reassignments() == {
            tp: {"replicas": [first, held_back, second], "adding_replicas": [held_back],
                 "removing_replicas": [second]}}
        assert client.list_partition_reassignments([tp]) == client.list_partition_reassignments()
        assert client.list_partition_reassignments([TopicPartition("undecided", 7)]) == {}
        assert client.alter_partition_reassignments({tp: None}) == {tp: None}  # cancel
        assert client.list_partition_reassignments() == {}
    finally:
        cluster.resume_broker(held_back)
    wait_until(lambda: partition_metadata(cluster, "undecided").replicas == [first, second],
               what="the original replicas")
    assert sorted(partition_metadata(cluster, "undecided").isrs) == sorted([first, second])
    assert cluster.leader_of("undecided") == first
    wait_for_brokers(cluster, 3)
    time.sleep(1)
    assert not (cluster.base_dir / f"broker-{held_back}" / "undecided-0").exists()
    assert len(read_all(cluster, "undecided")[0]) == 200


def test_adding_a_replica_raises_the_replication_factor_once_it_is_in_sync(cluster_factory):
    cluster = cluster_factory(3)
    create_placed_topic(cluster, "growing-rf", [3])
    producer = Acks(cluster)
    producer.send("growing-rf", [b"x-%d" % i for i in range(300)])
    assert producer.flush() == 0
    client = kafka_admin(cluster)
    tp = TopicPartition("growing-rf", 0)
    assert client.alter_partition_reassignments({tp: [3, 1, 2]}) == {tp: None}
    wait_until(lambda: client.list_partition_reassignments() == {}, what="the reassignment to complete")
    wait_until(lambda: sorted(partition_metadata(cluster, "growing-rf").isrs) == [1, 2, 3], what="ISR [1, 2, 3]")
    assert partition_metadata(cluster, "growing-rf").replicas == [3, 1, 2]
    assert cluster.leader_of("growing-rf") == 3
    cluster.stop_broker(3)  # the added replicas have every record
    wait_until(lambda: cluster.leader_of("growing-rf") in (1, 2), what="a failover to an added replica")
    assert len(read_all(cluster, "growing-rf")[0]) == 300


def test_bad_reassignments_get_kafkas_errors(kbroker_cluster):
    cluster = kbroker_cluster(3)
    create_placed_topic(cluster, "strict", [1, 2])
    client = kafka_admin(cluster)
    tp = TopicPartition("strict", 0)
    answers = client.alter_partition_reassignments({tp: [1, 9]})
    assert answers == {tp: InvalidReplicationAssignmentError}  # broker 9 is not registered
    assert client.alter_partition_reassignments({tp: [2, 2]}) == {tp: InvalidReplicationAssignmentError}
    assert client.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}
    assert client.alter_partition_reassignments({TopicPartition("strict", 4): [1, 2]}) == {
        TopicPartition("strict", 4): UnknownTopicOrPartitionError}
    assert client.alter_partition_reassignments({TopicPartition("nowhere", 0): [1, 2]}) == {
        TopicPartition("nowhere", 0): UnknownTopicOrPartitionError}
    # KIP-860: AllowReplicationFactorChange=false keeps the factor, a move of the same size is fine
    with WireClient(cluster.bootstrap_of(1)) as wire:
        def alter(replicas):
            request = AlterPartitionReassignmentsRequest(allow_replication_factor_change=False, topics=[
                AlterPartitionReassignmentsRequest.ReassignableTopic(name="strict", partitions=[
                    AlterPartitionReassignmentsRequest.ReassignablePartition(partition_index=0, replicas=replicas)])])
            return wire.request(request, 1)
        refused = alter([1, 2, 3])
        answer = refused.responses[0].partitions[0]
        assert (answer.error_code, answer.error_message) == (
            InvalidReplicationFactorError.errno, "The replication factor is changed from 2 to 3")
        assert refused.allow_replication_factor_change is False
        assert alter([2, 1]).responses[0].partitions[0].error_code == 0  # the same replicas, the other leader first
    wait_until(lambda: partition_metadata(cluster, "strict").replicas == [2, 1], what="the reordered replicas")
    assert client.list_partition_reassignments() == {}  # a reorder has nothing to catch up


def test_each_broker_describes_its_own_log_dirs_and_the_cluster(kbroker_cluster):
    cluster = kbroker_cluster(3)
    for name, replicas in (("on-12", [1, 2]), ("on-23", [2, 3]), ("on-3", [3])):
        create_placed_topic(cluster, name, replicas)
    client = kafka_admin(cluster)
    held = {answer["broker"]: _topics_in(answer["log_dirs"]) for answer in client.describe_log_dirs()}
    assert held == {1: {"on-12"}, 2: {"on-12", "on-23"}, 3: {"on-23", "on-3"}}
    for node_id in (1, 2, 3):
        with WireClient(cluster.bootstrap_of(node_id)) as wire:
            described = wire.request(DescribeClusterRequest(), 1)
        assert described.error_code == 0 and described.controller_id in (1, 2, 3)
        assert sorted(b.broker_id for b in described.brokers) == [1, 2, 3]


def _topics_in(log_dirs: list[dict]) -> set[str]:
    return {topic["name"] for log_dir in log_dirs for topic in log_dir["topics"] if not topic["name"].startswith("__")}


def test_a_broker_down_during_the_move_deletes_its_copy_when_it_returns(cluster_factory):
    cluster = cluster_factory(3)
    create_placed_topic(cluster, "left-behind", [1, 2])
    producer = Acks(cluster)
    producer.send("left-behind", [b"v-%d" % i for i in range(300)])
    assert producer.flush() == 0
    cluster.stop_broker(2)
    wait_until(lambda: partition_metadata(cluster, "left-behind").isrs == [1], what="broker 2 out of the ISR")
    client = kafka_admin(cluster)
    tp = TopicPartition("left-behind", 0)
    assert client.alter_partition_reassignments({tp: [1, 3]}) == {tp: None}
    wait_until(lambda: client.list_partition_reassignments() == {}, what="the reassignment to complete")
    assert partition_metadata(cluster, "left-behind").replicas == [1, 3]
    assert (cluster.base_dir / "broker-2" / "left-behind-0").exists()  # it was down: nobody told it yet
    cluster.start_broker(2)
    wait_for_brokers(cluster, 3)
    wait_until(lambda: not (cluster.base_dir / "broker-2" / "left-behind-0").exists(),
               what="broker 2 to delete the copy it no longer has")
    assert len(read_all(cluster, "left-behind")[0]) == 300


def test_a_move_that_cannot_catch_up_is_cancelled_back_to_the_original_replicas(cluster_factory):
    """The partition is offline (both its brokers down), so the new replica has nobody to copy from;
    cancelling puts the original replicas back, and they serve every record again once they return."""
    cluster = cluster_factory(3)
    create_placed_topic(cluster, "stranded", [1, 2])
    producer = Acks(cluster)
    producer.send("stranded", [b"s-%d" % i for i in range(100)])
    assert producer.flush() == 0
    for node_id in (2, 1):
        cluster.stop_broker(node_id)
    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_of(3), request_timeout_ms=30000)
    tp = TopicPartition("stranded", 0)
    wait_until(lambda: (described := client.describe_cluster())["controller_id"] == 3
               and [b["broker_id"] for b in described["brokers"]] == [3], what="broker 3 alone and the controller")
    assert client.alter_partition_reassignments({tp: [3]}) == {tp: None}
    time.sleep(1)
    assert client.list_partition_reassignments() == {
        tp: {"replicas": [3, 1, 2], "adding_replicas": [3], "removing_replicas": [1, 2]}}
    assert (cluster.base_dir / "broker-3" / "stranded-0").exists()  # the new replica waits for a leader
    assert client.alter_partition_reassignments({tp: None}) == {tp: None}
    assert client.list_partition_reassignments() == {}
    wait_until(lambda: not (cluster.base_dir / "broker-3" / "stranded-0").exists(),
               what="broker 3 to delete the copy it started")
    for node_id in (1, 2):
        cluster.start_broker(node_id)
    wait_for_brokers(cluster, 3)
    wait_until(lambda: sorted(partition_metadata(cluster, "stranded").isrs) == [1, 2], what="[1, 2] in sync again")
    assert partition_metadata(cluster, "stranded").replicas == [1, 2]
    assert len(read_all(cluster, "stranded")[0]) == 100
