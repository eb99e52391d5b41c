"""Fetch (key 1): records out. Serves versions 4-18 (v13+ names topics by id; v18's per-partition
HighWatermark is what a follower knows, KIP-1166, and changes nothing for a consumer).

For each partition: find it in the partition layer (kbroker.partitions), read whole batches from the
fetch offset up to its high watermark (the first partition with data gets at least one batch even
when it exceeds the byte limits, KIP-74), and hand the segment bytes to the socket untouched
(sendfile; an in-memory log's bytes go as they are) — no record is ever decoded here.
If fewer than min_bytes are available the request waits up to max_wait_ms, woken by appends (an
event, not a sleep loop). Errors per partition: OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION /
UNKNOWN_TOPIC_ID, FENCED/UNKNOWN_LEADER_EPOCH, KAFKA_STORAGE_ERROR; an error answers at once.

A follower's fetch (replica id >= 0: the field before v15, ReplicaState from v15) reads up to the
leader's log end instead, and first tells the partition layer the follower's position (its fetch
offset), which moves the high watermark and the ISR (kbroker.partitions). A fetch from a consumer
to a follower is NOT_LEADER_OR_FOLLOWER.

Fetch sessions (KIP-227): the broker creates none. A request that opens a session (id 0) gets a
full, sessionless answer with session id 0, which every client accepts and keeps sending full
requests; a request naming a session id we never issued gets FETCH_SESSION_ID_NOT_FOUND.
Isolation: every answer reports the partition's last stable offset (LSO: the first offset of its
earliest open transaction, else the high watermark). read_committed (isolation_level 1) gets data only
below the LSO, plus the aborted transactions overlapping the returned range (from the segments'
.txnindex), which the consumer uses to drop those producers' batches; read_uncommitted gets null there.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from ..log import FileSlice
from ..partitions import Partition
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import FetchRequest, FetchResponse
from ..protocol.file_region import FileRegion
from . import leader_hints
from .registry import Handler

PartitionData = FetchResponse.PartitionData
READ_COMMITTED = 1
_TOPIC_IDS_FROM = 13
_LEADER_HINTS_FROM, _NODE_ENDPOINTS_FROM = 12, 16


@dataclass(slots=True)
class _Wanted:
    topic_response: FetchResponse.FetchableTopicResponse
    partition_response: PartitionData
    request: FetchRequest.FetchPartition
    partition: Partition | None


def _plan(ctx, request: FetchRequest) -> tuple[list[FetchResponse.FetchableTopicResponse], list[_Wanted]]:
    """Resolve every requested partition once; errors are filled in, readable ones returned."""
    by_id = ctx.api_version >= _TOPIC_IDS_FROM
    topics, wanted = [], []
    for fetch_topic in request.topics:
        topic_response = FetchResponse.FetchableTopicResponse(topic=fetch_topic.topic, topic_id=fetch_topic.topic_id)
        topics.append(topic_response)
        try:
            topic = ctx.partitions.find_topic(None if by_id else fetch_topic.topic, fetch_topic.topic_id)
            topic_error = None
        except ApiError as exc:
            topic, topic_error = None, exc.error_code
        for fetch_partition in fetch_topic.partitions:
            response = PartitionData(partition_index=fetch_partition.partition, high_watermark=-1,
                                     last_stable_offset=-1, log_start_offset=-1, records=b"",
                                     aborted_transactions=[] if request.isolation_level == READ_COMMITTED else None)
            topic_response.partitions.append(response)
            partition = None
            try:
                if topic_error is not None:
                    raise ApiError(topic_error)
                partition = ctx.partitions.partition(topic, fetch_partition.partition,
                                                     fetch_partition.current_leader_epoch)
            except ApiError as exc:
                response.error_code = exc.error_code
                response.aborted_transactions = []  # what Kafka puts in a partition it cannot serve
            wanted.append(_Wanted(topic_response, response, fetch_partition, partition))
    return topics, wanted


def _set_records(response: PartitionData, part) -> int:
    """The read's bytes into the response, untouched; their size."""
    if type(part) is FileSlice:  # a segment file's bytes: sent with sendfile
        response.records = FileRegion(*part)
        return part.length
    response.records = part  # an in-memory log's bytes
    return len(part)


def _read_all(wanted: list[_Wanted], max_bytes: int, read_committed: bool) -> tuple[int, bool]:
    """Fill each partition's records; returns (bytes read, any partition errored)."""
    total, errored = 0, False
    for item in wanted:
        response, partition = item.partition_response, item.partition
        if partition is None:
            errored = True
            continue
        limit = min(item.request.partition_max_bytes, max(max_bytes - total, 0))
        fetch_offset = item.request.fetch_offset
        try:
            result, response.last_stable_offset = partition.read(fetch_offset, limit, min_one_batch=total == 0,
                                                                 read_committed=read_committed)
        except ApiError as exc:  # OFFSET_OUT_OF_RANGE, a storage error: Kafka then reports no offsets
            response.error_code = exc.error_code
            errored = True
            continue
        response.high_watermark = result.high_watermark
        response.log_start_offset = result.log_start_offset
        if result.slices:
            total += _set_records(response, result.slices[0])
            if read_committed:
                response.aborted_transactions = [
                    FetchResponse.AbortedTransaction(producer_id=a.producer_id, first_offset=a.first_offset)
                    for a in partition.aborted_transactions(fetch_offset, result.next_offset)]
        else:
            response.records = b""
            if read_committed:
                response.aborted_transactions = []
    return total, errored


def _replica_id(ctx, request: FetchRequest) -> int:
    """The fetching follower's broker id (v15+ in ReplicaState), -1 for a consumer."""
    if ctx.api_version >= 15:
        return request.replica_state.replica_id if request.replica_state is not None else -1
    return request.replica_id


def _read_for_follower(wanted: list[_Wanted], max_bytes: int) -> tuple[int, bool]:
    """A follower's fetch: up to each leader's log end, not its high watermark."""
    total, errored = 0, False
    for item in wanted:
        response, partition = item.partition_response, item.partition
        if partition is None:
            errored = True
            continue
        limit = min(item.request.partition_max_bytes, max(max_bytes - total, 0))
        try:
            result = partition.read_for_follower(item.request.fetch_offset, limit)
        except ApiError as exc:
            response.error_code = exc.error_code
            errored = True
            continue
        response.high_watermark = result.high_watermark
        response.last_stable_offset = partition.last_stable_offset
        response.log_start_offset = result.log_start_offset
        response.records = b""
        if result.slices:
            total += _set_records(response, result.slices[0])
    return total, errored


def _note_follower_positions(wanted: list[_Wanted], replica_id: int) -> None:
    """The follower has every record before its fetch offset: the leader's HW and ISR follow."""
    for item in wanted:
        if item.partition is None:
            continue
        try:
            item.partition.follower_fetch(replica_id, item.request.fetch_offset)
        except ApiError as exc:
            item.partition_response.error_code = exc.error_code
            item.partition = None


async def handle_fetch(ctx, request: FetchRequest) -> FetchResponse:
    if request.session_id != 0:
        return FetchResponse(error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND, session_id=0)
    topics, wanted = _plan(ctx, request)
    replica_id = _replica_id(ctx, request)
    if replica_id >= 0:
        _note_follower_positions(wanted, replica_id)
    deadline = trio.current_time() + max(request.max_wait_ms, 0) / 1000
    max_bytes = request.max_bytes if ctx.api_version >= 3 else 0x7FFFFFFF
    while True:
        if replica_id >= 0:
            total, errored = _read_for_follower(wanted, max_bytes)
        else:
            total, errored = _read_all(wanted, max_bytes, request.isolation_level == READ_COMMITTED)
        if errored or total >= request.min_bytes or trio.current_time() >= deadline:
            break
        await ctx.appends.wait_until(deadline)
    response = FetchResponse(error_code=ErrorCode.NONE, session_id=0, responses=topics)
    if ctx.api_version >= _LEADER_HINTS_FROM:
        _leader_hints(ctx, topics, response)
    return response


def _leader_hints(ctx, topics, response: FetchResponse) -> None:
    """KIP-951: where a partition's leadership moved, its current leader, and from v16 its endpoint."""
    leaders = set()
    for topic in topics:
        name = topic.topic
        if not name and topic.topic_id is not None:  # v13+: named by id
            found = ctx.metadata.get_by_id(topic.topic_id)
            name = found.name if found is not None else None
        for partition in topic.partitions:
            if name and partition.error_code in leader_hints.MOVED:
                hint = leader_hints.current_leader(ctx, name, partition.partition_index)
                if hint is not None:
                    partition.current_leader = FetchResponse.LeaderIdAndEpoch(*hint)
                    leaders.add(hint[0])
    if leaders and ctx.api_version >= _NODE_ENDPOINTS_FROM:
        response.node_endpoints = [FetchResponse.NodeEndpoint(b.node_id, b.host, b.port, b.rack)
                                   for b in leader_hints.endpoints(ctx, leaders)]


HANDLERS = [Handler(FetchRequest, 4, 18, handle_fetch)]
