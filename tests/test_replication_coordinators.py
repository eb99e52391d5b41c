"""The group coordinator lives on the leader of its __consumer_offsets partition: when that broker
dies, the partition's new leader loads the group's committed offsets and the group goes on from
them. On the in-process cluster and on broker processes on ZooKeeper."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions

from tests.replication_story import Acks, admin, cluster_factory, create_topic, wait_until  # noqa: F401


def _consume(bootstrap: str, group: str, topic: str, count: int, timeout: float = 60) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def _coordinator_of(cluster, group: str) -> int:
    client = admin(cluster)
    described = client.describe_consumer_groups([group])[group].result(20)
    return described.coordinator.id


def _committed(cluster, group: str) -> set[tuple[int, int]]:
    client = admin(cluster)
    listed = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(20)
    return {(tp.partition, tp.offset) for tp in listed.topic_partitions}


def test_committed_offsets_survive_the_loss_of_the_coordinators_broker(cluster_factory):
    cluster = cluster_factory(3)
    topic, group = "work", f"workers-{uuid.uuid4().hex[:6]}"
    create_topic(cluster, topic, partitions=3, replication_factor=3)
    producer = Acks(cluster)
    producer.send(topic, [b"job-%03d" % i for i in range(300)])
    assert producer.flush() == 0
    first = _consume(cluster.bootstrap, group, topic, 120)
    assert len(first) >= 120
    coordinator = _coordinator_of(cluster, group)
    committed_before = _committed(cluster, group)
    cluster.stop_broker(coordinator)
    wait_until(lambda: _coordinator_of(cluster, group) not in (-1, coordinator), timeout=60,
               what="a new coordinator for the group")
    committed_after = _committed(cluster, group)
    assert committed_after == committed_before  # nothing committed was lost
    rest = _consume(cluster.bootstrap, group, topic, 300 - len(first))
    assert sorted(first + rest) == sorted(b"job-%03d" % i for i in range(300))  # each once: it resumed

