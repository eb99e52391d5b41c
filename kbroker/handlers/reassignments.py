"""Partition reassignments, as kafka-reassign-partitions asks them: AlterPartitionReassignments (key
45) v0-1 and ListPartitionReassignments (key 46) v0.

Altering checks what any broker can -- the topic and partition exist, a replica list names
registered brokers once each (INVALID_REPLICA_ASSIGNMENT, as CreateTopics checks a manual
assignment) -- and hands the rest to the cluster (``ctx.cluster``): in a cluster the reassignment is
recorded for the controller, which moves the replicas (kbroker.replication.reassignments); the
answer comes once it is recorded, not once it completes, as Kafka's does. A null replica list
cancels one in progress (NO_REASSIGNMENT_IN_PROGRESS when there is none). v1's
AllowReplicationFactorChange (KIP-860) false refuses a target of another size
(INVALID_REPLICATION_FACTOR) and is echoed. A broker alone accepts a list of itself (it is already
so) and never has one in progress.

Listing: every partition being reassigned (null topics), or those asked that are, with its replicas
(the target's, then those being removed) and the replicas being added and removed."""

from __future__ import annotations

from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
                                 ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse)
from .registry import Handler
from .topic_rules import check_manual_assignment


async def handle_list_partition_reassignments(ctx, request: ListPartitionReassignmentsRequest):
    Topic = ListPartitionReassignmentsResponse.OngoingTopicReassignment
    Ongoing = ListPartitionReassignmentsResponse.OngoingPartitionReassignment
    ongoing = ctx.cluster.reassignments()
    if request.topics is not None:
        asked = {(t.name, p) for t in request.topics for p in t.partition_indexes}
        ongoing = {tp: r for tp, r in ongoing.items() if tp in asked}
    by_topic: dict[str, list] = {}
    for (name, partition), r in ongoing.items():
        by_topic.setdefault(name, []).append(Ongoing(partition_index=partition, replicas=list(r.replicas),
                                                     adding_replicas=list(r.adding),
                                                     removing_replicas=list(r.removing)))
    return ListPartitionReassignmentsResponse(error_code=ErrorCode.NONE, error_message=None, topics=[
        Topic(name=name, partitions=partitions) for name, partitions in by_topic.items()])


async def handle_alter_partition_reassignments(ctx, request: AlterPartitionReassignmentsRequest):
    TopicResponse = AlterPartitionReassignmentsResponse.ReassignableTopicResponse
    PartitionResponse = AlterPartitionReassignmentsResponse.ReassignablePartitionResponse
    allow_factor_change = request.allow_replication_factor_change if ctx.api_version >= 1 else True
    answers: dict[tuple[str, int], tuple[int, str | None]] = {}
    changes: dict[tuple[str, int], list[int] | None] = {}
    for wanted in request.topics:
        topic = ctx.metadata.get(wanted.name)
        for p in wanted.partitions:
            key = (wanted.name, p.partition_index)
            if topic is None:
                answers[key] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {wanted.name}."
            elif not 0 <= p.partition_index < topic.partitions:
                answers[key] = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                f"Unable to find partition {wanted.name}:{p.partition_index}.")
            else:
                try:
                    if p.replicas is not None:
                        check_manual_assignment(ctx, p.replicas, None)
                    changes[key] = None if p.replicas is None else list(p.replicas)
                except ApiError as exc:
                    answers[key] = exc.error_code, exc.message
    if changes:
        answers.update(await ctx.cluster.alter_reassignments(changes, allow_factor_change))
    return AlterPartitionReassignmentsResponse(
        error_code=ErrorCode.NONE, error_message=None, allow_replication_factor_change=allow_factor_change,
        responses=[TopicResponse(name=wanted.name, partitions=[
            PartitionResponse(partition_index=p.partition_index, error_code=answers[(wanted.name, p.partition_index)][0],
                              error_message=answers[(wanted.name, p.partition_index)][1])
            for p in wanted.partitions]) for wanted in request.topics])


HANDLERS = [
    Handler(AlterPartitionReassignmentsRequest, 0, 1, handle_alter_partition_reassignments),
    Handler(ListPartitionReassignmentsRequest, 0, 0, handle_list_partition_reassignments),
]
