"""Leadership moves and replication follows at once: after a leader's controlled shutdown, a kill -9,
or a preferred election that gives leadership back, the new leader's followers fetch from it
straight away, so acks=all writes go on and the high watermark -- the leader's and every
follower's -- reaches the end of the log within a couple of seconds.

Both waits that would hide a stall are set long: ``replica.fetch.backoff.ms`` (a follower that gives
up on the new leader for a backoff shows as a 5 s stall) and ``replica.lag.time.max.ms`` (a leader
that keeps a departed broker in its ISR waits on it for 30 s). Round after round, on the in-process
cluster and on broker processes on ZooKeeper."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, ElectionType, KafkaError, Producer, TopicPartition

from tests.replication_story import admin, cluster_factory, create_topic, partition_metadata, wait_until  # noqa: F401

TOPIC, PARTITIONS = "moving", 3
SLOW_TO_NOTICE = {"replica.fetch.backoff.ms": 5000, "replica.lag.time.max.ms": 30000}
CATCH_UP_S = 4.0  # under both waits above, with room for a loaded 2-core machine


class Writer:
    """acks=all writes to every partition, by a producer made for each round (so its time is the
    cluster's, not a client's discovery of the new leaders); how long they took to be acknowledged."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.written = {p: 0 for p in range(PARTITIONS)}

    def write_each_partition(self, count: int = 5) -> float:
        producer = Producer({"bootstrap.servers": self.cluster.bootstrap, "acks": "all", "linger.ms": 0,
                             "message.timeout.ms": 60000})
        producer.list_topics(TOPIC, timeout=10)  # the current leaders, before the clock starts
        errors = []
        started = time.monotonic()
        for partition in range(PARTITIONS):
            for _ in range(count):
                producer.produce(TOPIC, b"v", partition=partition,
                                 on_delivery=lambda err, _msg: err is None or errors.append(err))
                self.written[partition] += 1
        assert producer.flush(60) == 0
        assert not errors, errors
        return time.monotonic() - started


def high_watermarks(cluster) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=5)[1] for p in range(PARTITIONS)}
    finally:
        consumer.close()


def every_replica_has_caught_up(cluster, written: dict[int, int]) -> bool:
    """The leaders' high watermarks (ListOffsets), and on the in-process cluster every follower's too."""
    if high_watermarks(cluster) != written:
        return False
    for broker in getattr(cluster, "brokers", {}).values():  # in-process: each broker's own replicas
        for partition in broker.partitions.hosted():
            if partition.topic == TOPIC and partition.high_watermark != written[partition.index]:
                return False
    return True


def assert_caught_up(cluster, writer: Writer, what: str) -> None:
    took = writer.write_each_partition()
    assert took < CATCH_UP_S, f"acks=all writes after {what} took {took:.1f} s"
    started = time.monotonic()
    wait_until(lambda: every_replica_has_caught_up(cluster, writer.written), timeout=CATCH_UP_S,
               what=f"every replica's high watermark after {what} (wrote {writer.written})")
    assert time.monotonic() - started < CATCH_UP_S


def test_followers_fetch_from_each_new_leader_at_once(cluster_factory):
    cluster = cluster_factory(3, **SLOW_TO_NOTICE)
    create_topic(cluster, TOPIC, PARTITIONS, 3, **{"min.insync.replicas": 2})
    writer = Writer(cluster)
    writer.write_each_partition()
    client = admin(cluster)
    for round_ in range(4):
        partition = round_ % PARTITIONS
        leader = cluster.leader_of(TOPIC, partition)
        if round_ % 2 == 0:
            cluster.shut_down_broker(leader)
            what = f"broker {leader}'s controlled shutdown"
        else:
            cluster.stop_broker(leader)
            what = f"broker {leader}'s crash"
        wait_until(lambda: all(partition_metadata(cluster, TOPIC, p).leader not in (-1, leader)
                               for p in range(PARTITIONS)), what=f"leaders other than broker {leader}")
        assert_caught_up(cluster, writer, what)
        cluster.start_broker(leader)
        wait_until(lambda: all(len(partition_metadata(cluster, TOPIC, p).isrs) == 3 for p in range(PARTITIONS)),
                   timeout=CATCH_UP_S * 2, what=f"broker {leader} back in every ISR")
        result = client.elect_leaders(ElectionType.PREFERRED,
                                      [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]).result(30)
        assert all(err is None or err.code() == KafkaError.ELECTION_NOT_NEEDED for err in result.values()), result
        assert cluster.leader_of(TOPIC, partition) == leader
        assert_caught_up(cluster, writer, f"the preferred election back to broker {leader}")
