"""Transactions v2 (KIP-890 part 2), as a Kafka 4.4 producer runs them once transaction.version 2 is
finalized: the first batch to a partition adds it to the transaction (Produce v12+), TxnOffsetCommit
v5+ adds the group's offsets partition, and every EndTxn v5 bumps the producer epoch and returns it,
so a late batch of an ended transaction is fenced. Below those versions a partition not added is
TRANSACTION_ABORTABLE (Produce v11, TxnOffsetCommit v4). The wire story's answers are the ones Apache
Kafka 4.4 gives (run against compat/kafka's oracle); the Java 4.4 producer negotiates v2 against
kbroker and, downgraded with UpdateFeatures, v1."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from kbroker.protocol.errors import ErrorCode
from kbroker.protocol.messages import (EndTxnRequest, FindCoordinatorRequest, MetadataRequest, ProduceRequest,
                                       TxnOffsetCommitRequest, UpdateFeaturesRequest)
from kbroker.protocol.primitives import ZERO_UUID
from kbroker.protocol.records import iter_batches
from tests.kafka_wire import WireClient
from tests.test_transactions_wire import describe, fetch, init, txn_batch

JAVA_COMPAT = Path(__file__).resolve().parent.parent / "compat" / "java" / "run"


def produce(client, topic, batch, transactional_id, version):
    response = client.request(ProduceRequest(transactional_id=transactional_id, acks=-1, timeout_ms=5000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=batch)])]), version)
    p = response.responses[0].partition_responses[0]
    return p.error_code, p.error_message


def end_v5(client, transactional_id, pid, epoch, commit):
    """EndTxn v5: (error, producer id, epoch); once accepted, waits for the markers (Kafka writes them
    after answering)."""
    r = client.request(EndTxnRequest(transactional_id=transactional_id, producer_id=pid, producer_epoch=epoch,
                                     committed=commit), 5)
    deadline = time.monotonic() + 10
    while r.error_code == 0 and describe(client, transactional_id).transaction_state.startswith("Prepare"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return r.error_code, None if r.producer_id == -1 else r.producer_id - pid, r.producer_epoch


def txn_offset_commit(client, transactional_id, group, pid, epoch, topic, version, topic_id=None):
    """The error of partition 0; v6+ names the topic by ``topic_id``."""
    client.request(FindCoordinatorRequest(key=group, key_type=0), 3)  # creates __consumer_offsets on Kafka
    r = client.request(TxnOffsetCommitRequest(
        transactional_id=transactional_id, group_id=group, producer_id=pid, producer_epoch=epoch, topics=[
            TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic(name=topic, topic_id=topic_id or ZERO_UUID, partitions=[
                TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition(partition_index=0, committed_offset=3)])]),
        version)
    return r.topics[0].partitions[0].error_code


def topic_id_of(client, topic: str):
    return client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)]), 12
                          ).topics[0].topic_id


def create_topic(client, topic: str) -> None:
    """Auto-created by Metadata; Kafka answers the creating request before the topic has a leader."""
    deadline = time.monotonic() + 10
    while True:
        t = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                                           allow_auto_topic_creation=True), 9).topics[0]
        if t.error_code == 0 and t.partitions and t.partitions[0].leader_id >= 0:
            return
        assert time.monotonic() < deadline, t
        time.sleep(0.05)


def wire_story(bootstrap: str, prefix: str) -> dict:
    """What a TV2 producer and a TV1 one observe, step by step (producer ids relative to the first)."""
    topic, tid = f"{prefix}-tv2", f"{prefix}-tv2-txn"
    seen = {}
    with WireClient(bootstrap, timeout=20) as c:
        create_topic(c, topic)
        c.request(FindCoordinatorRequest(key=tid, key_type=1), 3)
        first = init(c, tid, version=5)
        pid, e = first.producer_id, first.producer_epoch
        seen["implicit add"] = produce(c, topic, txn_batch(pid, e, 0, b"committed"), tid, 12)
        seen["commit"] = end_v5(c, tid, pid, e, True)
        seen["commit retried"] = end_v5(c, tid, pid, e, True)
        seen["late batch of the old epoch"] = produce(c, topic, txn_batch(pid, e, 1, b"late"), tid, 12)
        seen["next transaction"] = produce(c, topic, txn_batch(pid, e + 1, 0, b"aborted"), tid, 12)
        seen["offsets added by TxnOffsetCommit v5"] = txn_offset_commit(c, tid, f"{prefix}-g", pid, e + 1, topic, 5)
        seen["TxnOffsetCommit v6 by topic id"] = txn_offset_commit(c, tid, f"{prefix}-g", pid, e + 1, "", 6,
                                                                  topic_id_of(c, topic))
        seen["TxnOffsetCommit v6 by an unknown id"] = txn_offset_commit(c, tid, f"{prefix}-g", pid, e + 1, "", 6,
                                                                       uuid.UUID(int=0xABCD))
        seen["abort"] = end_v5(c, tid, pid, e + 1, False)
        seen["abort of an empty transaction"] = end_v5(c, tid, pid, e + 2, False)
        seen["commit of an empty transaction"] = end_v5(c, tid, pid, e + 3, True)
        data = fetch(c, topic, 0, 0).records
        seen["batches (offset, epoch - first epoch, control)"] = [
            (b.base_offset, b.producer_epoch - e, b.is_control) for b in iter_batches(bytes(data))]
        seen["batches below the last stable offset"] = len(list(iter_batches(bytes(fetch(c, topic, 0, 1).records))))

        tv1 = f"{prefix}-tv1-txn"
        c.request(FindCoordinatorRequest(key=tv1, key_type=1), 3)
        old = init(c, tv1, version=5)
        seen["v11: partition not added"] = produce(c, topic, txn_batch(old.producer_id, old.producer_epoch, 0, b"x"),
                                                    tv1, 11)
        seen["v10: partition not added"] = produce(c, topic, txn_batch(old.producer_id, old.producer_epoch, 0, b"x"),
                                                    tv1, 10)
        seen["TxnOffsetCommit v4: not added"] = txn_offset_commit(c, tv1, f"{prefix}-g1", old.producer_id,
                                                                 old.producer_epoch, topic, 4)
    return seen


EXPECTED = {
    "implicit add": (0, None),
    "commit": (0, 0, 1),
    "commit retried": (0, 0, 1),
    "late batch of the old epoch": (ErrorCode.INVALID_PRODUCER_EPOCH, None),
    "next transaction": (0, None),
    "offsets added by TxnOffsetCommit v5": 0,
    "TxnOffsetCommit v6 by topic id": 0,
    "TxnOffsetCommit v6 by an unknown id": ErrorCode.UNKNOWN_TOPIC_ID,
    "abort": (0, 0, 2),
    "abort of an empty transaction": (0, 0, 3),
    "commit of an empty transaction": (ErrorCode.INVALID_TXN_STATE, None, -1),
    "batches (offset, epoch - first epoch, control)": [(0, 0, False), (1, 1, True), (2, 1, False), (3, 2, True)],
    "batches below the last stable offset": 4,  # the aborted one too: the consumer drops it
    "v11: partition not added": (ErrorCode.TRANSACTION_ABORTABLE, None),
    "v10: partition not added": (ErrorCode.INVALID_TXN_STATE, "Partition was not added to the transaction"),
    "TxnOffsetCommit v4: not added": ErrorCode.TRANSACTION_ABORTABLE,
}


def test_transactions_v2_on_the_wire_as_kafka(kbroker):
    assert wire_story(kbroker.bootstrap, "wire") == EXPECTED


@pytest.fixture(scope="module")
def java_scenarios():
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.skip("no java or maven for compat/java")

    def run(bootstrap: str, prefix: str, scenario: str) -> dict:
        result = subprocess.run([str(JAVA_COMPAT), "--bootstrap", bootstrap, "--prefix", prefix, "--only", scenario],
                                capture_output=True, text=True, timeout=240)
        ends = [json.loads(line) for line in result.stdout.splitlines() if '"end"' in line]
        assert ends, result.stderr[-2000:]
        return ends[0]
    return run


def batch_epochs(bootstrap: str, topic: str) -> list[tuple[int, bool]]:
    """(producer epoch, is a marker) of every batch of the topic's partition 0, in order."""
    with WireClient(bootstrap) as c:
        return [(b.producer_epoch, b.is_control) for b in iter_batches(bytes(fetch(c, topic, 0, 0).records))]


def test_the_java_producer_negotiates_transactions_v2_and_v1_after_a_downgrade(kbroker, java_scenarios):
    # transactions-v2 (compat/java): abort then commit, offsets sent to the transaction, read_committed
    outcome = java_scenarios(kbroker.bootstrap, "j2", "transactions-v2")
    assert outcome["status"] == "pass", outcome["detail"]
    coordinator = kbroker.broker.txn_coordinator
    assert coordinator.txns["j2-transactions-v2-txn"].client_version == 2  # its partitions came by Produce v12
    # every EndTxn v5 bumped the epoch: the abort marker, the next transaction and its commit marker
    assert batch_epochs(kbroker.bootstrap, "j2-transactions-v2") == [(0, False), (1, True), (1, False), (2, True)]

    with WireClient(kbroker.bootstrap) as c:
        downgraded = c.request(UpdateFeaturesRequest(feature_updates=[UpdateFeaturesRequest.FeatureUpdateKey(
            feature="transaction.version", max_version_level=1, upgrade_type=2)]), 1)
    assert downgraded.error_code == 0
    outcome = java_scenarios(kbroker.bootstrap, "j1", "transactions")
    assert outcome["status"] == "pass", outcome["detail"]
    assert coordinator.txns["j1-transactions-txn"].client_version == 1  # AddPartitionsToTxn, EndTxn v4
    assert batch_epochs(kbroker.bootstrap, "j1-transactions") == [(0, False), (0, True), (0, False), (0, True)]
