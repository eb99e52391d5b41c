"""Controlled shutdown: a broker told to stop (SIGTERM) first hands the leadership of its partitions
to other in-sync replicas, so producers and consumers move on without waiting for a session to
expire, and nothing acknowledged is lost."""

from __future__ import annotations

import time
import uuid

from kbroker.testing import ProcessCluster
from tests.replication_story import (FAST_CLUSTER, Acks, admin, create_topic, read_all, wait_for_brokers,
                                     wait_until)


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
