"""The group coordinator lives on the leader of its __consumer_offsets partition: when that broker
dies, the partition's new leader loads the group's committed offsets and the group goes on from
them. On the in-process cluster and on broker processes on ZooKeeper; librdkafka's consumer, and the
Java consumer with the classic and the consumer (KIP-848) protocols."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions

from tests.replication_story import Acks, admin, cluster_factory, create_topic, wait_until  # noqa: F401

JAVA = Path(__file__).resolve().parent.parent / "compat" / "java" / "run"


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



def _java_group_consumer(cluster, topic: str, group: str, protocol: str, count: int, output) -> dict:
    done = subprocess.run([str(JAVA), "group-consumer", cluster.bootstrap, topic, group, protocol, str(count),
                           str(output)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("cluster_factory", ["zookeeper"], indirect=True)
@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_a_java_group_resumes_from_its_commits_after_its_coordinators_broker_is_killed(cluster_factory, protocol,
                                                                                        tmp_path):
    cluster = cluster_factory(3)
    topic, group = "shipments", f"shippers-{protocol}-{uuid.uuid4().hex[:6]}"
    create_topic(cluster, topic, partitions=3, replication_factor=3)
    producer = Acks(cluster)
    expected = [b"parcel-%03d" % i for i in range(300)]
    producer.send(topic, expected)
    assert producer.flush() == 0
    first_out, second_out = tmp_path / "first.txt", tmp_path / "second.txt"
    assert _java_group_consumer(cluster, topic, group, protocol, 120, first_out)["read"] >= 120
    coordinator = _coordinator_of(cluster, group)
    committed_before = _committed(cluster, group)
    cluster.stop_broker(coordinator)  # kill -9
    wait_until(lambda: _coordinator_of(cluster, group) not in (-1, coordinator), timeout=60,
               what="a new coordinator for the group")
    assert _committed(cluster, group) == committed_before  # nothing committed was lost
    first = first_out.read_bytes().splitlines()
    second_run = _java_group_consumer(cluster, topic, group, protocol, 300 - len(first), second_out)
    second = second_out.read_bytes().splitlines()
    assert second_run["read"] == 300 - len(first)
    assert sorted(first + second) == sorted(expected)  # it resumed where it committed: each record once
