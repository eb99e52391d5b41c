"""franz-go's own kgo test suite against three kbroker processes on ZooKeeper with its topics
replicated three times (KGO_TEST_RF=3), as issue 15 asks: the counts are recorded in the output
(the goal is what Kafka passes; the single-broker run is in test_compat.py). The verdict is only
that the suite ran through and no test hung: a kgo test that fails on timing alone (see the issue
notes) must not make CI flaky, and a hung one means a broker stopped answering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kbroker.testing import ProcessCluster
from tests.replication_story import wait_for_brokers

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {"group.initial.rebalance.delay.ms": 0, "num.partitions": 1, "min.insync.replicas": 1,
            "group.consumer.heartbeat.interval.ms": 500, "group.consumer.min.heartbeat.interval.ms": 500}


@pytest.mark.skipif(os.environ.get("KBROKER_SKIP_COMPAT") == "1", reason="KBROKER_SKIP_COMPAT=1")
def test_franz_go_kgo_suite_on_a_three_broker_cluster(zookeeper_server, tmp_path):
    cluster = ProcessCluster(tmp_path / "cluster", f"{zookeeper_server.connect}/kgo-{uuid.uuid4().hex[:8]}", 3,
                             SETTINGS)
    cluster.start()
    try:
        wait_for_brokers(cluster, 3)
        log = tmp_path / "kgo.log"
        done = subprocess.run([sys.executable, str(REPO / "compat" / "franz-go" / "kgo_tests.py"),
                               "--bootstrap", cluster.bootstrap, "--rf", "3", "--timeout", "9m", "--log", str(log)],
                              capture_output=True, text=True, timeout=11 * 60)
    finally:
        cluster.stop()
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print("franz-go kgo suite on a 3-broker cluster, RF 3:", summary)
    assert not summary["hung_tests"] and not summary["timed_out"], summary
    assert summary["passed"] >= 140, summary
