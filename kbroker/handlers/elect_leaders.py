"""ElectLeaders (key 43) v0-2: make partitions' leaders the preferred replicas (type 0) or, for
partitions no in-sync replica can lead, any live replica (type 1, unclean), as kafka-leader-election
asks. A broker alone is every partition's only replica: ELECTION_NOT_NEEDED. In a cluster the
controller carries the election out (kbroker.coordination.controller) and the answer comes once the
new leaders are seen: NONE, ELECTION_NOT_NEEDED (already the preferred leader, or an unclean election
of a partition that has a leader), PREFERRED_LEADER_NOT_AVAILABLE (the preferred replica is not alive
and in sync), ELIGIBLE_LEADERS_NOT_AVAILABLE (no live replica). A null partition list means every
partition, and only those whose election was needed are listed."""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import ElectLeadersRequest, ElectLeadersResponse
from .registry import Handler


async def handle_elect_leaders(ctx, request: ElectLeadersRequest) -> ElectLeadersResponse:
    Result = ElectLeadersResponse.ReplicaElectionResult
    PartitionResult = ElectLeadersResponse.PartitionResult
    election_type = request.election_type if ctx.api_version >= 1 else 0
    if election_type not in (0, 1):
        return ElectLeadersResponse(error_code=ErrorCode.INVALID_REQUEST, replica_election_results=[])
    every = request.topic_partitions is None
    wanted: list[tuple[str, int]] = []
    unknown: dict[tuple[str, int], str] = {}
    if every:
        wanted = [(t.name, i) for t in ctx.metadata.topics() for i in range(t.partitions)]
    else:
        for asked in request.topic_partitions:
            topic = ctx.metadata.get(asked.topic)
            for index in asked.partitions:
                if topic is None:
                    unknown[(asked.topic, index)] = f"No such topic as {asked.topic}"
                elif not 0 <= index < topic.partitions:
                    unknown[(asked.topic, index)] = f"No such partition as {asked.topic}-{index}"
                else:
                    wanted.append((asked.topic, index))
    answers = await ctx.cluster.elect_leaders(election_type, wanted)
    by_topic: dict[str, list] = {}
    if every:  # each topic listed, with only the partitions whose election was needed
        for topic in ctx.metadata.topics():
            by_topic.setdefault(topic.name, [])
    for (name, index), (code, message) in answers.items():
        if every and code == ErrorCode.ELECTION_NOT_NEEDED:
            continue
        by_topic.setdefault(name, []).append(PartitionResult(index, code, message))
    for (name, index), message in unknown.items():
        by_topic.setdefault(name, []).append(PartitionResult(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message))
    if not every:  # in the order asked
        order = [(a.topic, i) for a in request.topic_partitions for i in a.partitions]
        for name, results in by_topic.items():
            results.sort(key=lambda r: order.index((name, r.partition_id)))
    return ElectLeadersResponse(error_code=ErrorCode.NONE, replica_election_results=[
        Result(topic=name, partition_result=results) for name, results in by_topic.items()])


HANDLERS = [
    Handler(ElectLeadersRequest, 0, 2, handle_elect_leaders),
]
