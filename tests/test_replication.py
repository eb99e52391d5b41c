"""Replication stories: a topic replicated three times survives the loss of brokers without losing
what was acknowledged, its replicas hold the same records at the same offsets, and the ISR and
min.insync.replicas behave as Kafka's. Each story runs on the in-process cluster and on broker
processes coordinated by a real ZooKeeper (tests/replication_story.py)."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, Producer

from tests.replication_story import (Acks, admin, assert_replicas_agree, cluster_factory,  # noqa: F401
                                     create_topic, partition_metadata, read_all, wait_until)


def test_a_replicated_topic_is_on_every_broker_and_metadata_lists_them(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "orders", partitions=3, replication_factor=3)
    metadata = admin(cluster).list_topics("orders", timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    leaders = set()
    for p in metadata.topics["orders"].partitions.values():
        assert sorted(p.replicas) == [1, 2, 3] and sorted(p.isrs) == [1, 2, 3]
        leaders.add(p.leader)
    assert len(leaders) == 3  # the preferred leaders are spread, as Kafka places them
    producer = Acks(cluster)
    producer.send("orders", [b"order-%d" % i for i in range(300)])
    assert producer.flush() == 0 and not producer.errors
    records = read_all(cluster, "orders", 3)
    assert sorted(v for recs in records.values() for _, v in recs) == sorted(producer.acked)


def test_leader_loss_loses_no_acknowledged_record(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "payments", partitions=1, replication_factor=3, **{"min.insync.replicas": 2})
    producer = Acks(cluster)
    producer.send("payments", [b"before-%d" % i for i in range(500)])
    assert producer.flush() == 0
    first_leader = cluster.leader_of("payments")
    cluster.stop_broker(first_leader)
    wait_until(lambda: cluster.leader_of("payments") not in (-1, first_leader), what="a new leader")
    producer.send("payments", [b"after-%d" % i for i in range(500)])
    assert producer.flush() == 0 and not producer.errors
    records = read_all(cluster, "payments", at_least=producer.ends())[0]
    values = [v for _, v in records]
    assert len(values) == len(set(values)) == 1000  # nothing lost, nothing twice
    assert set(values) == set(producer.acked)
    assert [o for o, _ in records] == list(range(1000))
    # the old leader comes back as a follower and catches up
    cluster.start_broker(first_leader)
    wait_until(lambda: first_leader in partition_metadata(cluster, "payments").isrs, what="the old leader in the ISR")


def test_two_of_three_down_is_not_enough_replicas(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "ledger", partitions=1, replication_factor=3, **{"min.insync.replicas": 2})
    leader = cluster.leader_of("ledger")
    followers = [n for n in (1, 2, 3) if n != leader]
    for n in followers:
        cluster.stop_broker(n)
    wait_until(lambda: partition_metadata(cluster, "ledger").isrs == [leader], what="the ISR to shrink to the leader")
    errors = []
    producer = Producer({"bootstrap.servers": cluster.bootstrap_of(leader), "acks": "all", "retries": 0,
                         "message.timeout.ms": 5000})
    producer.produce("ledger", b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS
    # acks=1 is still taken by the leader alone
    delivered = []
    alone = Producer({"bootstrap.servers": cluster.bootstrap_of(leader), "acks": 1})
    alone.produce("ledger", b"y", on_delivery=lambda err, msg: delivered.append(err))
    alone.flush(10)
    assert delivered == [None]
    for n in followers:
        cluster.start_broker(n)
    wait_until(lambda: len(partition_metadata(cluster, "ledger").isrs) == 3, what="the ISR to grow back")


def test_a_divergent_tail_is_truncated_to_the_new_leaders_log(cluster_factory):
    """KIP-101: records only the old leader had (acks=1, then an unclean election) are cut from it
    when it returns, and every replica ends up with the same log."""
    cluster = cluster_factory(3)
    create_topic(cluster, "events", partitions=1, replication_factor=3,
                 **{"unclean.leader.election.enable": "true"})
    producer = Acks(cluster)
    producer.send("events", [b"shared-%d" % i for i in range(100)])
    assert producer.flush() == 0
    old_leader = cluster.leader_of("events")
    followers = [n for n in (1, 2, 3) if n != old_leader]
    for n in followers:
        cluster.stop_broker(n)
    wait_until(lambda: partition_metadata(cluster, "events").isrs == [old_leader], what="ISR = the old leader")
    lonely = Producer({"bootstrap.servers": cluster.bootstrap_of(old_leader), "acks": 1})
    for i in range(50):
        lonely.produce("events", b"only-on-old-leader-%d" % i)
    assert lonely.flush(10) == 0
    cluster.stop_broker(old_leader)
    cluster.start_broker(followers[0])  # elected uncleanly: it never saw the 50
    wait_until(lambda: cluster.leader_of("events") == followers[0], what="the unclean election")
    new_writes = Acks(cluster, **{"acks": 1, "enable.idempotence": False})
    new_writes.send("events", [b"new-leader-%d" % i for i in range(30)])
    assert new_writes.flush() == 0
    cluster.start_broker(old_leader)
    cluster.start_broker(followers[1])
    wait_until(lambda: len(partition_metadata(cluster, "events").isrs) == 3, what="all three in sync")
    values = [v for _, v in read_all(cluster, "events")[0]]
    assert not any(v.startswith(b"only-on-old-leader") for v in values)
    assert values[:100] == [b"shared-%d" % i for i in range(100)]
    assert values[100:] == [b"new-leader-%d" % i for i in range(30)]
    time.sleep(1)  # the last fetches land
    cluster.stop()
    logs = assert_replicas_agree(cluster.base_dir, (1, 2, 3), "events", 0)
    assert all(len(batches) == len(logs[0]) for batches in logs)


def test_producer_ids_are_unique_across_the_cluster(cluster_factory):
    """Idempotent producers talking to different brokers never share a producer id (blocks are
    allocated in the cluster, as Kafka's are), so their sequences never collide."""
    from tests.kafka_wire import WireClient
    from kbroker.protocol.messages import InitProducerIdRequest

    cluster = cluster_factory(3)
    ids = set()
    for node_id in (1, 2, 3, 1, 2, 3):
        with WireClient(cluster.bootstrap_of(node_id)) as client:
            for _ in range(50):  # the first answer may be COORDINATOR_LOAD_IN_PROGRESS, retried as clients do
                response = client.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000),
                                          2)
                if response.error_code == 0:
                    break
                assert response.error_code == 14  # COORDINATOR_LOAD_IN_PROGRESS
                time.sleep(0.05)
            assert response.error_code == 0
            ids.add(response.producer_id)
    assert len(ids) == 6
