"""CreateTopics (key 19) v2-7: new topics, checked as Kafka's controller checks them.

What Kafka 4 (KRaft, one broker that is also the controller) does, and so what is done here:

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
  collisions are checked against it (kbroker.topics).
"""

from __future__ import annotations

import uuid

from ..config import describe_topic_configs, validate_topic_configs
from ..metadata import validate_topic_name
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import CreateTopicsRequest, CreateTopicsResponse
from .registry import Handler
from .topic_rules import (CLUSTER_METADATA_TOPIC, MAX_RECORDS_PER_USER_OP, check_manual_assignment, colliding_topic,
                          registered_brokers)

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
    brokers = len(registered_brokers(ctx))
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
            # alone: no checkpoint since _plan_topic, so the name is still free; answered once durable.
            # In a cluster another broker may have taken the name meanwhile: TOPIC_ALREADY_EXISTS.
            assignment = {a.partition_index: list(a.broker_ids) for a in topic.assignments} or None
            try:
                topic_id = (await ctx.topics.create_topic(topic.name, partitions, configs,
                                                          replication_factor=replication_factor,
                                                          assignment=assignment)).topic_id
            except ApiError as exc:  # the disk refused
                results.append(CreateTopicsResponse.CreatableTopicResult(
                    name=topic.name, error_code=exc.error_code, error_message=exc.message))
                continue
            except KeyError:
                results.append(CreateTopicsResponse.CreatableTopicResult(
                    name=topic.name, error_code=ErrorCode.TOPIC_ALREADY_EXISTS,
                    error_message=f"Topic '{topic.name}' already exists."))
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


HANDLERS = [Handler(CreateTopicsRequest, 2, 7, handle_create_topics)]
