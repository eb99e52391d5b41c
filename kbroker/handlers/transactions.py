"""Transactions: AddPartitionsToTxn (24) 0-5, AddOffsetsToTxn (25) 0-4, EndTxn (26) 0-5,
TxnOffsetCommit (28) 0-6 (v6 names topics by id, kbroker.handlers.topic_ids), DescribeTransactions
(65) 0, ListTransactions (66) 0-2 (v2 filters transactional ids by a regular expression). InitProducerId
with a transactional id is in producer_ids.py. The state machine is kbroker.txn; this module
translates the wire.

Transaction version 1 clients add partitions (AddPartitionsToTxn v0-3) and the group's offsets
partition (AddOffsetsToTxn) before writing there, and end with EndTxn below v5. Version 2 clients
(transaction.version 2 finalized, kbroker.handlers.features) do neither: the first batch to a
partition (Produce v12+, handlers/produce.py) and TxnOffsetCommit v5+ add the partition themselves,
and EndTxn v5 bumps the epoch and answers with the producer id and epoch to use next.
AddPartitionsToTxn v4+ batches transactions and may only verify (verify_only), as brokers use it.
A TxnOffsetCommit v4 whose offsets partition is not in the transaction is TRANSACTION_ABORTABLE
(below v4: INVALID_TXN_STATE). Clients older than KIP-588 (AddPartitionsToTxn, AddOffsetsToTxn and
EndTxn below v2) are told INVALID_PRODUCER_EPOCH where newer ones get PRODUCER_FENCED.
"""

from __future__ import annotations

import re
import uuid

from ..groups import OFFSETS_TOPIC
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
                                 AddPartitionsToTxnResponse, DescribeTransactionsRequest,
                                 DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse,
                                 ListTransactionsRequest, ListTransactionsResponse, TxnOffsetCommitRequest,
                                 TxnOffsetCommitResponse)
from ..protocol.primitives import ZERO_UUID
from ..txn import verification
from .registry import Handler
from .topic_ids import id_of, name_of

_TXN_OFFSET_TOPIC_IDS_FROM = 6
_Result = AddPartitionsToTxnResponse.AddPartitionsToTxnResult
_TopicResult = AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
_PartitionResult = AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult


def _fenced_for_old_clients(error: int, version: int, first_version_with_fenced: int = 2) -> int:
    if error == ErrorCode.PRODUCER_FENCED and version < first_version_with_fenced:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    return error


def _topic_results(errors: dict[tuple[str, int], int]) -> list:
    by_topic: dict[str, list] = {}
    for (topic, partition), error in errors.items():
        by_topic.setdefault(topic, []).append(_PartitionResult(partition_index=partition, partition_error_code=error))
    return [_TopicResult(name=name, results_by_partition=parts) for name, parts in by_topic.items()]


def _add_partitions(ctx, transactional_id: str, producer_id: int, epoch: int, topics, verify_only: bool,
                    from_broker: bool = False) -> dict[tuple[str, int], int]:
    wanted = [(t.name, p) for t in topics for p in t.partitions]
    unknown = {}
    for topic_name, partition in wanted:
        topic = ctx.metadata.get(topic_name)
        if topic is None or not 0 <= partition < topic.partitions:
            unknown[(topic_name, partition)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if unknown:
        # nothing is added when any partition is unknown; the others were not attempted
        return {tp: unknown.get(tp, ErrorCode.OPERATION_NOT_ATTEMPTED) for tp in wanted}
    coordinator = ctx.txns
    if verify_only:
        return coordinator.verify_partitions(transactional_id, producer_id, epoch, wanted)
    # from a broker (v4+), adding is what a partition leader does for a transactions v2 producer
    error = coordinator.add_partitions(transactional_id, producer_id, epoch, wanted,
                                       client_version=2 if from_broker else 1)
    return {tp: error for tp in wanted}


async def handle_add_partitions_to_txn(ctx, request: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse:
    version = ctx.api_version
    if version < 4:
        errors = _add_partitions(ctx, request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
                                 request.v3_and_below_producer_epoch, request.v3_and_below_topics, False)
        errors = {tp: _fenced_for_old_clients(e, version) for tp, e in errors.items()}
        return AddPartitionsToTxnResponse(results_by_topic_v3_and_below=_topic_results(errors))
    results = []
    for txn in request.transactions:
        errors = _add_partitions(ctx, txn.transactional_id, txn.producer_id, txn.producer_epoch, txn.topics,
                                 txn.verify_only, from_broker=True)
        results.append(_Result(transactional_id=txn.transactional_id, topic_results=_topic_results(errors)))
    return AddPartitionsToTxnResponse(error_code=ErrorCode.NONE, results_by_transaction=results)


async def handle_add_offsets_to_txn(ctx, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse:
    groups = ctx.groups
    try:
        topic = await groups.ensure_offsets_topic()
    except ApiError as exc:  # __consumer_offsets cannot be created (a full disk)
        return AddOffsetsToTxnResponse(error_code=exc.error_code)
    partition = groups.partition_for(request.group_id)
    error = ctx.txns.add_partitions(request.transactional_id, request.producer_id,
                                    request.producer_epoch, [(topic.name, partition)])
    return AddOffsetsToTxnResponse(error_code=_fenced_for_old_clients(error, ctx.api_version))


async def handle_end_txn(ctx, request: EndTxnRequest) -> EndTxnResponse:
    coordinator = ctx.txns
    error = coordinator.end_transaction(request.transactional_id, request.producer_id, request.producer_epoch,
                                        request.committed, client_version=2 if ctx.api_version >= 5 else 1)
    response = EndTxnResponse(error_code=_fenced_for_old_clients(error, ctx.api_version))
    if not error:
        meta = coordinator.describe(request.transactional_id)
        if meta is not None:
            response.producer_id, response.producer_epoch = meta.producer_id, meta.producer_epoch
    return response


async def _offsets_partition_in_transaction(ctx, request: TxnOffsetCommitRequest, offsets_partition) -> int:
    """v5+ (transactions v2) adds the group's offsets partition to the transaction, as AddOffsetsToTxn
    did; below, it must have been added (TRANSACTION_ABORTABLE from v4 when it was not). Asked of the
    transaction's coordinator, wherever it is (kbroker.txn.verification)."""
    if not request.group_id:
        return ErrorCode.NONE
    errors = await verification.check(ctx.txn_verifier, request.transactional_id, request.producer_id,
                                      request.producer_epoch, [offsets_partition], add=ctx.api_version >= 5,
                                      **verification.retry_backoffs(ctx.config))
    error = errors[offsets_partition]
    if error in (ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR):
        # retriable for the producer, which still has the right group coordinator
        return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    if error == ErrorCode.INVALID_TXN_STATE and ctx.api_version == 4:  # v5+ added it instead
        return ErrorCode.TRANSACTION_ABORTABLE
    return error


async def handle_txn_offset_commit(ctx, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse:
    version = ctx.api_version
    # (name, id) -> [(partition, error)]; v6+ answers by id, a topic id no topic has by id alone
    results: dict[tuple[str, uuid.UUID], list[tuple[int, int]]] = {}
    known = []
    by_id = version >= _TXN_OFFSET_TOPIC_IDS_FROM
    for t in request.topics:
        name = name_of(ctx, t.name, t.topic_id, by_id)
        topic = None if name is None else ctx.metadata.get(name)
        if topic is None:
            unknown = ErrorCode.UNKNOWN_TOPIC_ID if by_id else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            results.setdefault((name or "", t.topic_id), []).extend((p.partition_index, unknown) for p in t.partitions)
            continue
        parts = []
        for p in t.partitions:
            if 0 <= p.partition_index < topic.partitions:
                parts.append((p.partition_index, p.committed_offset,
                              p.committed_leader_epoch if version >= 2 else -1, p.committed_metadata))
            else:
                results.setdefault((name, topic.topic_id if by_id else ZERO_UUID), []).append(
                    (p.partition_index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
        if parts:
            known.append((name, parts))
    if known:
        groups = ctx.groups
        try:
            await groups.ensure_offsets_topic()
            offsets_partition = (OFFSETS_TOPIC, groups.partition_for(request.group_id))
            error = await _offsets_partition_in_transaction(ctx, request, offsets_partition)
        except ApiError as exc:  # __consumer_offsets cannot be created (a full disk)
            error = exc.error_code
        if error == ErrorCode.PRODUCER_FENCED:
            error = ErrorCode.INVALID_PRODUCER_EPOCH
        if error:
            committed = [(name, [(p[0], error) for p in parts]) for name, parts in known]
        else:
            committed = groups.commit_transactional_offsets(
                group_id=request.group_id, producer_id=request.producer_id, producer_epoch=request.producer_epoch,
                generation_id=request.generation_id_or_member_epoch if version >= 3 else -1,
                member_id=request.member_id if version >= 3 else "",
                group_instance_id=request.group_instance_id if version >= 3 else None, topics=known)
        for name, parts in committed:
            results.setdefault((name, id_of(ctx, name) if by_id else ZERO_UUID), []).extend(parts)
    return TxnOffsetCommitResponse(topics=[
        TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic(name=name, topic_id=topic_id, partitions=[
            TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition(partition_index=p, error_code=e)
            for p, e in parts])
        for (name, topic_id), parts in results.items()])


async def handle_describe_transactions(ctx, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse:
    coordinator = ctx.txns
    states = []
    for transactional_id in request.transactional_ids:
        meta = coordinator.describe(transactional_id) if transactional_id else None
        if meta is None:
            states.append(DescribeTransactionsResponse.TransactionState(
                error_code=ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, transactional_id=transactional_id,
                transaction_state="", transaction_timeout_ms=0, transaction_start_time_ms=-1,
                producer_id=-1, producer_epoch=-1))
            continue
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(meta.partitions):
            by_topic.setdefault(topic, []).append(partition)
        states.append(DescribeTransactionsResponse.TransactionState(
            error_code=ErrorCode.NONE, transactional_id=transactional_id, transaction_state=meta.state_name,
            transaction_timeout_ms=meta.timeout_ms, transaction_start_time_ms=meta.start_ms,
            producer_id=meta.producer_id, producer_epoch=meta.producer_epoch,
            topics=[DescribeTransactionsResponse.TopicData(topic=t, partitions=ps) for t, ps in by_topic.items()]))
    return DescribeTransactionsResponse(transaction_states=states)


async def handle_list_transactions(ctx, request: ListTransactionsRequest) -> ListTransactionsResponse:
    duration = request.duration_filter if ctx.api_version >= 1 else -1
    unknown, found = ctx.txns.list(list(request.state_filters),
                                   list(request.producer_id_filters), duration)
    pattern = request.transactional_id_pattern if ctx.api_version >= 2 else None
    if pattern:  # Kafka compiles it with RE2 and matches whole ids; Python's re reads RE2's syntax
        try:
            wanted = re.compile(pattern)
        except re.error:
            return ListTransactionsResponse(error_code=ErrorCode.INVALID_REGULAR_EXPRESSION)
        found = [m for m in found if wanted.fullmatch(m.transactional_id)]
    return ListTransactionsResponse(error_code=ErrorCode.NONE, unknown_state_filters=unknown, transaction_states=[
        ListTransactionsResponse.TransactionState(transactional_id=m.transactional_id, producer_id=m.producer_id,
                                                  transaction_state=m.state_name)
        for m in found])


HANDLERS = [
    Handler(AddPartitionsToTxnRequest, 0, 5, handle_add_partitions_to_txn),
    Handler(AddOffsetsToTxnRequest, 0, 4, handle_add_offsets_to_txn),
    Handler(EndTxnRequest, 0, 5, handle_end_txn),
    Handler(TxnOffsetCommitRequest, 0, 6, handle_txn_offset_commit),
    Handler(DescribeTransactionsRequest, 0, 0, handle_describe_transactions),
    Handler(ListTransactionsRequest, 0, 2, handle_list_transactions),
]
