"""Committed offsets of consumer groups: OffsetCommit (8) 2-10, OffsetFetch (9) 1-10, OffsetDelete (47) 0.

Offsets live in the group coordinator's offset store (kbroker.groups.offsets), persisted in
`__consumer_offsets`; the group decides who may commit (kbroker.groups.classic_protocol, and for a
KIP-848 consumer group kbroker.groups.consumer_protocol: OffsetCommit v9+ carries the member epoch
in GenerationIdOrMemberEpoch, STALE_MEMBER_EPOCH when it is not the member's current one; OffsetFetch
v9+ names the member and its epoch likewise).
OffsetFetch v8+ asks for several groups at once; a null topic list means every committed offset of
the group. require_stable (v7+): a partition whose transactional offset commit (TxnOffsetCommit) still
waits for its transaction's marker answers UNSTABLE_OFFSET_COMMIT, and the consumer retries.
OffsetCommit v10 and OffsetFetch v10 name topics by id (kbroker.handlers.topic_ids): an unknown id is
UNKNOWN_TOPIC_ID per partition (OffsetCommit answers those topics first, as Kafka does); every
committed offset (a null list) lists only topics that exist.
"""

from __future__ import annotations

from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
                                 OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse)
from ..protocol.primitives import ZERO_UUID
from .registry import Handler
from .topic_ids import id_of, name_of

_TOPIC_IDS_FROM = 10


def _commit_response(topics: list, error: int) -> OffsetCommitResponse:
    return OffsetCommitResponse(topics=[
        OffsetCommitResponse.OffsetCommitResponseTopic(name=t.name, topic_id=t.topic_id, partitions=[
            OffsetCommitResponse.OffsetCommitResponsePartition(partition_index=p.partition_index, error_code=error)
            for p in t.partitions]) for t in topics])


async def handle_offset_commit(ctx, request: OffsetCommitRequest) -> OffsetCommitResponse:
    version = ctx.api_version
    try:
        await ctx.groups.ensure_offsets_topic()  # a client may commit without FindCoordinator
    except ApiError as exc:  # __consumer_offsets cannot be created (a full disk): every partition is told
        return _commit_response(request.topics, exc.error_code)
    by_id = version >= _TOPIC_IDS_FROM
    named = [(name_of(ctx, t.name, t.topic_id, by_id), t) for t in request.topics]
    unknown = [t for name, t in named if name is None]
    topics = [(name, [(p.partition_index, p.committed_offset, p.committed_leader_epoch if version >= 6 else -1,
                       p.committed_metadata) for p in t.partitions]) for name, t in named if name is not None]
    results = ctx.groups.commit_offsets(
        group_id=request.group_id, generation_id=request.generation_id_or_member_epoch,
        member_id=request.member_id, group_instance_id=request.group_instance_id if version >= 7 else None,
        retention_time_ms=request.retention_time_ms if 2 <= version <= 4 else -1, topics=topics,
        api_version=version) if topics or not unknown else []
    response = _commit_response(unknown, ErrorCode.UNKNOWN_TOPIC_ID)  # listed first, as Kafka does
    response.topics += [
        OffsetCommitResponse.OffsetCommitResponseTopic(
            name=name, topic_id=id_of(ctx, name) if by_id else ZERO_UUID, partitions=[
                OffsetCommitResponse.OffsetCommitResponsePartition(partition_index=p, error_code=e)
                for p, e in parts])
        for name, parts in results]
    return response


def _fetch_group(ctx, group: OffsetFetchRequest.OffsetFetchRequestGroup, stable: bool, by_id: bool):
    """One group of an OffsetFetch v8+ (v9+ names the member and its epoch, KIP-848)."""
    version = ctx.api_version
    Partition = OffsetFetchResponse.OffsetFetchResponsePartitions
    Topic = OffsetFetchResponse.OffsetFetchResponseTopics
    unknown = []
    if group.topics is None:
        wanted = None
    else:
        named = [(name_of(ctx, t.name, t.topic_id, by_id), t) for t in group.topics]
        wanted = [(name, list(t.partition_indexes)) for name, t in named if name is not None]
        unknown = [Topic(topic_id=t.topic_id, partitions=[
            Partition(partition_index=p, committed_offset=-1, committed_leader_epoch=-1, metadata="",
                      error_code=ErrorCode.UNKNOWN_TOPIC_ID) for p in t.partition_indexes])
            for name, t in named if name is None]
    error, topics = ctx.groups.fetch_offsets(group.group_id, wanted, stable,
                                             member_id=group.member_id if version >= 9 else None,
                                             member_epoch=group.member_epoch if version >= 9 else -1)
    found = [Topic(name=name, topic_id=id_of(ctx, name) if by_id else ZERO_UUID, partitions=[
        Partition(partition_index=p, committed_offset=o, committed_leader_epoch=le, metadata=md, error_code=e)
        for p, o, le, md, e in parts]) for name, parts in topics]
    if by_id:  # a committed offset of a topic that is gone has no id to be named by
        found = [t for t in found if t.topic_id != ZERO_UUID]
    return OffsetFetchResponse.OffsetFetchResponseGroup(group_id=group.group_id, error_code=error,
                                                        topics=found + unknown)


async def handle_offset_fetch(ctx, request: OffsetFetchRequest) -> OffsetFetchResponse:
    coordinator = ctx.groups
    version = ctx.api_version
    stable = version >= 7 and bool(request.require_stable)
    if version >= 8:
        by_id = version >= _TOPIC_IDS_FROM
        return OffsetFetchResponse(groups=[_fetch_group(ctx, g, stable, by_id) for g in request.groups])
    wanted = None if request.topics is None else [(t.name, list(t.partition_indexes)) for t in request.topics]
    error, topics = coordinator.fetch_offsets(request.group_id, wanted, stable)
    return OffsetFetchResponse(error_code=error, topics=[
        OffsetFetchResponse.OffsetFetchResponseTopic(name=name, partitions=[
            OffsetFetchResponse.OffsetFetchResponsePartition(
                partition_index=p, committed_offset=o, committed_leader_epoch=le, metadata=md,
                error_code=e if e or version >= 2 else error)
            for p, o, le, md, e in parts])
        for name, parts in topics])


async def handle_offset_delete(ctx, request: OffsetDeleteRequest) -> OffsetDeleteResponse:
    wanted = [(t.name, [p.partition_index for p in t.partitions]) for t in request.topics]
    error, topics = ctx.groups.delete_offsets(request.group_id, wanted)
    return OffsetDeleteResponse(error_code=error, topics=[
        OffsetDeleteResponse.OffsetDeleteResponseTopic(name=name, partitions=[
            OffsetDeleteResponse.OffsetDeleteResponsePartition(partition_index=p, error_code=e) for p, e in parts])
        for name, parts in topics])


HANDLERS = [
    Handler(OffsetCommitRequest, 2, 10, handle_offset_commit),
    Handler(OffsetFetchRequest, 1, 10, handle_offset_fetch),
    Handler(OffsetDeleteRequest, 0, 0, handle_offset_delete),
]
