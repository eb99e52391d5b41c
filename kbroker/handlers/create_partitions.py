"""CreatePartitions (key 37) v0-3: more partitions for existing topics.

What Kafka 4 (KRaft, one broker that is also the controller) does, and so what is done here:

CreatePartitions: more than 10,000 additional partitions over the request's existing topics is
POLICY_VIOLATION for each of them ("Excessively large number of additional partitions per request.");
only increases (INVALID_PARTITIONS with Kafka's messages), optional manual
assignments (INVALID_REPLICA_ASSIGNMENT), validate_only. An increase of the same topic in flight is
waited for before checking (as Kafka's controller applies them in turn); so is DeleteTopics.
"""

from __future__ import annotations

from ..metadata import Topic
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import CreatePartitionsRequest, CreatePartitionsResponse
from .registry import Handler
from .topic_rules import MAX_RECORDS_PER_USER_OP, check_manual_assignment

def _check_new_partitions(ctx, wanted: CreatePartitionsRequest.CreatePartitionsTopic) -> Topic:
    topic = ctx.metadata.get(wanted.name)
    if topic is None:
        raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    if wanted.count == topic.partitions:
        raise ApiError(ErrorCode.INVALID_PARTITIONS, f"Topic already has {topic.partitions} partition(s).")
    if wanted.count < topic.partitions:
        raise ApiError(ErrorCode.INVALID_PARTITIONS,
                       f"The topic {topic.name} currently has {topic.partitions} partition(s); "
                       f"{wanted.count} would not be an increase.")
    additional = wanted.count - topic.partitions
    if wanted.assignments is not None:
        if len(wanted.assignments) != additional:
            raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                           f"Attempted to add {additional} additional partition(s), but only "
                           f"{len(wanted.assignments)} assignment(s) were specified.")
        for assignment in wanted.assignments:
            check_manual_assignment(ctx, assignment.broker_ids, topic.replication_factor)
    return topic


async def handle_create_partitions(ctx, request: CreatePartitionsRequest) -> CreatePartitionsResponse:
    Result = CreatePartitionsResponse.CreatePartitionsTopicResult
    names = [t.name for t in request.topics]
    duplicates = {n for n in names if names.count(n) > 1}
    results = []
    new_partitions = sum(max(w.count - t.partitions, 0) for w in request.topics if w.name not in duplicates
                         and (t := ctx.metadata.get(w.name)) is not None)
    too_large = new_partitions > MAX_RECORDS_PER_USER_OP
    for wanted in request.topics:
        if wanted.name in duplicates:
            continue
        if too_large:
            results.append(Result(name=wanted.name, error_code=ErrorCode.POLICY_VIOLATION,
                                  error_message="Excessively large number of additional partitions per request."))
            continue
        await ctx.topics.topic_settled(wanted.name)  # an increase in flight first; no checkpoint after it
        try:
            topic = _check_new_partitions(ctx, wanted)
        except ApiError as exc:
            results.append(Result(name=wanted.name, error_code=exc.error_code, error_message=exc.message))
            continue
        if not request.validate_only:
            try:
                await ctx.topics.add_partitions(topic.name, wanted.count)
            except ApiError as exc:  # the disk refused
                results.append(Result(name=wanted.name, error_code=exc.error_code, error_message=exc.message))
                continue
        results.append(Result(name=wanted.name, error_code=ErrorCode.NONE, error_message=None))
    for name in dict.fromkeys(n for n in names if n in duplicates):
        results.append(Result(name=name, error_code=ErrorCode.INVALID_REQUEST, error_message="Duplicate topic name."))
    return CreatePartitionsResponse(results=results)


HANDLERS = [Handler(CreatePartitionsRequest, 0, 3, handle_create_partitions)]
