"""Produce (key 0): records in. Serves versions 3-13 (v13 names topics by id: an id the broker does
not know is UNKNOWN_TOPIC_ID per partition, KIP-516); advertises from 0 as Kafka 4 does, because
librdkafka decides whether it may compress from the advertised Produce range (KAFKA-18659). A request
at v0-2 is not served, so the connection is closed, as Kafka 4 does.

Per partition: find the log (UNKNOWN_TOPIC_OR_PARTITION; clients may not write internal topics:
INVALID_TOPIC_EXCEPTION), append the batch as it came (the log validates it: CORRUPT_MESSAGE,
INVALID_RECORD, MESSAGE_TOO_LARGE, INVALID_TIMESTAMP, sequence and epoch errors), and answer with the
assigned base offset. zstd needs v7+ (UNSUPPORTED_COMPRESSION_TYPE). acks must be -1, 0 or 1
(INVALID_REQUIRED_ACKS); acks=0 gets no response at all, and a failed acks=0 request closes the
connection, the only signal such a producer gets. Appends go through the partition layer
(kbroker.partitions), which answers KAFKA_STORAGE_ERROR for a partition whose log fails to write (disk
full), while the request's other partitions are appended as usual. acks=-1 answers once each
partition's high watermark covers its batch (every in-sync replica has it), or REQUEST_TIMED_OUT for
those it does not reach within the request's timeout_ms; NOT_ENOUGH_REPLICAS before the append when the
ISR is smaller than min.insync.replicas, NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank below it
meanwhile, NOT_LEADER_OR_FOLLOWER when leadership moved meanwhile (or was never here). While the
leader is its whole ISR (one broker) the append itself advances the high watermark, so acks=-1
and acks=1 answer alike, the write in the log before the answer, fsynced per flush.messages/flush.ms.
Topics are not auto-created here: producers ask Metadata first, which creates them (as in Kafka).

Transactions: a request carrying transactional batches without a transactional id is refused whole
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED). A producer's first transactional batch to a partition in a
transaction is checked with the transaction coordinator (before any append: one call for the
request, to whichever broker coordinates the transactional id, kbroker.txn.verification). From v12
(transactions v2, KIP-890 part 2) the partition is added to the transaction there, as
AddPartitionsToTxn did. Below v12 it is verified
(KIP-890 part 1, transaction.partition.verification.enable): a partition not added to the ongoing
transaction is TRANSACTION_ABORTABLE from v11, INVALID_TXN_STATE "Partition was not added to the
transaction" below. Either way a fenced epoch is INVALID_PRODUCER_EPOCH, an unknown producer id
INVALID_PRODUCER_ID_MAPPING, a transaction being ended NOT_ENOUGH_REPLICAS.
"""

from __future__ import annotations

import trio

from ..log.errors import RecordsRejected
from ..protocol import compression
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import ProduceRequest, ProduceResponse
from ..protocol.records import (ATTRIBUTES_OFFSET, HEADER_SIZE, TRANSACTIONAL_MASK, InvalidProduceFraming,
                                parse_header)
from ..txn import verification
from . import leader_hints
from .registry import CloseConnection, Handler

BatchError = ProduceResponse.BatchIndexAndErrorMessage
PartitionResponse = ProduceResponse.PartitionProduceResponse
_ZSTD_MIN_VERSION = 7
_TOPIC_IDS_FROM = 13
_TRANSACTION_ABORTABLE_FROM = 11
_ADDS_PARTITIONS_FROM = 12  # transactions v2


# Kafka answers these without looking at the log, so with no log start offset; other append errors
# (validation of records, sequences, epochs) carry the partition's log start offset.
# A storage error is answered without them too (Kafka's UNKNOWN_LOG_APPEND_INFO).
_ERRORS_BEFORE_THE_LOG = {ErrorCode.CORRUPT_MESSAGE, ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE,
                          ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, ErrorCode.KAFKA_STORAGE_ERROR}
INVALID_TIMESTAMP_MESSAGE = "One or more records have been rejected due to invalid timestamp"


def _error(index: int, code: ErrorCode, log_start_offset: int = -1) -> PartitionResponse:
    return PartitionResponse(index=index, error_code=code, base_offset=-1, log_start_offset=log_start_offset)


def _append_error(index: int, exc: ApiError, partition) -> PartitionResponse:
    """The per-partition answer to a failed append, shaped as Kafka shapes it (messages are null
    except for invalid timestamps, which also name the batch in record_errors)."""
    known_start = not (isinstance(exc, InvalidProduceFraming) or exc.error_code in _ERRORS_BEFORE_THE_LOG)
    response = _error(index, exc.error_code, partition.log_start_offset if known_start else -1)
    if exc.error_code == ErrorCode.INVALID_TIMESTAMP:
        response.error_message = INVALID_TIMESTAMP_MESSAGE
        response.record_errors = [BatchError(batch_index=exc.record_index or 0,
                                             batch_index_error_message=str(exc))]
    elif isinstance(exc, RecordsRejected):  # e.g. keyless records on a compacted topic
        response.error_message = exc.message
        response.record_errors = [BatchError(batch_index=i, batch_index_error_message=m) for i, m in exc.record_errors]
    return response


def _is_transactional(records) -> bool:
    # the flag sits in the low byte of the big-endian int16 attributes
    return records is not None and len(records) >= HEADER_SIZE and bool(records[ATTRIBUTES_OFFSET + 1] & TRANSACTIONAL_MASK)


async def _verify_transactions(ctx, request: ProduceRequest, by_id: bool) -> dict[tuple[str, int], PartitionResponse]:
    """KIP-890: the partitions of the producer's first transactional batches there, added to (v12+) or
    verified in its transaction, all in one call to its coordinator (kbroker.txn.verification); the
    answers of the partitions that may not be appended to, by (topic name, index)."""
    transactional_id = request.transactional_id
    if transactional_id is None or not (
            ctx.api_version >= _ADDS_PARTITIONS_FROM or ctx.config.get("transaction.partition.verification.enable")):
        return {}
    unverified: dict[tuple[int, int], list[tuple[str, int]]] = {}  # (producer id, epoch) -> partitions
    for topic_data in request.topic_data:
        transactional = [d for d in topic_data.partition_data if _is_transactional(d.records)]
        if not transactional:
            continue
        try:
            topic = ctx.partitions.find_topic(None if by_id else topic_data.name, topic_data.topic_id)
        except ApiError:
            continue  # answered by the append
        if topic.is_internal:
            continue  # refused by the append
        for data in transactional:
            try:
                partition = ctx.partitions.partition(topic, data.index)
            except ApiError:
                continue  # answered by the append
            header = parse_header(data.records)
            if header.producer_id >= 0 and not partition.has_ongoing_transaction(header.producer_id,
                                                                                 header.producer_epoch):
                unverified.setdefault((header.producer_id, header.producer_epoch), []).append((topic.name, data.index))
    refused = {}
    for (producer_id, epoch), partitions in unverified.items():
        errors = await verification.check(ctx.txn_verifier, transactional_id, producer_id, epoch, partitions,
                                          add=ctx.api_version >= _ADDS_PARTITIONS_FROM,
                                          **verification.retry_backoffs(ctx.config))
        for tp, error in errors.items():
            if error != ErrorCode.NONE:
                refused[tp] = _verification_error(ctx, tp[1], error)
    return refused


def _verification_error(ctx, index: int, error: int) -> PartitionResponse:
    if error == ErrorCode.INVALID_TXN_STATE and ctx.api_version >= _TRANSACTION_ABORTABLE_FROM:
        error = ErrorCode.TRANSACTION_ABORTABLE
    response = _error(index, error)
    if error == ErrorCode.PRODUCER_FENCED:
        response.error_code = ErrorCode.INVALID_PRODUCER_EPOCH
    elif error == ErrorCode.INVALID_TXN_STATE:
        response.error_message = "Partition was not added to the transaction"
    elif error in (ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
                   ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR):
        response.error_code = ErrorCode.NOT_ENOUGH_REPLICAS
        response.error_message = ("Unable to verify the partition has been added to the transaction. "
                                  f"Underlying error: {ErrorCode(error).name}")
    return response


def _append_partition(ctx, topic, data: ProduceRequest.PartitionProduceData, acks_waits: list | None
                      ) -> PartitionResponse:
    """Append one partition's batch; with acks=-1 (``acks_waits`` given) a batch the high watermark
    does not cover yet is added there, to be waited for."""
    try:
        if topic.is_internal:
            raise ApiError(ErrorCode.INVALID_TOPIC_EXCEPTION)
        partition = ctx.partitions.partition(topic, data.index)
    except ApiError as exc:
        return _error(data.index, exc.error_code)
    records = data.records if data.records is not None else b""
    try:
        if ctx.api_version < _ZSTD_MIN_VERSION and len(records) >= HEADER_SIZE \
                and parse_header(records).compression == compression.ZSTD:
            raise ApiError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, "zstd needs Produce v7 or later")
        result = partition.append(records, acks=-1 if acks_waits is not None else 1)
    except ApiError as exc:
        return _append_error(data.index, exc, partition)
    # a retried duplicate is answered as first time, with the batch's timestamp as its append time
    append_time = result.max_timestamp if result.duplicate else result.log_append_time_ms
    response = PartitionResponse(index=data.index, error_code=ErrorCode.NONE, base_offset=result.base_offset,
                                 log_append_time_ms=append_time, log_start_offset=result.log_start_offset)
    if acks_waits is not None and partition.high_watermark <= result.last_offset:
        acks_waits.append((partition, result.last_offset + 1, response))
    return response


async def _wait_for_high_watermarks(acks_waits: list, timeout_ms: int) -> None:
    """acks=-1: until each partition's high watermark covers its batch; REQUEST_TIMED_OUT for those
    it does not reach within the request's timeout, as Kafka's delayed produce answers."""
    deadline = trio.current_time() + max(timeout_ms, 0) / 1000
    for partition, end_offset, response in acks_waits:
        try:
            if not await partition.wait_for_high_watermark(end_offset, deadline):
                response.error_code = ErrorCode.REQUEST_TIMED_OUT
        except ApiError as exc:  # leadership lost meanwhile, or the ISR fell below min.insync.replicas
            response.error_code = exc.error_code
        if response.error_code:
            response.base_offset = -1


async def handle_produce(ctx, request: ProduceRequest) -> ProduceResponse | None:
    responses = []
    appended = False
    acks_waits: list | None = [] if request.acks == -1 else None
    if request.transactional_id is None and any(_is_transactional(d.records) for t in request.topic_data
                                                for d in t.partition_data):
        if request.acks == 0:
            raise CloseConnection("acks=0 transactional produce request without a transactional id")
        return ProduceResponse(responses=[ProduceResponse.TopicProduceResponse(
            name=t.name, topic_id=t.topic_id, partition_responses=[
            _error(d.index, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED) for d in t.partition_data])
            for t in request.topic_data])
    by_id = ctx.api_version >= _TOPIC_IDS_FROM
    refused = await _verify_transactions(ctx, request, by_id)
    for topic_data in request.topic_data:
        partitions = []
        try:
            topic = ctx.partitions.find_topic(None if by_id else topic_data.name, topic_data.topic_id)
        except ApiError as exc:
            topic, topic_error = None, exc.error_code
        for data in topic_data.partition_data:
            if request.acks not in (-1, 0, 1):
                partitions.append(_error(data.index, ErrorCode.INVALID_REQUIRED_ACKS))
            elif topic is None:
                partitions.append(_error(data.index, topic_error))
            elif (topic.name, data.index) in refused:
                partitions.append(refused[(topic.name, data.index)])
            else:
                response = _append_partition(ctx, topic, data, acks_waits)
                appended |= response.error_code == ErrorCode.NONE
                partitions.append(response)
        responses.append(ProduceResponse.TopicProduceResponse(name=topic_data.name, topic_id=topic_data.topic_id,
                                                              partition_responses=partitions))
    if appended:
        ctx.appends.notify()
    if acks_waits:
        await _wait_for_high_watermarks(acks_waits, request.timeout_ms)
    if request.acks != 0 and ctx.api_version >= 10:
        _leader_hints(ctx, responses)
    if request.acks == 0:
        # no response; but an error closes the connection, which is how Kafka tells an acks=0 producer
        if any(p.error_code for t in responses for p in t.partition_responses):
            raise CloseConnection("acks=0 produce request failed")
        return None
    response = ProduceResponse(responses=responses)
    if ctx.api_version >= 10:
        response.node_endpoints = _hinted_endpoints(ctx, responses)
    return response


def _leader_hints(ctx, responses) -> None:
    """KIP-951: where a partition's leadership moved, its current leader (kbroker.handlers.leader_hints)."""
    for topic in responses:
        for partition in topic.partition_responses:
            if partition.error_code in leader_hints.MOVED:
                hint = leader_hints.current_leader(ctx, topic.name, partition.index)
                if hint is not None:
                    partition.current_leader = ProduceResponse.LeaderIdAndEpoch(*hint)


def _hinted_endpoints(ctx, responses) -> list:
    leaders = {p.current_leader.leader_id for t in responses for p in t.partition_responses
               if p.current_leader.leader_id >= 0}
    return [ProduceResponse.NodeEndpoint(b.node_id, b.host, b.port, b.rack)
            for b in leader_hints.endpoints(ctx, leaders)] if leaders else []


HANDLERS = [Handler(ProduceRequest, 3, 13, handle_produce, advertised_min_version=0)]
