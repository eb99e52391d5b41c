"""ElectLeaders (key 43) v0-2: on one broker the only replica is always the leader, so every named
partition is ELECTION_NOT_NEEDED; a null partition list (all partitions) lists each topic with no
results."""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import ElectLeadersRequest, ElectLeadersResponse
from .registry import Handler


async def handle_elect_leaders(ctx, request: ElectLeadersRequest) -> ElectLeadersResponse:
    Result = ElectLeadersResponse.ReplicaElectionResult
    PartitionResult = ElectLeadersResponse.PartitionResult
    if ctx.api_version >= 1 and request.election_type not in (0, 1):
        return ElectLeadersResponse(error_code=ErrorCode.INVALID_REQUEST, replica_election_results=[])
    if request.topic_partitions is None:
        # all partitions: only those whose election was needed are listed, and none is
        return ElectLeadersResponse(error_code=ErrorCode.NONE, replica_election_results=[
            Result(topic=t.name, partition_result=[]) for t in ctx.metadata.topics()])
    results = []
    for wanted in request.topic_partitions:
        topic = ctx.metadata.get(wanted.topic)
        partitions = []
        for index in wanted.partitions:
            if topic is None:
                partitions.append(PartitionResult(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                  f"No such topic as {wanted.topic}"))
            elif not 0 <= index < topic.partitions:
                partitions.append(PartitionResult(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                  f"No such partition as {wanted.topic}-{index}"))
            else:
                partitions.append(PartitionResult(index, ErrorCode.ELECTION_NOT_NEEDED,
                                                  "Leader election not needed for topic partition."))
        results.append(Result(topic=wanted.topic, partition_result=partitions))
    return ElectLeadersResponse(error_code=ErrorCode.NONE, replica_election_results=results)


HANDLERS = [
    Handler(ElectLeadersRequest, 0, 2, handle_elect_leaders),
]
