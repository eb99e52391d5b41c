"""Classic consumer groups: FindCoordinator (10) 0-6, JoinGroup (11) 0-9, SyncGroup (14) 0-5,
Heartbeat (12) 0-4, LeaveGroup (13) 0-5, ListGroups (16) 0-5, DescribeGroups (15) 0-6 and
DeleteGroups (42) 0-3 (v6 and v3 add error messages, KIP-1043: DescribeGroups v6 answers a group that
does not exist with GROUP_ID_NOT_FOUND "Group G not found." where older versions say Dead). The state machine is kbroker.groups; this module translates the wire.

A JoinGroup or SyncGroup that must wait for the rebalance parks on a Waiter the coordinator completes;
the handler bounds the wait with a deadline past anything the coordinator's own timers allow, so a
bug can never hold a connection forever. KIP-848 consumer groups have their own APIs
(kbroker.handlers.consumer_groups); ListGroups lists both kinds with their type, and DescribeGroups
describes a consumer group (mixed or not) as Dead, as Kafka does for a group that is not a classic one
(v6: GROUP_ID_NOT_FOUND "Group G is not a classic group.").
"""

from __future__ import annotations

import trio

from ..groups.classic import JoinResult, SyncResult, Waiter
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
                                 DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
                                 HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
                                 LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse,
                                 SyncGroupRequest, SyncGroupResponse)
from .registry import Handler

GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE = 0, 1
# Kafka's AclOperation codes for a group: READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS
GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)
INVALID_REQUEST_MESSAGE = ("This most likely occurs because of a request being malformed by the client library or "
                           "the message was sent to an incompatible broker. See the broker logs for more details.")
OPERATIONS_NOT_REQUESTED = -2147483648
# slack over the coordinator's own timeouts before a parked request gives up on its own
_PARK_SLACK_S = 30.0


def _coordinator(ctx):
    return ctx.groups


def _client_host(ctx) -> str:
    return "/" + ctx.client_host  # Kafka reports InetAddress.toString()


# ------------------------------------------------------------------------------ FindCoordinator
async def handle_find_coordinator(ctx, request: FindCoordinatorRequest) -> FindCoordinatorResponse:
    version = ctx.api_version
    key_type = request.key_type if version >= 1 else GROUP_KEY_TYPE
    keys = request.coordinator_keys if version >= 4 else [request.key]

    async def answer(key: str) -> FindCoordinatorResponse.Coordinator:
        if key_type not in (GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE):
            return FindCoordinatorResponse.Coordinator(key=key, node_id=-1, host="", port=-1,
                                                       error_code=ErrorCode.INVALID_REQUEST,
                                                       error_message=INVALID_REQUEST_MESSAGE)
        try:
            if key_type == GROUP_KEY_TYPE:
                # Kafka creates __consumer_offsets on first lookup
                topic = await _coordinator(ctx).ensure_offsets_topic()
                partition = _coordinator(ctx).partition_for(key)
            else:
                topic = await ctx.txns.ensure_state_topic()  # and __transaction_state likewise
                partition = ctx.txns.partition_for(key)
        except ApiError as exc:  # the internal topic cannot be created (a full disk)
            return FindCoordinatorResponse.Coordinator(key=key, node_id=-1, host="", port=-1,
                                                       error_code=exc.error_code, error_message=exc.message)
        # the coordinator is the leader of the key's partition of the internal topic
        info = ctx.cluster.partition(topic, partition)
        leader = next((b for b in ctx.cluster.brokers() if info is not None and b.node_id == info.leader), None)
        if leader is None:
            return FindCoordinatorResponse.Coordinator(key=key, node_id=-1, host="", port=-1,
                                                       error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE,
                                                       error_message="The coordinator is not available.")
        return FindCoordinatorResponse.Coordinator(key=key, node_id=leader.node_id, host=leader.host, port=leader.port,
                                                   error_code=ErrorCode.NONE, error_message="")

    answers = [await answer(key) for key in keys]
    if version >= 4:
        return FindCoordinatorResponse(coordinators=answers)
    a = answers[0]
    return FindCoordinatorResponse(error_code=a.error_code,
                                   error_message=a.error_message if a.error_code else "NONE",
                                   node_id=a.node_id, host=a.host, port=a.port)


# ------------------------------------------------------------------------------ JoinGroup
def _join_response(result: JoinResult, version: int) -> JoinGroupResponse:
    protocol_name = result.protocol_name
    if protocol_name is None and version < 7:
        protocol_name = ""
    return JoinGroupResponse(
        error_code=result.error, generation_id=result.generation_id, protocol_type=result.protocol_type,
        protocol_name=protocol_name, leader=result.leader, skip_assignment=result.skip_assignment,
        member_id=result.member_id,
        members=[JoinGroupResponse.JoinGroupResponseMember(member_id=m, group_instance_id=i, metadata=md)
                 for m, i, md in result.members])


async def handle_join_group(ctx, request: JoinGroupRequest) -> JoinGroupResponse:
    coordinator = _coordinator(ctx)
    version = ctx.api_version
    try:
        await coordinator.ensure_offsets_topic()  # a group's first request may come without FindCoordinator
    except ApiError as exc:
        return _join_response(JoinResult(error=exc.error_code, member_id=request.member_id), version)
    rebalance_timeout = request.rebalance_timeout_ms
    if version == 0 or rebalance_timeout < 0:
        rebalance_timeout = request.session_timeout_ms
    waiter = Waiter()
    coordinator.join_group(
        group_id=request.group_id, member_id=request.member_id,
        group_instance_id=request.group_instance_id if version >= 5 else None,
        protocol_type=request.protocol_type,
        protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
        session_timeout_ms=request.session_timeout_ms, rebalance_timeout_ms=rebalance_timeout,
        client_id=ctx.client_id or "", client_host=_client_host(ctx), api_version=version, waiter=waiter)
    if not waiter.done:
        limit = (max(rebalance_timeout, request.session_timeout_ms) + coordinator.initial_rebalance_delay_ms) / 1000
        with trio.move_on_after(2 * limit + _PARK_SLACK_S):
            try:
                await waiter.event.wait()
            finally:
                if not waiter.done:
                    coordinator.abandon_join(request.group_id, waiter)
        if not waiter.done:
            waiter.complete(JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, request.member_id))
    return _join_response(waiter.result, version)


# ------------------------------------------------------------------------------ SyncGroup
async def handle_sync_group(ctx, request: SyncGroupRequest) -> SyncGroupResponse:
    coordinator = _coordinator(ctx)
    version = ctx.api_version
    waiter = Waiter()
    coordinator.sync_group(
        group_id=request.group_id, generation_id=request.generation_id, member_id=request.member_id,
        group_instance_id=request.group_instance_id if version >= 3 else None,
        protocol_type=request.protocol_type if version >= 5 else None,
        protocol_name=request.protocol_name if version >= 5 else None,
        assignments={a.member_id: bytes(a.assignment) for a in request.assignments}, waiter=waiter)
    if not waiter.done:
        group = coordinator.groups.get(request.group_id)
        limit = (group.rebalance_timeout_ms() if group else 0) / 1000
        with trio.move_on_after(2 * limit + _PARK_SLACK_S):
            try:
                await waiter.event.wait()
            finally:
                if not waiter.done:
                    coordinator.abandon_sync(request.group_id, waiter)
        if not waiter.done:
            waiter.complete(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
    result: SyncResult = waiter.result
    return SyncGroupResponse(error_code=result.error, protocol_type=result.protocol_type,
                             protocol_name=result.protocol_name, assignment=result.assignment)


# ------------------------------------------------------------------------------ Heartbeat
async def handle_heartbeat(ctx, request: HeartbeatRequest) -> HeartbeatResponse:
    error = _coordinator(ctx).heartbeat(request.group_id, request.generation_id, request.member_id,
                                        request.group_instance_id if ctx.api_version >= 3 else None)
    return HeartbeatResponse(error_code=error)


# ------------------------------------------------------------------------------ LeaveGroup
async def handle_leave_group(ctx, request: LeaveGroupRequest) -> LeaveGroupResponse:
    version = ctx.api_version
    if version >= 3:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        members = [(request.member_id, None)]
    error, results = _coordinator(ctx).leave_group(request.group_id, members)
    if version < 3:
        if error == ErrorCode.NONE and results:
            error = results[0][2]
        return LeaveGroupResponse(error_code=error)
    return LeaveGroupResponse(error_code=error, members=[
        LeaveGroupResponse.MemberResponse(member_id=m, group_instance_id=i, error_code=e) for m, i, e in results])


# ------------------------------------------------------------------------------ ListGroups
async def handle_list_groups(ctx, request: ListGroupsRequest) -> ListGroupsResponse:
    version = ctx.api_version
    groups = _coordinator(ctx).list_groups(request.states_filter if version >= 4 else (),
                                           request.types_filter if version >= 5 else ())
    return ListGroupsResponse(error_code=ErrorCode.NONE, groups=[
        ListGroupsResponse.ListedGroup(group_id=g, protocol_type=pt, group_state=state, group_type=gtype)
        for g, pt, state, gtype in groups])


# ------------------------------------------------------------------------------ DescribeGroups
async def handle_describe_groups(ctx, request: DescribeGroupsRequest) -> DescribeGroupsResponse:
    coordinator = _coordinator(ctx)
    include_ops = ctx.api_version >= 3 and request.include_authorized_operations
    described = []
    for group_id in request.groups:
        error, state, protocol_type, protocol_data, members = coordinator.describe_group(group_id)
        message = None
        if ctx.api_version >= 6 and error == ErrorCode.NONE and state == "Dead":  # KIP-1043: say it is not there
            error = ErrorCode.GROUP_ID_NOT_FOUND
            message = f"Group {group_id} is not a classic group." if coordinator.is_consumer_group(group_id) \
                else f"Group {group_id} not found."
        described.append(DescribeGroupsResponse.DescribedGroup(
            error_code=error, error_message=message, group_id=group_id, group_state=state, protocol_type=protocol_type,
            protocol_data=protocol_data,
            members=[DescribeGroupsResponse.DescribedGroupMember(
                member_id=m, group_instance_id=i, client_id=c, client_host=h, member_metadata=md,
                member_assignment=a) for m, i, c, h, md, a in members],
            authorized_operations=GROUP_AUTHORIZED_OPERATIONS if include_ops else OPERATIONS_NOT_REQUESTED))
    return DescribeGroupsResponse(groups=described)


# ------------------------------------------------------------------------------ DeleteGroups
async def handle_delete_groups(ctx, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    results = _coordinator(ctx).delete_groups(list(request.groups_names))
    return DeleteGroupsResponse(results=[DeleteGroupsResponse.DeletableGroupResult(group_id=g, error_code=e)
                                         for g, e in results])


HANDLERS = [
    Handler(FindCoordinatorRequest, 0, 6, handle_find_coordinator),
    Handler(JoinGroupRequest, 0, 9, handle_join_group),
    Handler(HeartbeatRequest, 0, 4, handle_heartbeat),
    Handler(LeaveGroupRequest, 0, 5, handle_leave_group),
    Handler(SyncGroupRequest, 0, 5, handle_sync_group),
    Handler(DescribeGroupsRequest, 0, 6, handle_describe_groups),
    Handler(ListGroupsRequest, 0, 5, handle_list_groups),
    Handler(DeleteGroupsRequest, 0, 3, handle_delete_groups),
]
