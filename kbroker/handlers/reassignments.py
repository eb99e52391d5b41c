"""Partition reassignments: ListPartitionReassignments (key 46) v0 lists none (there never is one on
one broker). AlterPartitionReassignments (key 45) v0-1: a replica list of exactly this broker is
accepted (it is already so), a null list (cancel) is NO_REASSIGNMENT_IN_PROGRESS, other brokers are
INVALID_REPLICA_ASSIGNMENT, checked as CreateTopics checks a manual assignment. v1's
AllowReplicationFactorChange (KIP-860) is echoed; one broker's accepted list never changes the factor."""

from __future__ import annotations

from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
                                 ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse)
from .registry import Handler
from .topic_rules import check_manual_assignment


async def handle_list_partition_reassignments(ctx, request: ListPartitionReassignmentsRequest):
    return ListPartitionReassignmentsResponse(error_code=ErrorCode.NONE, error_message=None, topics=[])


async def handle_alter_partition_reassignments(ctx, request: AlterPartitionReassignmentsRequest):
    TopicResponse = AlterPartitionReassignmentsResponse.ReassignableTopicResponse
    PartitionResponse = AlterPartitionReassignmentsResponse.ReassignablePartitionResponse
    responses = []
    for wanted in request.topics:
        topic = ctx.metadata.get(wanted.name)
        partitions = []
        for p in wanted.partitions:
            code, message = ErrorCode.NONE, None
            if topic is None:
                code, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {wanted.name}."
            elif not 0 <= p.partition_index < topic.partitions:
                code, message = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                 f"Unable to find partition {wanted.name}:{p.partition_index}.")
            elif p.replicas is None:
                code = ErrorCode.NO_REASSIGNMENT_IN_PROGRESS
            else:
                try:
                    check_manual_assignment(ctx, p.replicas, None)
                except ApiError as exc:
                    code, message = exc.error_code, exc.message
            partitions.append(PartitionResponse(partition_index=p.partition_index, error_code=code,
                                                error_message=message))
        responses.append(TopicResponse(name=wanted.name, partitions=partitions))
    return AlterPartitionReassignmentsResponse(
        error_code=ErrorCode.NONE, error_message=None, responses=responses,
        allow_replication_factor_change=request.allow_replication_factor_change)


HANDLERS = [
    Handler(AlterPartitionReassignmentsRequest, 0, 1, handle_alter_partition_reassignments),
    Handler(ListPartitionReassignmentsRequest, 0, 0, handle_list_partition_reassignments),
]
