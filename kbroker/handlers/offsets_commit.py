"""Committed offsets of consumer groups: OffsetCommit (8) 2-9, OffsetFetch (9) 1-9, OffsetDelete (47) 0.

Offsets live in the group coordinator's offset store (kbroker.groups.offsets), persisted in
`__consumer_offsets`; the group decides who may commit (kbroker.groups.classic_protocol, and for a
KIP-848 consumer group kbroker.groups.consumer_protocol: OffsetCommit v9+ carries the member epoch
in GenerationIdOrMemberEpoch, STALE_MEMBER_EPOCH when it is not the member's current one; OffsetFetch
v9+ names the member and its epoch likewise).
OffsetFetch v8+ asks for several groups at once; a null topic list means every committed offset of
the group. require_stable (v7+): a partition whose transactional offset commit (TxnOffsetCommit) still
waits for its transaction's marker answers UNSTABLE_OFFSET_COMMIT, and the consumer retries.
"""

from __future__ import annotations

from ..protocol.errors import ApiError
from ..protocol.messages import (OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
                                 OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse)
from .registry import Handler


async def handle_offset_commit(ctx, request: OffsetCommitRequest) -> OffsetCommitResponse:
    version = ctx.api_version
    try:
        await ctx.groups.ensure_offsets_topic()  # a client may commit without FindCoordinator
    except ApiError as exc:  # __consumer_offsets cannot be created (a full disk): every partition is told
        return OffsetCommitResponse(topics=[
            OffsetCommitResponse.OffsetCommitResponseTopic(name=t.name, partitions=[
                OffsetCommitResponse.OffsetCommitResponsePartition(partition_index=p.partition_index,
                                                                   error_code=exc.error_code)
                for p in t.partitions]) for t in request.topics])
    topics = [(t.name, [(p.partition_index, p.committed_offset, p.committed_leader_epoch if version >= 6 else -1,
                         p.committed_metadata) for p in t.partitions]) for t in request.topics]
    results = ctx.groups.commit_offsets(
        group_id=request.group_id, generation_id=request.generation_id_or_member_epoch,
        member_id=request.member_id, group_instance_id=request.group_instance_id if version >= 7 else None,
        retention_time_ms=request.retention_time_ms if 2 <= version <= 4 else -1, topics=topics,
        api_version=version)
    return OffsetCommitResponse(topics=[
        OffsetCommitResponse.OffsetCommitResponseTopic(name=name, partitions=[
            OffsetCommitResponse.OffsetCommitResponsePartition(partition_index=p, error_code=e) for p, e in parts])
        for name, parts in results])


async def handle_offset_fetch(ctx, request: OffsetFetchRequest) -> OffsetFetchResponse:
    coordinator = ctx.groups
    version = ctx.api_version
    stable = version >= 7 and bool(request.require_stable)
    if version >= 8:
        groups = []
        for g in request.groups:
            wanted = None if g.topics is None else [(t.name, list(t.partition_indexes)) for t in g.topics]
            error, topics = coordinator.fetch_offsets(g.group_id, wanted, stable,
                                                      member_id=g.member_id if version >= 9 else None,
                                                      member_epoch=g.member_epoch if version >= 9 else -1)
            groups.append(OffsetFetchResponse.OffsetFetchResponseGroup(group_id=g.group_id, error_code=error, topics=[
                OffsetFetchResponse.OffsetFetchResponseTopics(name=name, partitions=[
                    OffsetFetchResponse.OffsetFetchResponsePartitions(
                        partition_index=p, committed_offset=o, committed_leader_epoch=le, metadata=md, error_code=e)
                    for p, o, le, md, e in parts])
                for name, parts in topics]))
        return OffsetFetchResponse(groups=groups)
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
    Handler(OffsetCommitRequest, 2, 9, handle_offset_commit),
    Handler(OffsetFetchRequest, 1, 9, handle_offset_fetch),
    Handler(OffsetDeleteRequest, 0, 0, handle_offset_delete),
]
