"""Transactions on the wire: the exact answers Apache Kafka 4.4 gives (observed with the same story
against compat/kafka's oracle) for the coordinator's errors, partition verification on Produce,
read_committed Fetch and ListOffsets, transactional offset commits and require_stable, and the admin
views (DescribeTransactions, ListTransactions)."""

from __future__ import annotations

import time

from kbroker.protocol.errors import ErrorCode
from kbroker.protocol.messages import (AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeProducersRequest,
                                       DescribeTransactionsRequest,
                                       EndTxnRequest, FetchRequest, FindCoordinatorRequest, InitProducerIdRequest,
                                       ListOffsetsRequest, ListTransactionsRequest, OffsetFetchRequest,
                                       ProduceRequest, TxnOffsetCommitRequest)
from kbroker.protocol.records import Record, build_batch, decode_batch_records, iter_batches
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata

Topic = AddPartitionsToTxnRequest.AddPartitionsToTxnTopic


def init(client, transactional_id, version=4, timeout_ms=60000, **kw):
    return client.request(InitProducerIdRequest(transactional_id=transactional_id, transaction_timeout_ms=timeout_ms,
                                                **kw), version)


def add(client, transactional_id, pid, epoch, topics, version=3):
    response = client.request(AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=transactional_id, v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch, v3_and_below_topics=[Topic(name=t, partitions=ps) for t, ps in topics]),
        version)
    return {(t.name, p.partition_index): p.partition_error_code
            for t in response.results_by_topic_v3_and_below for p in t.results_by_partition}


def end(client, transactional_id, pid, epoch, commit, version=3):
    """EndTxn; once accepted, waits for the markers (Kafka writes them after answering, kbroker before)."""
    error = client.request(EndTxnRequest(transactional_id=transactional_id, producer_id=pid, producer_epoch=epoch,
                                         committed=commit), version).error_code
    deadline = time.monotonic() + 10
    while error == ErrorCode.NONE and describe(client, transactional_id).transaction_state.startswith("Prepare"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return error


def produce(client, topic, batch, transactional_id=None):
    response = client.request(ProduceRequest(transactional_id=transactional_id, acks=-1, timeout_ms=5000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=batch)])]), 9)
    return response.responses[0].partition_responses[0]


def txn_batch(pid, epoch, sequence, *values):
    return build_batch([Record(None, v) for v in values], producer_id=pid, producer_epoch=epoch,
                       base_sequence=sequence, transactional=True)


def fetch(client, topic, offset, isolation):
    response = client.request(FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20,
                                           isolation_level=isolation, topics=[FetchRequest.FetchTopic(
                                               topic=topic, partitions=[FetchRequest.FetchPartition(
                                                   partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)])]),
                              11)
    return response.responses[0].partitions[0]


def latest(client, topic, isolation):
    response = client.request(ListOffsetsRequest(replica_id=-1, isolation_level=isolation, topics=[
        ListOffsetsRequest.ListOffsetsTopic(name=topic, partitions=[
            ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=-1)])]), 5)
    return response.topics[0].partitions[0].offset


def producers(client, topic):
    response = client.request(DescribeProducersRequest(topics=[
        DescribeProducersRequest.TopicRequest(name=topic, partition_indexes=[0])]), 0)
    return {p.producer_id: (p.producer_epoch, p.coordinator_epoch, p.current_txn_start_offset)
            for p in response.topics[0].partitions[0].active_producers}


def describe(client, transactional_id):
    return client.request(DescribeTransactionsRequest(transactional_ids=[transactional_id]), 0).transaction_states[0]


def test_coordinator_errors_and_verification_as_kafka(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "wire-txn")
    with WireClient(kbroker.bootstrap) as c:
        found = c.request(FindCoordinatorRequest(key_type=1, coordinator_keys=["w1"]), 4).coordinators[0]
        assert (found.error_code, found.node_id) == (0, kbroker.broker.node_id)
        first = init(c, "w1")
        assert (first.error_code, first.producer_epoch) == (0, 0)
        again = init(c, "w1")
        pid, epoch = again.producer_id, again.producer_epoch
        assert (again.error_code, pid, epoch) == (0, first.producer_id, 1)
        assert init(c, "w1", timeout_ms=0).error_code == ErrorCode.INVALID_TRANSACTION_TIMEOUT
        assert init(c, "w1", timeout_ms=900001).error_code == ErrorCode.INVALID_TRANSACTION_TIMEOUT
        assert init(c, "").error_code == ErrorCode.INVALID_REQUEST

        tp = ("wire-txn", 0)
        assert add(c, "w1", pid, 0, [("wire-txn", [0])]) == {tp: ErrorCode.PRODUCER_FENCED}
        assert add(c, "w1", pid, 0, [("wire-txn", [0])], version=1) == {tp: ErrorCode.INVALID_PRODUCER_EPOCH}
        assert add(c, "nobody", pid, epoch, [("wire-txn", [0])]) == {tp: ErrorCode.INVALID_PRODUCER_ID_MAPPING}
        assert add(c, "w1", pid + 1, epoch, [("wire-txn", [0])]) == {tp: ErrorCode.INVALID_PRODUCER_ID_MAPPING}
        assert add(c, "w1", pid, epoch, [("wire-txn", [0]), ("no-such-topic", [0])]) == {
            tp: ErrorCode.OPERATION_NOT_ATTEMPTED, ("no-such-topic", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
        assert end(c, "w1", pid, epoch, True) == ErrorCode.INVALID_TXN_STATE  # nothing to end
        assert describe(c, "w1").transaction_state == "Empty"

        # Produce: transactional data needs a transactional id, and a partition added to the transaction
        refused = produce(c, "wire-txn", txn_batch(pid, epoch, 0, b"x"))
        assert refused.error_code == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        refused = produce(c, "wire-txn", txn_batch(pid, epoch, 0, b"x"), "w1")
        assert (refused.error_code, refused.error_message, refused.base_offset) == (
            ErrorCode.INVALID_TXN_STATE, "Partition was not added to the transaction", -1)
        assert produce(c, "wire-txn", txn_batch(pid, 0, 0, b"x"), "w1").error_code == ErrorCode.INVALID_PRODUCER_EPOCH

        assert add(c, "w1", pid, epoch, [("wire-txn", [0])]) == {tp: ErrorCode.NONE}
        state = describe(c, "w1")
        assert (state.transaction_state, state.producer_id, state.producer_epoch, state.transaction_timeout_ms) == (
            "Ongoing", pid, epoch, 60000)
        assert [(t.topic, t.partitions) for t in state.topics] == [("wire-txn", [0])]
        assert state.transaction_start_time_ms > 0
        verify = c.request(AddPartitionsToTxnRequest(transactions=[
            AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction(
                transactional_id="w1", producer_id=pid, producer_epoch=epoch, verify_only=True,
                topics=[Topic(name="wire-txn", partitions=[0, 1])])]), 4)
        assert {(t.name, p.partition_index): p.partition_error_code
                for t in verify.results_by_transaction[0].topic_results for p in t.results_by_partition} == {
            tp: ErrorCode.OPERATION_NOT_ATTEMPTED, ("wire-txn", 1): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}

        assert produce(c, "wire-txn", txn_batch(pid, epoch, 0, b"t1", b"t2"), "w1").base_offset == 0
        assert produce(c, "wire-txn", build_batch([Record(None, b"plain")])).base_offset == 2
        # a non-transactional write by a producer with an open transaction
        idem = build_batch([Record(None, b"oops")], producer_id=pid, producer_epoch=epoch, base_sequence=2)
        assert produce(c, "wire-txn", idem, "w1").error_code == ErrorCode.INVALID_TXN_STATE

        assert producers(c, "wire-txn")[pid] == (epoch, -1, 0)
        committed = fetch(c, "wire-txn", 0, 1)
        assert (committed.high_watermark, committed.last_stable_offset, bytes(committed.records or b""),
                committed.aborted_transactions) == (3, 0, b"", [])
        uncommitted = fetch(c, "wire-txn", 0, 0)
        assert (uncommitted.last_stable_offset, uncommitted.aborted_transactions) == (0, None)
        assert (latest(c, "wire-txn", 1), latest(c, "wire-txn", 0)) == (0, 3)

        listed = c.request(ListTransactionsRequest(state_filters=["Ongoing", "Bogus"]), 1)
        assert listed.unknown_state_filters == ["Bogus"]
        assert [(t.transactional_id, t.producer_id, t.transaction_state) for t in listed.transaction_states] == [
            ("w1", pid, "Ongoing")]
        assert c.request(ListTransactionsRequest(producer_id_filters=[pid + 1000]), 1).transaction_states == []
        long_running = c.request(ListTransactionsRequest(duration_filter=3_600_000), 1).transaction_states
        assert "w1" not in [t.transactional_id for t in long_running]

        assert end(c, "w1", pid, epoch, False) == ErrorCode.NONE
        assert end(c, "w1", pid, epoch, False) == ErrorCode.NONE  # a retry of a completed abort
        assert end(c, "w1", pid, epoch, True) == ErrorCode.INVALID_TXN_STATE
        assert end(c, "w1", pid, epoch - 1, False, version=1) == ErrorCode.INVALID_PRODUCER_EPOCH
        assert describe(c, "w1").transaction_state == "CompleteAbort"

        assert producers(c, "wire-txn")[pid] == (epoch, 0, -1)
        after = fetch(c, "wire-txn", 0, 1)
        assert (after.high_watermark, after.last_stable_offset) == (4, 4)
        assert [(a.producer_id, a.first_offset) for a in after.aborted_transactions] == [(pid, 0)]
        data = memoryview(bytes(after.records))
        batches = list(iter_batches(data))
        assert [(b.base_offset, b.is_transactional, b.is_control) for b in batches] == [
            (0, True, False), (2, False, False), (3, True, True)]
        marker = decode_batch_records(data[batches[2].position:batches[2].position + batches[2].size])[0]
        assert (marker.key, marker.value) == (b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00")
        from_marker = fetch(c, "wire-txn", 3, 1)
        assert [(a.producer_id, a.first_offset) for a in from_marker.aborted_transactions] == [(pid, 0)]
        assert fetch(c, "wire-txn", 4, 1).aborted_transactions == []
        assert latest(c, "wire-txn", 1) == 4

        # a second transaction of the same epoch continues the producer's sequence
        assert add(c, "w1", pid, epoch, [("wire-txn", [0])]) == {tp: ErrorCode.NONE}
        assert produce(c, "wire-txn", txn_batch(pid, epoch, 2, b"t3"), "w1").base_offset == 4
        assert end(c, "w1", pid, epoch, True) == ErrorCode.NONE
        done = fetch(c, "wire-txn", 4, 1)
        assert (done.last_stable_offset, done.aborted_transactions) == (6, [])


def test_init_producer_id_aborts_an_open_transaction_and_kip360_bumps(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "bumps")
    with WireClient(kbroker.bootstrap) as c:
        first = init(c, "b1")
        pid, epoch = first.producer_id, first.producer_epoch
        assert add(c, "b1", pid, epoch, [("bumps", [0])]) == {("bumps", 0): 0}
        assert produce(c, "bumps", txn_batch(pid, epoch, 0, b"open"), "b1").error_code == 0
        busy = init(c, "b1")  # fences the open transaction's producer and aborts it
        assert (busy.error_code, busy.producer_id, busy.producer_epoch) == (ErrorCode.CONCURRENT_TRANSACTIONS, -1, -1)
        # Kafka writes the markers after answering: PrepareAbort may still be seen
        assert describe(c, "b1").transaction_state in ("PrepareAbort", "CompleteAbort")
        assert describe(c, "b1").producer_epoch == epoch + 1
        retry = init(c, "b1")
        while retry.error_code == ErrorCode.CONCURRENT_TRANSACTIONS:
            time.sleep(0.05)
            retry = init(c, "b1")
        assert (retry.error_code, retry.producer_id, retry.producer_epoch) == (0, pid, epoch + 2)
        # the fenced producer: its marker epoch moved the partition on
        assert produce(c, "bumps", txn_batch(pid, epoch, 1, b"zombie"), "b1").error_code == \
            ErrorCode.INVALID_PRODUCER_EPOCH
        assert end(c, "b1", pid, epoch, True) == ErrorCode.PRODUCER_FENCED
        assert end(c, "b1", pid, epoch, True, version=1) == ErrorCode.INVALID_PRODUCER_EPOCH

        # KIP-360: a producer recovering with its current id and epoch gets the next epoch
        current = epoch + 2
        bumped = init(c, "b1", version=4, producer_id=pid, producer_epoch=current)
        assert (bumped.error_code, bumped.producer_id, bumped.producer_epoch) == (0, pid, current + 1)
        # a retry of that call (its response was lost) gets the same epoch
        retried = init(c, "b1", version=4, producer_id=pid, producer_epoch=current)
        assert (retried.error_code, retried.producer_epoch) == (0, current + 1)
        stale = init(c, "b1", version=4, producer_id=pid, producer_epoch=current - 1)
        assert stale.error_code == ErrorCode.PRODUCER_FENCED
        assert init(c, "b1", version=3, producer_id=pid, producer_epoch=current - 1).error_code == \
            ErrorCode.INVALID_PRODUCER_EPOCH
        assert init(c, "b1", version=4, producer_id=pid + 77, producer_epoch=0).error_code == ErrorCode.PRODUCER_FENCED
        assert init(c, "b1", version=4, producer_id=pid, producer_epoch=-1).error_code == ErrorCode.INVALID_REQUEST


def test_transactional_offsets_are_pending_until_the_marker(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "sourced")
    with WireClient(kbroker.bootstrap) as c:
        r = init(c, "o1")
        pid, epoch = r.producer_id, r.producer_epoch

        def txn_commit(offset, version=3):
            response = c.request(TxnOffsetCommitRequest(
                transactional_id="o1", group_id="etl", producer_id=pid, producer_epoch=epoch, topics=[
                    TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic(name=name, partitions=[
                        TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition(partition_index=0,
                                                                               committed_offset=offset,
                                                                               committed_metadata="m")])
                    for name in ("sourced", "missing")]), version)
            return {t.name: t.partitions[0].error_code for t in response.topics}

        def offset_fetch(stable):
            response = c.request(OffsetFetchRequest(group_id="etl", require_stable=stable, topics=[
                OffsetFetchRequest.OffsetFetchRequestTopic(name="sourced", partition_indexes=[0])]), 7)
            p = response.topics[0].partitions[0]
            return p.committed_offset, p.error_code

        # without AddOffsetsToTxn the group's offsets partition is not in the transaction
        assert txn_commit(5) == {"sourced": ErrorCode.INVALID_TXN_STATE,
                                 "missing": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
        add_offsets = c.request(AddOffsetsToTxnRequest(transactional_id="o1", producer_id=pid, producer_epoch=epoch,
                                                       group_id="etl"), 3)
        assert add_offsets.error_code == 0
        assert [t.topic for t in describe(c, "o1").topics] == ["__consumer_offsets"]
        assert txn_commit(5) == {"sourced": 0, "missing": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
        assert offset_fetch(True) == (-1, ErrorCode.UNSTABLE_OFFSET_COMMIT)
        assert offset_fetch(False) == (-1, 0)
        assert end(c, "o1", pid, epoch, True) == 0
        assert offset_fetch(True) == (5, 0)

        assert add(c, "o1", pid, epoch, [("sourced", [0])]) == {("sourced", 0): 0}
        assert c.request(AddOffsetsToTxnRequest(transactional_id="o1", producer_id=pid, producer_epoch=epoch,
                                                group_id="etl"), 3).error_code == 0
        assert txn_commit(9) == {"sourced": 0, "missing": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
        assert end(c, "o1", pid, epoch, False) == 0
        assert offset_fetch(True) == (5, 0)  # the aborted commit is dropped


def test_transactional_offsets_survive_a_restart(kbroker_process):
    broker = kbroker_process()
    create_topics_by_metadata(broker.bootstrap, "sourced")
    with WireClient(broker.bootstrap) as c:
        r = init(c, "o2")
        pid, epoch = r.producer_id, r.producer_epoch
        assert c.request(AddOffsetsToTxnRequest(transactional_id="o2", producer_id=pid, producer_epoch=epoch,
                                                group_id="etl2"), 3).error_code == 0
        response = c.request(TxnOffsetCommitRequest(
            transactional_id="o2", group_id="etl2", producer_id=pid, producer_epoch=epoch, topics=[
                TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic(name="sourced", partitions=[
                    TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition(partition_index=0, committed_offset=7)])]),
            3)
        assert response.topics[0].partitions[0].error_code == 0
    broker.restart()
    with WireClient(broker.bootstrap) as c:
        fetch_stable = OffsetFetchRequest(group_id="etl2", require_stable=True, topics=[
            OffsetFetchRequest.OffsetFetchRequestTopic(name="sourced", partition_indexes=[0])])
        assert c.request(fetch_stable, 7).topics[0].partitions[0].error_code == ErrorCode.UNSTABLE_OFFSET_COMMIT
        assert end(c, "o2", pid, epoch, True) == 0
        assert c.request(fetch_stable, 7).topics[0].partitions[0].committed_offset == 7
    broker.restart()
    with WireClient(broker.bootstrap) as c:
        assert c.request(fetch_stable, 7).topics[0].partitions[0].committed_offset == 7
        assert describe(c, "o2").transaction_state == "CompleteCommit"
        unknown = describe(c, "nobody")
        assert (unknown.error_code, unknown.transaction_state) == (ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, "")
