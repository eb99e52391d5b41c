"""Offset lookups: ListOffsets (key 2) versions 1-11 and OffsetForLeaderEpoch (key 23) versions 2-4.

ListOffsets answers, per partition, for a timestamp: -1 latest (the high watermark, or the last
stable offset for read_committed), -2 earliest (log start), -3 the record with the largest timestamp
(v7+), -4 earliest local (v8+), -5 latest tiered (v9+), -6 earliest pending upload (v11+, KIP-1023; none here: no tiered storage), or else the first offset whose
timestamp is >= the one asked (found through the time index); nothing found is offset -1.
OffsetForLeaderEpoch tells a consumer validating its position, or a follower finding where its log
diverges from the leader's (KIP-101), where a leader epoch ended; only the leader answers.
Both read through the partition layer (kbroker.partitions), which checks the current leader epoch.
"""

from __future__ import annotations

from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
                                 OffsetForLeaderEpochResponse)
from .registry import Handler

# the special timestamps and the first version that may ask for them
_MIN_VERSION_FOR = {-3: 7, -4: 8, -5: 9, -6: 11}


def _list_partition(ctx, topic, wanted: ListOffsetsRequest.ListOffsetsPartition, read_committed: bool = False):
    response = ListOffsetsResponse.ListOffsetsPartitionResponse(partition_index=wanted.partition_index)
    try:
        if topic is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        partition = ctx.partitions.partition(topic, wanted.partition_index, wanted.current_leader_epoch)
        if ctx.api_version < _MIN_VERSION_FOR.get(wanted.timestamp, 0):
            raise ApiError(ErrorCode.UNSUPPORTED_VERSION)
        found = partition.list_offsets(wanted.timestamp, read_committed)
    except ApiError as exc:
        response.error_code = exc.error_code
        return response
    response.timestamp, response.offset, response.leader_epoch = found
    return response


async def handle_list_offsets(ctx, request: ListOffsetsRequest) -> ListOffsetsResponse:
    topics = []
    read_committed = ctx.api_version >= 2 and request.isolation_level == 1
    for wanted_topic in request.topics:
        topic = ctx.metadata.get(wanted_topic.name)
        topics.append(ListOffsetsResponse.ListOffsetsTopicResponse(
            name=wanted_topic.name,
            partitions=[_list_partition(ctx, topic, p, read_committed) for p in wanted_topic.partitions]))
    return ListOffsetsResponse(topics=topics)


def _epoch_end(ctx, topic_name: str, wanted: OffsetForLeaderEpochRequest.OffsetForLeaderPartition):
    result = OffsetForLeaderEpochResponse.EpochEndOffset(partition=wanted.partition)
    try:
        topic = ctx.partitions.find_topic(topic_name)
        partition = ctx.partitions.partition(topic, wanted.partition, wanted.current_leader_epoch)
        partition.check_leader()  # followers ask the leader where their epoch ended (KIP-101)
    except ApiError as exc:
        result.error_code = exc.error_code
        return result
    result.leader_epoch, result.end_offset = partition.end_offset_for_epoch(wanted.leader_epoch)
    return result


async def handle_offset_for_leader_epoch(ctx, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse:
    return OffsetForLeaderEpochResponse(topics=[
        OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(
            topic=t.topic, partitions=[_epoch_end(ctx, t.topic, p) for p in t.partitions])
        for t in request.topics])


HANDLERS = [
    Handler(ListOffsetsRequest, 1, 11, handle_list_offsets),
    Handler(OffsetForLeaderEpochRequest, 2, 4, handle_offset_for_leader_epoch),
]
