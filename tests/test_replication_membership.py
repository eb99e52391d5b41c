"""Brokers leaving and coming back, as processes on ZooKeeper. Controlled shutdown: a broker told to
stop (SIGTERM) first hands the leadership of its partitions to other in-sync replicas, so producers
and consumers move on without waiting for a session to expire, and nothing acknowledged is lost. A
paused follower leaves the ISR after replica.lag.time.max.ms and rejoins once caught up."""

from __future__ import annotations

import time
import uuid

from kbroker.testing import ProcessCluster
from tests.replication_story import (FAST_CLUSTER, Acks, admin, assert_replicas_agree, create_topic, read_all,
                                     wait_for_brokers, wait_until)


def test_sigterm_moves_leadership_away_before_the_broker_stops(zookeeper_server, tmp_path):
    cluster = ProcessCluster(tmp_path / "cluster", f"{zookeeper_server.connect}/kbroker-{uuid.uuid4().hex[:8]}", 3,
                             FAST_CLUSTER)
    cluster.start()
    try:
        wait_for_brokers(cluster, 3)
        create_topic(cluster, "orders", partitions=3, replication_factor=3, **{"min.insync.replicas": 2})
        leaving = cluster.leader_of("orders", 0)
        producer = Acks(cluster)
        producer.send("orders", [b"before-%d" % i for i in range(300)])
        assert producer.flush() == 0
        started = time.monotonic()
        cluster.processes[leaving].stop()  # SIGTERM, and wait for it to exit
        stopped_in = time.monotonic() - started
        log = cluster.processes[leaving].log_path.read_text()
        assert "controlled shutdown in" in log and "still leading" not in log, log[-2000:]
        # at once, well before its ZooKeeper session would have expired, others lead everything
        leaders = {p.leader for p in admin(cluster).list_topics("orders", timeout=10).topics["orders"]
                   .partitions.values()}
        assert leaving not in leaders and -1 not in leaders
        producer.send("orders", [b"after-%d" % i for i in range(300)])
        assert producer.flush() == 0 and not producer.errors
        values = [v for records in read_all(cluster, "orders", 3, at_least=producer.ends()).values() for _, v in records]
        assert len(values) == 600, (len(values), len(producer.acked), len(set(values)))
        assert sorted(values) == sorted(producer.acked)
        assert stopped_in < 30
        cluster.start_broker(leaving)
        wait_until(lambda: all(len(p.isrs) == 3 for p in admin(cluster).list_topics("orders", timeout=5)
                               .topics["orders"].partitions.values()), what="the broker back in every ISR")
    finally:
        cluster.stop()


def test_a_paused_follower_leaves_the_isr_and_rejoins_once_caught_up(zookeeper_server, tmp_path):
    """A follower stopped (SIGSTOP) longer than replica.lag.time.max.ms but shorter than its
    ZooKeeper session: the leader drops it from the ISR, acks=all goes on with the other two, and once
    resumed it catches up and is taken back."""
    cluster = ProcessCluster(tmp_path / "cluster", f"{zookeeper_server.connect}/kbroker-{uuid.uuid4().hex[:8]}", 3,
                             {**FAST_CLUSTER, "zookeeper.session.timeout.ms": 20000})
    cluster.start()
    try:
        wait_for_brokers(cluster, 3)
        create_topic(cluster, "metrics", partitions=1, replication_factor=3, **{"min.insync.replicas": 2})
        leader = cluster.leader_of("metrics")
        paused = next(n for n in (1, 2, 3) if n != leader)
        cluster.pause_broker(paused)
        producer = Acks(cluster, **{"bootstrap.servers": cluster.bootstrap_of(leader)})
        started = time.monotonic()
        producer.send("metrics", [b"while-paused-%d" % i for i in range(100)])
        wait_until(lambda: paused not in admin_isr(cluster, leader), timeout=30, what="the paused follower out of the ISR")
        left_after = time.monotonic() - started
        assert producer.flush() == 0 and not producer.errors  # acks=all with the two in sync
        cluster.resume_broker(paused)
        wait_until(lambda: paused in admin_isr(cluster, leader), timeout=30, what="the follower back in the ISR")
        assert 2.5 < left_after < 15  # replica.lag.time.max.ms is 3 s here
    finally:
        cluster.stop()
    batches = [len(b) for b in assert_replicas_agree(cluster.base_dir, (1, 2, 3), "metrics", 0)]
    assert len(set(batches)) == 1  # the resumed follower holds everything too


def admin_isr(cluster, via: int) -> list[int]:
    from confluent_kafka.admin import AdminClient
    client = AdminClient({"bootstrap.servers": cluster.bootstrap_of(via)})
    return client.list_topics("metrics", timeout=5).topics["metrics"].partitions[0].isrs
