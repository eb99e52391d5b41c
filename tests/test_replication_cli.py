"""Kafka's own CLI tools against a 3-broker cluster: kafka-topics creates a replicated topic and
describes its leaders, replicas and ISRs; kafka-leader-election moves leadership back to the
preferred replicas after a failover."""

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
