"""Kafka's own CLI tools against a 3-broker cluster: kafka-topics creates a replicated topic and
describes its leaders, replicas and ISRs; kafka-leader-election moves leadership back to the
preferred replicas after a failover; kafka-reassign-partitions moves replicas (--execute, --verify,
--list, --cancel); kafka-metadata-quorum, which has no quorum to describe here, says so."""

from __future__ import annotations

from tests.replication_story import partition_metadata, wait_until
from tests.test_admin_cli import tools  # noqa: F401 (a fixture)


def test_kafka_topics_describe_and_kafka_leader_election(kbroker_cluster, tools):  # noqa: F811
    cluster = kbroker_cluster(3)
    bootstrap = cluster.bootstrap
    code, out = tools("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", "audit",
                      "--partitions", "3", "--replication-factor", "3", "--config", "min.insync.replicas=2")
    assert code == 0, out
    wait_until(lambda: all(len(partition_metadata(cluster, "audit", p).isrs) == 3 for p in range(3)),
               what="full ISRs")
    code, described = tools("kafka-topics", "--bootstrap-server", bootstrap, "--describe", "--topic", "audit")
    assert "ReplicationFactor: 3" in described and "min.insync.replicas=2" in described
    lines = [line for line in described.splitlines() if "Partition:" in line]
    assert len(lines) == 3 and all("Replicas:" in line and "Isr:" in line for line in lines)
    moved = cluster.leader_of("audit", 0)
    cluster.stop_broker(moved)
    wait_until(lambda: cluster.leader_of("audit", 0) not in (-1, moved), what="a failover")
    cluster.start_broker(moved)
    wait_until(lambda: moved in partition_metadata(cluster, "audit", 0).isrs, what="the broker back in sync")
    code, elected = tools("kafka-leader-election", "--bootstrap-server", bootstrap, "--election-type", "preferred",
                    "--all-topic-partitions")
    assert code == 0 and "Successfully completed leader election (PREFERRED) for partitions audit-0" in elected, elected
    assert cluster.leader_of("audit", 0) == moved


def test_kafka_reassign_partitions_moves_replicas_and_kafka_metadata_quorum_says_it_does_not_apply(
        kbroker_cluster, tools, tmp_path):  # noqa: F811
    import json
    import time

    from tests.replication_story import Acks, read_all

    cluster = kbroker_cluster(3)
    bootstrap = cluster.bootstrap
    code, out = tools("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", "relocated",
                      "--replica-assignment", "1:2,2:3")
    assert code == 0, out
    wait_until(lambda: all(len(partition_metadata(cluster, "relocated", p).isrs) == 2 for p in range(2)),
               what="both partitions in sync")
    producer = Acks(cluster)
    for partition in range(2):
        producer.send("relocated", [b"p%d-%d" % (partition, i) for i in range(500)], partition=partition)
    assert producer.flush() == 0 and not producer.errors
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": "relocated", "partition": 0, "replicas": [2, 3]},
        {"topic": "relocated", "partition": 1, "replicas": [3, 1]}]}))
    reassign = ("kafka-reassign-partitions", "--bootstrap-server", bootstrap, "--reassignment-json-file", str(plan))
    code, out = tools(*reassign, "--execute")
    assert code == 0 and "Successfully started partition reassignments for relocated-0,relocated-1" in out, out
    assert '"partition":0,"replicas":[1,2]' in out  # the rollback plan: the assignment before
    deadline = time.monotonic() + 60
    while True:
        code, verified = tools(*reassign, "--verify")
        if verified.count("is completed.") == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 0 and "Reassignment of partition relocated-0 is completed." in verified, verified
    assert "Reassignment of partition relocated-1 is completed." in verified, verified
    code, out = tools("kafka-reassign-partitions", "--bootstrap-server", bootstrap, "--list")
    assert code == 0 and "No partition reassignments found." in out, out
    code, described = tools("kafka-topics", "--bootstrap-server", bootstrap, "--describe", "--topic", "relocated")
    assert "Partition: 0\tLeader: 2\tReplicas: 2,3\tIsr: 2,3" in described, described
    assert "Partition: 1\tLeader: 3\tReplicas: 3,1\tIsr: " in described, described
    wait_until(lambda: not (cluster.base_dir / "broker-1" / "relocated-0").exists()
               and not (cluster.base_dir / "broker-2" / "relocated-1").exists(), what="the moved-away copies deleted")
    records = read_all(cluster, "relocated", 2)
    assert sorted(v for recs in records.values() for _, v in recs) == sorted(producer.acked)
    # ZooKeeper-mode brokers have no KRaft quorum: DescribeQuorum is not served, as a ZooKeeper-mode
    # Kafka broker did not serve it, and the tool says so
    code, out = tools("kafka-metadata-quorum", "--bootstrap-server", bootstrap, "describe", "--status")
    assert code != 0 and "UnsupportedVersionException: The node does not support DESCRIBE_QUORUM" in out, out


def test_kafka_reassign_partitions_shows_and_cancels_a_move_in_progress(kbroker_cluster, tools, tmp_path):  # noqa: F811
    """Both brokers of the partition are down, so the move to broker 3 cannot catch up: --verify
    says it is in progress, kafka-topics --describe shows the replicas being added and removed,
    --cancel takes it back."""
    import json

    from tests.replication_story import wait_for_brokers

    cluster = kbroker_cluster(3)
    code, out = tools("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create", "--topic", "stuck",
                      "--replica-assignment", "1:2")
    assert code == 0, out
    wait_until(lambda: len(partition_metadata(cluster, "stuck").isrs) == 2, what="the partition in sync")
    for node_id in (1, 2):
        cluster.stop_broker(node_id)
    wait_for_brokers(cluster, 1)
    bootstrap = cluster.bootstrap_of(3)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": "stuck", "partition": 0, "replicas": [3]}]}))
    reassign = ("kafka-reassign-partitions", "--bootstrap-server", bootstrap, "--reassignment-json-file", str(plan))
    code, out = tools(*reassign, "--execute")
    assert code == 0 and "Successfully started partition reassignment for stuck-0" in out, out
    code, out = tools(*reassign, "--verify")
    assert "Reassignment of partition stuck-0 is still in progress." in out, out
    code, out = tools("kafka-topics", "--bootstrap-server", bootstrap, "--describe", "--topic", "stuck")
    assert "Leader: none\tReplicas: 3,1,2\t" in out and "Adding Replicas: 3\tRemoving Replicas: 1,2" in out, out
    code, out = tools("kafka-reassign-partitions", "--bootstrap-server", bootstrap, "--list")
    assert "stuck-0: replicas: 3,1,2. adding: 3. removing: 1,2." in out, out
    code, out = tools(*reassign, "--cancel")
    assert code == 0 and "Successfully cancelled partition reassignment for: stuck-0" in out, out
    code, out = tools("kafka-reassign-partitions", "--bootstrap-server", bootstrap, "--list")
    assert "No partition reassignments found." in out, out
