"""The replication promise under a nemesis: three broker processes on ZooKeeper, a topic replicated
three times with min.insync.replicas=2, idempotent acks=all producers from librdkafka and from the
Java client writing throughout, while the current leader is killed with -9 and restarted, and a
leader is paused (SIGSTOP) past its ZooKeeper session -- a zombie that wakes up believing it still
leads -- then resumed; and a librdkafka transactional producer through the same faults. Afterwards:
every acknowledged record is there exactly once, every committed transaction's records are read once
and no aborted one's, and every replica holds the same batch at every offset."""

from __future__ import annotations

import collections
import subprocess
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

from kbroker.testing import ProcessCluster
from tests.replication_story import (FAST_CLUSTER, LibrdkafkaTransactions, assert_replicas_agree,
                                     check_transaction_outcomes, create_topic, partition_metadata, read_all,
                                     read_committed, wait_for_brokers, wait_until)

JAVA = Path(__file__).resolve().parent.parent / "compat" / "java" / "run"
TOPIC, PARTITIONS = "nemesis", 3
TXN_TOPIC = "nemesis-transactions"
SESSION_TIMEOUT_MS = 4000


class LibrdkafkaWriter:
    """An idempotent acks=all confluent-kafka producer in a thread, writing unique values."""

    def __init__(self, bootstrap: str, name: str):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 2, "message.timeout.ms": 180000, "retry.backoff.ms": 50,
                                  "reconnect.backoff.max.ms": 500, "log_level": 0})
        self.name = name
        self.acked: list[bytes] = []
        self.ends: dict[int, int] = {}  # partition -> end of what was acknowledged there
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.errors.append(str(err))
            return
        self.acked.append(msg.value())
        self.ends[msg.partition()] = max(self.ends.get(msg.partition(), 0), msg.offset() + 1)

    def _run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            for _ in range(20):
                try:
                    self.producer.produce(TOPIC, b"%s-%d" % (self.name.encode(), n), on_delivery=self._delivered)
                    n += 1
                except BufferError:
                    break
            self.producer.poll(0.01)
        self.producer.flush(180)


def _in_sync(cluster, count: int = 3) -> bool:
    return all(len(partition_metadata(cluster, TOPIC, p).isrs) == count for p in range(PARTITIONS))


def test_kill_and_pause_leaders_under_acks_all_writers_loses_and_duplicates_nothing(zookeeper_server, tmp_path):
    cluster = ProcessCluster(tmp_path / "cluster", f"{zookeeper_server.connect}/kbroker-{uuid.uuid4().hex[:8]}", 3,
                             {**FAST_CLUSTER, "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS})
    cluster.start()
    try:
        wait_for_brokers(cluster, 3)
        create_topic(cluster, TOPIC, PARTITIONS, 3, **{"min.insync.replicas": 2})
        create_topic(cluster, TXN_TOPIC, PARTITIONS, 3, **{"min.insync.replicas": 2})
        writer = LibrdkafkaWriter(cluster.bootstrap, "rdkafka")
        writer.thread.start()
        transactions = LibrdkafkaTransactions(cluster, TXN_TOPIC, f"nemesis-{uuid.uuid4().hex[:6]}", PARTITIONS)
        transactions.thread.start()
        java_out = tmp_path / "java-acked.txt"
        java = subprocess.Popen([str(JAVA), "acking-producer", cluster.bootstrap, TOPIC, "java", "45", str(java_out)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(3)
        events = []
        for round_ in range(4):
            partition = round_ % PARTITIONS
            leader = cluster.leader_of(TOPIC, partition)
            if round_ % 2 == 0:  # a crash: kill -9, then back
                cluster.stop_broker(leader)
                events.append(f"killed {leader}")
                time.sleep(2)
                cluster.start_broker(leader)
            else:  # a zombie: paused past its session, so the cluster moves on without it
                cluster.pause_broker(leader)
                events.append(f"paused {leader}")
                wait_until(lambda: cluster.leader_of(TOPIC, partition) not in (-1, leader), timeout=30,
                           what="a new leader while the old one is paused")
                time.sleep(1)
                cluster.resume_broker(leader)
            wait_until(lambda: _in_sync(cluster), timeout=60, what=f"full ISRs after round {round_}")
            time.sleep(2)
        writer.stopping.set()
        transactions.stopping.set()
        writer.thread.join(200)
        transactions.thread.join(200)
        java_output = java.communicate(timeout=200)[0].decode(errors="replace")
        assert java.returncode == 0, java_output

        acked = [v.encode() for v in java_out.read_text().split("\n") if v and not v.startswith("error ")]
        acked += writer.acked
        assert len(writer.acked) > 1000 and len(acked) > len(writer.acked) + 1000, (len(writer.acked), len(acked))
        stored = [v for records in read_all(cluster, TOPIC, PARTITIONS, at_least=writer.ends).values() for _, v in records]
        counts = collections.Counter(stored)
        lost = set(acked) - set(counts)
        duplicated = [v for v, c in counts.items() if c > 1]
        assert not lost, f"{len(lost)} acknowledged records lost ({events}), e.g. {sorted(lost)[:5]}"
        assert not duplicated, f"{len(duplicated)} records stored twice ({events}), e.g. {duplicated[:5]}"
        # transactions through the same faults: committed ones read once, aborted ones never
        outcomes = transactions.outcomes
        committed = sum(1 for o in outcomes.values() if o == "committed")
        assert committed >= 200, collections.Counter(outcomes.values())
        check_transaction_outcomes(outcomes, read_committed(cluster, TXN_TOPIC, PARTITIONS, committed, timeout=90))
    finally:
        cluster.stop()
    for partition in range(PARTITIONS):
        assert_replicas_agree(cluster.base_dir, (1, 2, 3), TOPIC, partition)
