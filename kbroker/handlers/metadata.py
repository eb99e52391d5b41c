"""Metadata (key 3), versions 0-13 (v13 adds a top-level error code, KIP-1102, always NONE here): brokers, controller, cluster id, and topics with their partitions.

Brokers, the controller and each partition's leader, epoch, replicas, ISR and offline replicas come
from ``ctx.cluster`` (this broker alone, or the cluster's state as this broker follows it).

Kafka semantics kept here:
- a null topic list (v1+), or an empty one in v0, means "all topics"; an empty list in v1+ means none;
- an unknown topic is created when the request allows it (always before v4, the flag from v4) and
  `auto.create.topics.enable` is on; otherwise UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when
  asked by id, v10+); an illegal name gets INVALID_TOPIC_EXCEPTION and is never created;
- a topic still being created (its files not yet durable, kbroker.broker) is not listed; asking for
  it by name with auto-creation allowed waits for that creation (Kafka would answer
  LEADER_NOT_AVAILABLE and let the client retry), as does a topic auto-created here;
- with no authorizer, "authorized operations" (v8+) are every operation the resource type has.
"""

from __future__ import annotations

from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import MetadataRequest, MetadataResponse
from ..protocol.primitives import ZERO_UUID
from ..metadata import Topic, validate_topic_name
from .registry import Handler

# Kafka's AclOperation codes; with no authorizer every operation of the resource type is allowed.
_TOPIC_OPERATIONS = (3, 4, 5, 6, 7, 8, 10, 11)  # READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS
_CLUSTER_OPERATIONS = (5, 7, 8, 9, 10, 11, 12)  # CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE/ALTER_CONFIGS IDEMPOTENT_WRITE
TOPIC_AUTHORIZED_OPERATIONS = sum(1 << op for op in _TOPIC_OPERATIONS)
CLUSTER_AUTHORIZED_OPERATIONS = sum(1 << op for op in _CLUSTER_OPERATIONS)
OPERATIONS_NOT_REQUESTED = -2147483648


def describe_partition(ctx, topic: Topic, index: int) -> MetadataResponse.MetadataResponsePartition:
    """One partition as the cluster has it; no leader now is LEADER_NOT_AVAILABLE, as Kafka lists it."""
    info = ctx.cluster.partition(topic, index)
    if info is None:
        return MetadataResponse.MetadataResponsePartition(
            error_code=ErrorCode.LEADER_NOT_AVAILABLE, partition_index=index, leader_id=-1, leader_epoch=-1,
            replica_nodes=[], isr_nodes=[], offline_replicas=[])
    return MetadataResponse.MetadataResponsePartition(
        error_code=ErrorCode.NONE if info.leader >= 0 else ErrorCode.LEADER_NOT_AVAILABLE, partition_index=index,
        leader_id=info.leader, leader_epoch=info.leader_epoch, replica_nodes=list(info.replicas),
        isr_nodes=list(info.isr), offline_replicas=list(info.offline))


def describe_topic(ctx, topic: Topic, request: MetadataRequest) -> MetadataResponse.MetadataResponseTopic:
    partitions = [describe_partition(ctx, topic, index) for index in range(topic.partitions)]
    return MetadataResponse.MetadataResponseTopic(
        error_code=ErrorCode.NONE, name=topic.name, topic_id=topic.topic_id, is_internal=topic.is_internal,
        partitions=partitions,
        topic_authorized_operations=(TOPIC_AUTHORIZED_OPERATIONS if request.include_topic_authorized_operations
                                     else OPERATIONS_NOT_REQUESTED))


def _topic_error(name: str | None, code: ErrorCode, topic_id=ZERO_UUID) -> MetadataResponse.MetadataResponseTopic:
    return MetadataResponse.MetadataResponseTopic(error_code=code, name=name, topic_id=topic_id)


async def _lookup(ctx, wanted: MetadataRequest.MetadataRequestTopic, request: MetadataRequest):
    if wanted.name is None:
        topic = ctx.metadata.get_by_id(wanted.topic_id)
        if topic is None:  # names are nullable in responses from v12; v10-11 can only say ""
            return _topic_error(None if ctx.api_version >= 12 else "", ErrorCode.UNKNOWN_TOPIC_ID, wanted.topic_id)
        return describe_topic(ctx, topic, request)
    topic = ctx.metadata.get(wanted.name)
    if topic is not None:
        return describe_topic(ctx, topic, request)
    if validate_topic_name(wanted.name) is not None:
        return _topic_error(wanted.name, ErrorCode.INVALID_TOPIC_EXCEPTION)
    allow = request.allow_auto_topic_creation if ctx.api_version >= 4 else True
    if allow and ctx.topics.auto_create_topics:
        # waits for the topic's files to be durable (or for a creation of it already in flight)
        try:
            created = await ctx.topics.ensure_topic(wanted.name, ctx.config.num_partitions)
        except ApiError:  # the disk refused: Kafka's answer while an auto-created topic is not ready
            return _topic_error(wanted.name, ErrorCode.LEADER_NOT_AVAILABLE)
        return describe_topic(ctx, created, request)
    return _topic_error(wanted.name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)


async def handle_metadata(ctx, request: MetadataRequest) -> MetadataResponse:
    all_topics = request.topics is None or (ctx.api_version == 0 and not request.topics)
    if all_topics:
        topics = [describe_topic(ctx, t, request) for t in ctx.metadata.topics()]
    else:
        topics = [await _lookup(ctx, wanted, request) for wanted in request.topics]
    return MetadataResponse(
        brokers=[MetadataResponse.MetadataResponseBroker(b.node_id, b.host, b.port, b.rack)
                 for b in ctx.cluster.brokers()],
        cluster_id=ctx.node.cluster_id,
        controller_id=ctx.cluster.controller_id(),
        topics=topics,
        cluster_authorized_operations=(CLUSTER_AUTHORIZED_OPERATIONS if request.include_cluster_authorized_operations
                                       else OPERATIONS_NOT_REQUESTED),
    )


HANDLERS = [Handler(MetadataRequest, 0, 13, handle_metadata)]
