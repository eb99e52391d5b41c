"""KIP-848 consumer groups: ConsumerGroupHeartbeat (68) 0-1 and ConsumerGroupDescribe (69) 0-1.

In Kafka 4.x a consumer with `group.protocol=consumer` does not join and sync: it heartbeats its
subscription (topic names, or from v1 a regular expression) and the partitions it owns, and the
coordinator answers with its member epoch and, when it changed, the partitions it may now consume,
assigned by the server-side assignor. Version 1 adds SubscribedTopicRegex and makes the client
generate its own member id (KIP-1082). ConsumerGroupDescribe returns a consumer group's epochs,
assignor and members with their current and target assignments (v1 adds the member type, KIP-1099:
0 for a classic member of a group being upgraded online, 1 for a consumer-protocol member);
a group that is not a consumer group is GROUP_ID_NOT_FOUND, after which the admin client falls back
to DescribeGroups. Both answer UNSUPPORTED_VERSION while the finalized `group.version` is 0
(`kafka-features downgrade`), as Kafka's do. The state machine is kbroker.groups.consumer_protocol;
this module translates the wire.
"""

from __future__ import annotations

import uuid

from ..groups.consumer_protocol import MEMBER_TYPE_CLASSIC, MEMBER_TYPE_CONSUMER, Heartbeat
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
                                 ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse)
from .features import finalized_features
from .groups import GROUP_AUTHORIZED_OPERATIONS, OPERATIONS_NOT_REQUESTED
from .registry import Handler

Partitions = dict[uuid.UUID, frozenset[int]]


def _owned(topics: list[ConsumerGroupHeartbeatRequest.TopicPartitions] | None) -> Partitions | None:
    if topics is None:
        return None
    owned: dict[uuid.UUID, frozenset[int]] = {}
    for t in topics:
        owned[t.topic_id] = owned.get(t.topic_id, frozenset()) | frozenset(t.partitions)
    return owned


def _consumer_protocol_enabled(ctx) -> bool:
    """Kafka's isConsumerGroupProtocolEnabled: the finalized group.version is 1 or more."""
    return finalized_features(ctx).get("group.version", 0) >= 1


async def handle_consumer_group_heartbeat(ctx, request: ConsumerGroupHeartbeatRequest
                                          ) -> ConsumerGroupHeartbeatResponse:
    if not _consumer_protocol_enabled(ctx):
        return ConsumerGroupHeartbeatResponse(error_code=ErrorCode.UNSUPPORTED_VERSION)
    try:
        await ctx.groups.ensure_offsets_topic()  # a group's first request may come without FindCoordinator
    except ApiError as exc:
        return ConsumerGroupHeartbeatResponse(error_code=exc.error_code, error_message=exc.message)
    result = ctx.groups.consumer_group_heartbeat(Heartbeat(
        group_id=request.group_id, member_id=request.member_id, member_epoch=request.member_epoch,
        instance_id=request.instance_id, rack_id=request.rack_id,
        rebalance_timeout_ms=request.rebalance_timeout_ms,
        subscribed_topic_names=None if request.subscribed_topic_names is None else list(request.subscribed_topic_names),
        subscribed_topic_regex=request.subscribed_topic_regex if ctx.api_version >= 1 else None,
        server_assignor=request.server_assignor, owned=_owned(request.topic_partitions),
        client_id=ctx.client_id or "", client_host="/" + ctx.client_host, api_version=ctx.api_version))
    response = ConsumerGroupHeartbeatResponse(
        error_code=result.error, error_message=result.message, member_id=result.member_id,
        member_epoch=result.member_epoch, heartbeat_interval_ms=result.heartbeat_interval_ms)
    if result.assignment is not None:
        response.assignment = ConsumerGroupHeartbeatResponse.Assignment(topic_partitions=[
            ConsumerGroupHeartbeatResponse.TopicPartitions(topic_id=topic_id, partitions=sorted(indexes))
            for topic_id, indexes in sorted(result.assignment.items(), key=lambda item: str(item[0]))])
    return response


def _assignment(partitions: Partitions, names: dict[uuid.UUID, str]) -> ConsumerGroupDescribeResponse.Assignment:
    return ConsumerGroupDescribeResponse.Assignment(topic_partitions=[
        ConsumerGroupDescribeResponse.TopicPartitions(topic_id=topic_id, topic_name=names.get(topic_id, ""),
                                                      partitions=sorted(indexes))
        for topic_id, indexes in sorted(partitions.items(), key=lambda item: str(item[0]))])


async def handle_consumer_group_describe(ctx, request: ConsumerGroupDescribeRequest
                                         ) -> ConsumerGroupDescribeResponse:
    if not _consumer_protocol_enabled(ctx):
        return ConsumerGroupDescribeResponse(groups=[ConsumerGroupDescribeResponse.DescribedGroup(
            group_id=group_id, error_code=ErrorCode.UNSUPPORTED_VERSION) for group_id in request.group_ids])
    coordinator = ctx.groups
    names = coordinator.consumer.topic_names()
    operations = GROUP_AUTHORIZED_OPERATIONS if request.include_authorized_operations else OPERATIONS_NOT_REQUESTED
    described = []
    for group_id in request.group_ids:
        try:
            if not group_id:
                raise ApiError(ErrorCode.INVALID_GROUP_ID, "Group id must not be empty.")
            group = coordinator.consumer_group(group_id)
        except ApiError as exc:
            described.append(ConsumerGroupDescribeResponse.DescribedGroup(
                error_code=exc.error_code, error_message=exc.message, group_id=group_id))
            continue
        described.append(ConsumerGroupDescribeResponse.DescribedGroup(
            group_id=group_id, group_state=group.state, group_epoch=group.group_epoch,
            assignment_epoch=group.assignment_epoch, assignor_name=coordinator.consumer.assignor_of(group),
            authorized_operations=operations,
            members=[ConsumerGroupDescribeResponse.Member(
                member_id=m.member_id, instance_id=m.instance_id, rack_id=m.metadata.rack_id,
                member_epoch=m.member_epoch, client_id=m.metadata.client_id, client_host=m.metadata.client_host,
                subscribed_topic_names=list(m.metadata.subscribed_topic_names),
                subscribed_topic_regex=m.metadata.subscribed_topic_regex,
                assignment=_assignment(m.assigned, names),
                target_assignment=_assignment(group.target.get(m.member_id, {}), names),
                member_type=MEMBER_TYPE_CLASSIC if m.uses_classic_protocol else MEMBER_TYPE_CONSUMER)
                for m in group.members.values()]))
    return ConsumerGroupDescribeResponse(groups=described)


HANDLERS = [
    Handler(ConsumerGroupHeartbeatRequest, 0, 1, handle_consumer_group_heartbeat),
    Handler(ConsumerGroupDescribeRequest, 0, 1, handle_consumer_group_describe),
]
