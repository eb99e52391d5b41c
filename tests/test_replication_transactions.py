"""Transactions in a cluster: the transaction coordinator is the leader of the transactional id's
__transaction_state partition, and the transaction's partitions are led by any broker. The
coordinator sends the COMMIT/ABORT markers to their leaders (WriteTxnMarkers), partition leaders
check a producer's first batch with the coordinator (KIP-890, AddPartitionsToTxn between brokers),
and a group coordinator on a third broker commits the transaction's offsets when its marker arrives.
When the coordinator's broker dies, the new leader of its partition takes the transactions over.
On the in-process cluster and on broker processes on ZooKeeper."""

from __future__ import annotations

import collections
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from kbroker.protocol.messages import FindCoordinatorRequest
from tests.kafka_wire import WireClient
from tests.replication_story import (LibrdkafkaTransactions, admin, check_transaction_outcomes,  # noqa: F401
                                     cluster_factory, create_topic, read_committed, wait_until)

PARTITIONS = 6
JAVA = Path(__file__).resolve().parent.parent / "compat" / "java" / "run"


def _transactional(cluster, transactional_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": transactional_id,
                         "linger.ms": 5, "transaction.timeout.ms": 60000})
    producer.init_transactions(60)
    return producer


def _leaders(cluster, topic: str) -> set[int]:
    return {p.leader for p in admin(cluster).list_topics(topic, timeout=10).topics[topic].partitions.values()}


def transaction_coordinator(cluster, transactional_id: str) -> int:
    """The coordinator FindCoordinator names, asked of the first live broker (-1: none now)."""
    for address in cluster.bootstrap.split(","):
        try:
            with WireClient(address) as client:
                response = client.request(FindCoordinatorRequest(key_type=1, coordinator_keys=[transactional_id]), 4)
        except OSError:
            continue  # a stopped broker
        found = response.coordinators[0]
        return found.node_id if found.error_code == 0 else -1
    return -1


def _run_transactions(producer: Producer, topic: str, first: int, count: int, committed: list[bytes],
                      size: int = 30) -> None:
    """``count`` transactions over every partition, every third one aborted; the values of each one
    committed are added to ``committed``."""
    for t in range(first, first + count):
        producer.begin_transaction()
        values = [b"txn-%03d-%03d" % (t, i) for i in range(size)]
        for i, value in enumerate(values):
            producer.produce(topic, value, partition=i % PARTITIONS)
        if t % 3 == 2:
            producer.abort_transaction(60)
        else:
            producer.commit_transaction(60)
            committed += values


def test_transactions_commit_and_abort_on_partitions_led_by_other_brokers(cluster_factory):
    cluster = cluster_factory(3)
    topic = "ledger"
    create_topic(cluster, topic, partitions=PARTITIONS, replication_factor=3, **{"min.insync.replicas": 2})
    assert len(_leaders(cluster, topic)) == 3  # the markers have to reach every broker
    producer = _transactional(cluster, f"ledger-writer-{uuid.uuid4().hex[:6]}")
    committed: list[bytes] = []
    _run_transactions(producer, topic, 0, 9, committed)
    producer.flush(30)
    got = read_committed(cluster, topic, PARTITIONS, len(committed))
    assert sorted(got) == sorted(committed)  # every committed record once, no aborted one


def test_consume_transform_produce_commits_offsets_through_a_group_coordinator_elsewhere(cluster_factory):
    cluster = cluster_factory(3)
    source, sink = "orders", "invoices"
    create_topic(cluster, source, partitions=PARTITIONS, replication_factor=3)
    create_topic(cluster, sink, partitions=PARTITIONS, replication_factor=3)
    seed = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(120):
        seed.produce(source, b"order-%03d" % i, partition=i % PARTITIONS)
    assert seed.flush(30) == 0
    group = f"billing-{uuid.uuid4().hex[:6]}"
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.subscribe([source])
    producer = _transactional(cluster, f"billing-{uuid.uuid4().hex[:6]}")
    processed = 0
    deadline = time.monotonic() + 90
    try:
        while processed < 120 and time.monotonic() < deadline:
            batch = [m for m in consumer.consume(40, 1.0) if not m.error()]
            if not batch:
                continue
            producer.begin_transaction()
            for msg in batch:
                producer.produce(sink, msg.value().replace(b"order", b"invoice"), partition=msg.partition())
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(60)
            processed += len(batch)
    finally:
        consumer.close()
    assert processed == 120
    invoices = read_committed(cluster, sink, PARTITIONS, 120)
    assert sorted(invoices) == sorted(b"invoice-%03d" % i for i in range(120))
    # the group's committed offsets are at the end of every partition: nothing to process again
    checker = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
    try:
        committed = checker.committed([TopicPartition(source, p) for p in range(PARTITIONS)], timeout=30)
    finally:
        checker.close()
    assert sum(tp.offset for tp in committed) == 120


def test_a_transactional_producer_goes_on_after_its_coordinators_broker_dies(cluster_factory):
    cluster = cluster_factory(3)
    topic = "payments"
    create_topic(cluster, topic, partitions=PARTITIONS, replication_factor=3, **{"min.insync.replicas": 2})
    transactional_id = f"payments-{uuid.uuid4().hex[:6]}"
    producer = _transactional(cluster, transactional_id)
    committed: list[bytes] = []
    _run_transactions(producer, topic, 0, 4, committed)
    coordinator = transaction_coordinator(cluster, transactional_id)
    assert coordinator >= 0
    cluster.stop_broker(coordinator)
    wait_until(lambda: transaction_coordinator(cluster, transactional_id) not in (-1, coordinator), timeout=60,
               what="a new transaction coordinator")
    # the same producer goes on: its coordinator moved, the transactions it committed stay committed
    for attempt in range(3):
        try:
            _run_transactions(producer, topic, 10 + 10 * attempt, 4, committed)
            break
        except KafkaException as exc:  # a transaction in flight across the failover may have to be aborted
            if not exc.args[0].txn_requires_abort():
                raise
            producer.abort_transaction(60)
    got = read_committed(cluster, topic, PARTITIONS, len(committed))
    assert sorted(got) == sorted(committed)


def _java_outcomes(path) -> dict[bytes, str]:
    outcomes = {}
    for line in path.read_text().splitlines():
        outcome, value = line.split(" ", 1)
        outcomes[value.encode()] = outcome
    return outcomes


@pytest.mark.parametrize("cluster_factory", ["zookeeper"], indirect=True)
def test_java_and_librdkafka_transactions_survive_the_kill_of_their_coordinators(cluster_factory, tmp_path):
    cluster = cluster_factory(3, **{"zookeeper.session.timeout.ms": 4000})
    topic = "transfers"
    create_topic(cluster, topic, partitions=PARTITIONS, replication_factor=3, **{"min.insync.replicas": 2})
    java_id, rdkafka_id = f"java-{uuid.uuid4().hex[:6]}", f"rdkafka-{uuid.uuid4().hex[:6]}"
    java_out = tmp_path / "java-outcomes.txt"
    java = subprocess.Popen([str(JAVA), "transactional-producer", cluster.bootstrap, topic, str(PARTITIONS),
                             java_id, "30", str(java_out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rdkafka = LibrdkafkaTransactions(cluster, topic, rdkafka_id, PARTITIONS)
    rdkafka.thread.start()
    try:
        wait_until(lambda: java_out.exists() and "committed" in java_out.read_text(), timeout=60,
                   what="the Java producer's first committed transaction")
        killed = []
        for transactional_id in (java_id, rdkafka_id):
            coordinator = transaction_coordinator(cluster, transactional_id)
            if coordinator >= 0 and coordinator not in killed and len(killed) < 1:
                cluster.stop_broker(coordinator)  # kill -9
                killed.append(coordinator)
        assert killed
        time.sleep(8)
        for node_id in killed:
            cluster.start_broker(node_id)
        stdout, stderr = java.communicate(timeout=120)
        assert java.returncode == 0, stderr[-2000:]
    finally:
        if java.poll() is None:
            java.kill()
        rdkafka.stopping.set()
        rdkafka.thread.join(120)
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["committed"] >= 5
    java_outcomes = _java_outcomes(java_out)
    outcomes = {**java_outcomes, **rdkafka.outcomes}
    committed = sum(1 for o in outcomes.values() if o == "committed")
    assert sum(1 for o in rdkafka.outcomes.values() if o == "committed") >= 100
    read = read_committed(cluster, topic, PARTITIONS, committed, timeout=90)
    print("outcomes", collections.Counter(outcomes.values()), "java", summary, "read", len(read), "killed", killed)
    check_transaction_outcomes(outcomes, read)
