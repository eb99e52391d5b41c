"""Topic administration: CreateTopics (key 19) v2-7, DeleteTopics (key 20) v1-6, CreatePartitions
(key 37) v0-3.

What Kafka 4 (KRaft, one broker that is also the controller) does, and so what is done here:

CreateTopics
- a name given twice in one request: INVALID_REQUEST "Duplicate topic name." (those results come after
  the others); `__cluster_metadata` cannot be created (INVALID_REQUEST);
- Kafka's controller bounds one operation, and a request over the bounds fails whole, POLICY_VIOLATION for
  every topic of the request: more than 10,000 partitions asked for in all ("Excessively large number
  of partitions per request.", counted before any other check), or more than 10,000 metadata records
  for the topics that can be created, one per topic, partition and config ("Unable to perform
  excessively large batch operation."); validate_only too;
- then per topic, in this order: an illegal name (INVALID_TOPIC_EXCEPTION, the controller's wording),
  a name that exists (TOPIC_ALREADY_EXISTS), a name colliding with an existing one when '.' and '_' are
  unified (INVALID_TOPIC_EXCEPTION), null config values and then the configs themselves
  (INVALID_CONFIG, Kafka's message), then partitions/replication factor: -1 means the broker's
  num.partitions / default.replication.factor; 0 or below -1 is INVALID_REPLICATION_FACTOR /
  INVALID_PARTITIONS; a factor above the number of brokers (1) is INVALID_REPLICATION_FACTOR; manual
  assignments need both counts at -1 and are checked like the controller checks them;
- success carries the topic id (v7), and from v5 the partition count, replication factor and every
  effective config with its source; validate_only answers the same without creating anything;
- the answer comes once the topic's files are durable; the event loop serves other connections
  meanwhile, and a topic being created is taken: TOPIC_ALREADY_EXISTS for it, as in Kafka, and
  collisions are checked against it (kbroker.broker).

DeleteTopics: by name (v1-5, and v6 entries without an id) or by id (v6). Unknown name:
UNKNOWN_TOPIC_OR_PARTITION, unknown id: UNKNOWN_TOPIC_ID, both or neither given, or duplicates:
INVALID_REQUEST; delete.topic.enable=false: INVALID_REQUEST before v3, TOPIC_DELETION_DISABLED from v3
(for every topic). Logs are removed at once; the broker tells its topic-deletion listeners (the group
coordinator drops the topic's committed offsets there).

CreatePartitions: more than 10,000 additional partitions over the request's existing topics is
POLICY_VIOLATION for each of them ("Excessively large number of additional partitions per request.");
only increases (INVALID_PARTITIONS with Kafka's messages), optional manual
assignments (INVALID_REPLICA_ASSIGNMENT), validate_only. An increase of the same topic in flight is
waited for before checking (as Kafka's controller applies them in turn); so is DeleteTopics.
"""

from __future__ import annotations

import uuid

from ..config import describe_topic_configs, validate_topic_configs
from ..metadata import Topic, validate_topic_name
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
                                 CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse)
from ..protocol.primitives import ZERO_UUID
from .registry import Handler

CLUSTER_METADATA_TOPIC = "__cluster_metadata"
# Kafka's controller writes at most this many records for one request (a topic, each of its partitions
# and configs are one record each); a larger request fails whole with POLICY_VIOLATION
MAX_RECORDS_PER_USER_OP = 10_000

# Kafka's default messages for errors answered without a specific one
UNKNOWN_TOPIC_MESSAGE = "This server does not host this topic-partition."
UNKNOWN_TOPIC_ID_MESSAGE = "This server does not host this topic ID."


def colliding_topic(ctx, name: str) -> str | None:
    """An existing topic that differs from `name` only by '.' versus '_' (Kafka forbids both)."""
    if "." not in name and "_" not in name:
        return None
    unified = name.replace(".", "_")
    for other in ctx.metadata.names():  # topics being created included
        if other != name and other.replace(".", "_") == unified:
            return other
    return None


def _register_brokers(ctx) -> set[int]:
    return {ctx.node.node_id}


def check_manual_assignment(ctx, replicas: list[int], replication_factor: int | None) -> None:
    """Kafka's checks of one partition's manual replica list."""
    if not replicas:
        raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         "The manual partition assignment includes an empty replica list.")
    previous = None
    for broker_id in sorted(replicas):
        if broker_id not in _register_brokers(ctx):
            raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"The manual partition assignment includes broker {broker_id}, but no such "
                             "broker is registered.")
        if broker_id == previous:
            raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"The manual partition assignment includes the broker {broker_id} more than once.")
        previous = broker_id
    if replication_factor is not None and len(replicas) != replication_factor:
        raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"The manual partition assignment includes a partition with {len(replicas)} "
                         "replica(s), but this is not consistent with previous partitions, which have "
                         f"{replication_factor} replica(s).")


# ---------------------------------------------------------------------------------- CreateTopics

def _plan_topic(ctx, topic: CreateTopicsRequest.CreatableTopic) -> tuple[int, int, dict[str, str]]:
    """(partitions, replication factor, configs) for a topic that may be created, or ApiError."""
    message = validate_topic_name(topic.name)
    if message is not None:
        raise ApiError(ErrorCode.INVALID_TOPIC_EXCEPTION, message)
    if topic.name in ctx.metadata.names():  # being created counts: Kafka answers the same
        raise ApiError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{topic.name}' already exists.")
    other = colliding_topic(ctx, topic.name)
    if other is not None:
        raise ApiError(ErrorCode.INVALID_TOPIC_EXCEPTION,
                         f"Topic '{topic.name}' collides with existing topic: {other}")
    nulls = [c.name for c in topic.configs if c.value is None]
    if nulls:
        raise ApiError(ErrorCode.INVALID_CONFIG, "Null value not supported for topic configs: " + ",".join(nulls))
    configs = {c.name: c.value for c in topic.configs}
    message = validate_topic_configs(configs, ctx.config) if configs else None
    if message is not None:
        raise ApiError(ErrorCode.INVALID_CONFIG, message)
    brokers = len(_register_brokers(ctx))
    if topic.assignments:
        if topic.replication_factor != -1:
            raise ApiError(ErrorCode.INVALID_REQUEST, "A manual partition assignment was specified, but "
                                                        "replication factor was not set to -1.")
        if topic.num_partitions != -1:
            raise ApiError(ErrorCode.INVALID_REQUEST, "A manual partition assignment was specified, but "
                                                        "numPartitions was not set to -1.")
        seen: set[int] = set()
        replication_factor = None
        for assignment in topic.assignments:
            if assignment.partition_index in seen:
                raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                 "Found multiple manual partition assignments for partition "
                                 f"{assignment.partition_index}")
            check_manual_assignment(ctx, assignment.broker_ids, replication_factor)
            replication_factor = len(assignment.broker_ids)
            seen.add(assignment.partition_index)
        if seen != set(range(len(seen))):
            raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             "partitions should be a consecutive 0-based integer sequence")
        return len(seen), replication_factor, configs
    if topic.replication_factor < -1 or topic.replication_factor == 0:
        raise ApiError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         "Replication factor must be larger than 0, or -1 to use the default value.")
    if topic.num_partitions < -1 or topic.num_partitions == 0:
        raise ApiError(ErrorCode.INVALID_PARTITIONS,
                         "Number of partitions was set to an invalid non-positive value.")
    partitions = ctx.config.num_partitions if topic.num_partitions == -1 else topic.num_partitions
    replication_factor = (ctx.config.default_replication_factor if topic.replication_factor == -1
                          else topic.replication_factor)
    if replication_factor > brokers:
        raise ApiError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         f"Unable to replicate the partition {replication_factor} time(s): The target "
                         f"replication factor of {replication_factor} cannot be reached because only "
                         f"{brokers} broker(s) are registered or some brokers have all their log directories "
                         "cordoned.")
    return partitions, replication_factor, configs


def _created(ctx, name: str, topic_id: uuid.UUID, partitions: int, replication_factor: int,
             configs: dict[str, str]) -> CreateTopicsResponse.CreatableTopicResult:
    result = CreateTopicsResponse.CreatableTopicResult(name=name, topic_id=topic_id, error_code=ErrorCode.NONE,
                                                       error_message=None)
    if ctx.api_version >= 5:
        result.num_partitions = partitions
        result.replication_factor = replication_factor
        result.configs = [
            CreateTopicsResponse.CreatableTopicConfigs(
                name=entry.name, value=None if entry.sensitive else entry.value, read_only=entry.read_only,
                config_source=int(entry.source), is_sensitive=entry.sensitive)
            for entry in sorted(describe_topic_configs(ctx.config, configs, include_synonyms=False),
                                key=lambda e: e.name)]
    return result


def _requested_partitions(ctx, topics: list[CreateTopicsRequest.CreatableTopic]) -> int:
    """The partitions these topics ask for (num.partitions for -1), counted before any validation."""
    total = 0
    for topic in topics:
        if topic.assignments:
            total += len(topic.assignments)
        elif topic.num_partitions == -1:
            total += ctx.config.num_partitions
        elif topic.num_partitions > 0:
            total += topic.num_partitions
    return total


def _metadata_records(ctx, topics: list[CreateTopicsRequest.CreatableTopic]) -> int:
    """How many records Kafka's controller would write for these topics: one per topic, partition and
    config of each topic that can be created."""
    total = 0
    for topic in topics:
        try:
            partitions, _, configs = _plan_topic(ctx, topic)
        except ApiError:
            continue
        total += 1 + partitions + len(configs)
    return total


def _too_large(ctx, wanted: list) -> str | None:
    """Kafka's message when the request is over the controller's bounds (POLICY_VIOLATION), else None."""
    if _requested_partitions(ctx, wanted) > MAX_RECORDS_PER_USER_OP:
        return "Excessively large number of partitions per request."
    if _metadata_records(ctx, wanted) > MAX_RECORDS_PER_USER_OP:
        return "Unable to perform excessively large batch operation."
    return None


async def handle_create_topics(ctx, request: CreateTopicsRequest) -> CreateTopicsResponse:
    counts: dict[str, int] = {}
    for topic in request.topics:
        counts[topic.name] = counts.get(topic.name, 0) + 1
    results, late = [], []
    wanted = [t for t in request.topics if counts[t.name] == 1 and t.name != CLUSTER_METADATA_TOPIC]
    refusal = _too_large(ctx, wanted)
    if refusal is not None:  # the whole request fails, as the controller's exception answers it
        return CreateTopicsResponse(topics=[CreateTopicsResponse.CreatableTopicResult(
            name=t.name, error_code=ErrorCode.POLICY_VIOLATION, error_message=refusal) for t in request.topics])
    for topic in wanted:
        try:
            partitions, replication_factor, configs = _plan_topic(ctx, topic)
        except ApiError as exc:
            results.append(CreateTopicsResponse.CreatableTopicResult(
                name=topic.name, error_code=exc.error_code, error_message=exc.message))
            continue
        if request.validate_only:
            topic_id = uuid.uuid4()
        else:
            # no checkpoint since _plan_topic: the name is still free; answered once durable
            try:
                topic_id = (await ctx.topics.create_topic(topic.name, partitions, configs)).topic_id
            except ApiError as exc:  # the disk refused
                results.append(CreateTopicsResponse.CreatableTopicResult(
                    name=topic.name, error_code=exc.error_code, error_message=exc.message))
                continue
        results.append(_created(ctx, topic.name, topic_id, partitions, replication_factor, configs))
    for name, count in counts.items():
        if count > 1:
            late.append(CreateTopicsResponse.CreatableTopicResult(
                name=name, error_code=ErrorCode.INVALID_REQUEST, error_message="Duplicate topic name."))
        elif name == CLUSTER_METADATA_TOPIC:
            late.append(CreateTopicsResponse.CreatableTopicResult(
                name=name, error_code=ErrorCode.INVALID_REQUEST,
                error_message=f"Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited."))
    return CreateTopicsResponse(topics=results + late)


# ---------------------------------------------------------------------------------- DeleteTopics

async def handle_delete_topics(ctx, request: DeleteTopicsRequest) -> DeleteTopicsResponse:
    Result = DeleteTopicsResponse.DeletableTopicResult
    version = ctx.api_version
    if not ctx.config.delete_topic_enable:
        if version < 3:
            code, message = ErrorCode.INVALID_REQUEST, "Topic deletion is disabled."
        else:
            code, message = ErrorCode.TOPIC_DELETION_DISABLED, "Topic deletion is disabled."
        entries = ([(n, ZERO_UUID) for n in request.topic_names] if version < 6
                   else [(t.name, t.topic_id) for t in request.topics])
        return DeleteTopicsResponse(responses=[Result(name=n, topic_id=i, error_code=code, error_message=message)
                                               for n, i in entries])
    results: list = []
    names: list[str] = []
    ids: list[uuid.UUID] = []
    if version < 6:
        names = list(request.topic_names)
    else:
        for state in request.topics:
            if state.name is None:
                if state.topic_id == ZERO_UUID:
                    results.append(Result(name=None, topic_id=ZERO_UUID, error_code=ErrorCode.INVALID_REQUEST,
                                          error_message="Neither topic name nor id were specified."))
                else:
                    ids.append(state.topic_id)
            elif state.topic_id == ZERO_UUID:
                names.append(state.name)
            else:
                results.append(Result(name=state.name, topic_id=state.topic_id, error_code=ErrorCode.INVALID_REQUEST,
                                      error_message="You may not specify both topic name and topic id."))
    duplicate_names = {n for n in names if names.count(n) > 1}
    duplicate_ids = {i for i in ids if ids.count(i) > 1}
    to_delete: dict[uuid.UUID, str] = {}
    for topic_id in dict.fromkeys(i for i in ids if i not in duplicate_ids):
        topic = ctx.metadata.get_by_id(topic_id)
        if topic is None:
            results.append(Result(name=None, topic_id=topic_id, error_code=ErrorCode.UNKNOWN_TOPIC_ID,
                                  error_message=UNKNOWN_TOPIC_ID_MESSAGE))
        else:
            to_delete[topic_id] = topic.name
    for name in dict.fromkeys(n for n in names if n not in duplicate_names):
        topic = ctx.metadata.get(name)
        if topic is None:
            results.append(Result(name=name, topic_id=ZERO_UUID, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                  error_message=UNKNOWN_TOPIC_MESSAGE))
        elif topic.topic_id in to_delete:
            del to_delete[topic.topic_id]
            results.append(Result(name=name, topic_id=topic.topic_id, error_code=ErrorCode.INVALID_REQUEST,
                                  error_message="The provided topic name maps to an ID that was already supplied."))
        else:
            to_delete[topic.topic_id] = name
    for name in sorted(duplicate_names):
        results.append(Result(name=name, topic_id=ZERO_UUID, error_code=ErrorCode.INVALID_REQUEST,
                              error_message="Duplicate topic name."))
    for topic_id in duplicate_ids:
        results.append(Result(name=None, topic_id=topic_id, error_code=ErrorCode.INVALID_REQUEST,
                              error_message="Duplicate topic id."))
    for topic_id, name in to_delete.items():
        try:
            await ctx.topics.delete_topic(name)
        except ApiError as exc:  # the disk refused
            results.append(Result(name=name, topic_id=topic_id, error_code=exc.error_code, error_message=exc.message))
            continue
        results.append(Result(name=name, topic_id=topic_id, error_code=ErrorCode.NONE, error_message=None))
    return DeleteTopicsResponse(responses=results)


# ------------------------------------------------------------------------------- CreatePartitions

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


HANDLERS = [
    Handler(CreateTopicsRequest, 2, 7, handle_create_topics),
    Handler(DeleteTopicsRequest, 1, 6, handle_delete_topics),
    Handler(CreatePartitionsRequest, 0, 3, handle_create_partitions),
]
