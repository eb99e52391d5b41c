"""The classic protocol spoken to a consumer group: JoinGroup, SyncGroup, Heartbeat and LeaveGroup of
the classic members of a mixed group during an online upgrade, as Kafka 4.4's GroupMetadataManager
answers them (classicGroup{Join,Sync,Heartbeat,Leave}ToConsumerGroup).

A classic member is a consumer group member like the others to the server-side assignor; only the
way it learns of its assignment differs. Its JoinGroup is a heartbeat carrying its subscription
(topics, and the partitions it still owns) decoded from the embedded ConsumerProtocolSubscription:
the member is created or updated, the group epoch bumped if its subscription changed, the target
assignment computed, the member reconciled (kbroker.groups.consumer_protocol.update_member), and
the JoinGroup answered at once with generation = its member epoch; it is never the leader. Its
SyncGroup gets its current assignment as a ConsumerProtocolAssignment. Its Heartbeat answers
REBALANCE_IN_PROGRESS whenever it must rejoin: the group epoch moved past its epoch, it must revoke
partitions, or partitions it waits for were released. So a partition moves to another member only
after the classic member that had it rejoined without it (an eager client revokes everything
before rejoining; a cooperative one revokes what its SyncGroup assignment lost, then rejoins).

Timers: its own session timeout (from its JoinGroup); the rebalance timeout to rejoin once told
(join deadline) and to sync once joined (sync deadline). Missing any fences the member.
Generation is the member epoch for OffsetCommit too (ILLEGAL_GENERATION when it differs). A classic
instance of the group's last consumer-protocol member (a static member restarted with the classic
protocol) turns the group classic again, taking its place without a rebalance.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from ..protocol.errors import ApiError, ErrorCode, ProtocolError
from . import consumer_records as fmt
from . import migration
from .classic import JoinResult, Member, SyncResult
from .consumer_group import UNRELEASED_PARTITIONS, UNREVOKED_PARTITIONS, ConsumerGroup, ConsumerMember, \
    empty_metadata, updated_metadata

if TYPE_CHECKING:
    from .consumer_protocol import ConsumerGroupProtocol

log = logging.getLogger("kbroker.groups")

UNKNOWN_MEMBER_ID = ""


class ClassicMembers:
    def __init__(self, protocol: ConsumerGroupProtocol):
        self._protocol = protocol

    def _topic_id(self, name: str) -> uuid.UUID | None:
        topic = self._protocol.catalogue.get(name)
        return topic.topic_id if topic is not None else None

    # =========================================================================== JoinGroup
    def join(self, group: ConsumerGroup, *, member_id: str, group_instance_id: str | None, protocol_type: str,
             protocols: list[tuple[str, bytes]], session_timeout_ms: int, rebalance_timeout_ms: int,
             client_id: str, client_host: str, api_version: int) -> JoinResult:
        unknown = member_id == UNKNOWN_MEMBER_ID
        if unknown:
            member_id = str(uuid.uuid4())
        try:
            self._protocol.check_size(group, member_id, group_instance_id)
        except ApiError as exc:
            return JoinResult(exc.error_code, member_id)
        if not group.supports_classic_protocols(protocol_type, [name for name, _ in protocols]):
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id)
        if unknown and group_instance_id is None and api_version >= 4:
            log.info("new classic member of consumer group %s must rejoin with member id %s", group.group_id,
                     member_id)
            return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id)
        try:
            subscription = migration.decode_subscription(protocols[0][1])
        except (ProtocolError, ValueError, IndexError):
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id)
        member, replaced_id, error = self._joining_member(group, member_id, group_instance_id)
        if error:
            return JoinResult(error, member_id)
        if replaced_id is not None and self._protocol.may_downgrade(group, replaced_id, replaced=True):
            # the last consumer-protocol member was this static member: its classic instance takes
            # its place in a classic group again (Kafka's downgrade on a static member's replacement)
            generation = group.group_epoch
            joining = Member(member_id, group_instance_id, client_id, client_host, rebalance_timeout_ms,
                             session_timeout_ms, migration.PROTOCOL_TYPE, list(protocols))
            error = self._protocol.convert_to_classic(group, replaced_id, joining)
            return JoinResult(error, member_id) if error else JoinResult(
                ErrorCode.NONE, member_id, generation, migration.PROTOCOL_TYPE, protocols[0][0], "", False, [])
        metadata = updated_metadata(
            member.metadata, client_id=client_id, client_host=client_host,
            instance_id=group_instance_id if group_instance_id is not None else member.metadata.instance_id,
            rack_id=subscription.rack_id if subscription.rack_id is not None else member.metadata.rack_id,
            rebalance_timeout_ms=rebalance_timeout_ms, subscribed_topic_names=tuple(sorted(set(subscription.topics))),
            subscribed_topic_regex=None,
            classic=fmt.ClassicMemberMetadata(session_timeout_ms, tuple(protocols)))
        owned = migration.to_partitions(subscription.owned_partitions, self._topic_id)
        assignment, error = self._protocol.update_member(group, member, replaced_id, metadata, owned, [])
        if error:
            return JoinResult(error, member_id)
        protocol = self._protocol
        protocol.cancel_fencing("join", group.group_id, member_id)
        protocol.schedule_session_timeout(group.group_id, member_id)
        protocol.schedule_fencing("sync", group.group_id, member_id, rebalance_timeout_ms)
        log.info("classic member %s joined consumer group %s at epoch %d", member_id, group.group_id,
                 assignment.member_epoch)
        return JoinResult(ErrorCode.NONE, member_id, assignment.member_epoch, migration.PROTOCOL_TYPE, protocols[0][0],
                          "", False, [])

    @staticmethod
    def _joining_member(group: ConsumerGroup, member_id: str, instance_id: str | None
                        ) -> tuple[ConsumerMember, str | None, int]:
        """(the member, the id of the static member it replaces, error)."""
        if instance_id is None:
            member = group.members.get(member_id)
            return (member if member is not None else ConsumerMember(member_id, empty_metadata())), None, 0
        existing = group.static_member(instance_id)
        if existing is None:
            return ConsumerMember(member_id, empty_metadata()), None, 0
        if existing.member_id == member_id:
            return existing, None, 0
        # a new instance of the static member takes its place and its assignment, at epoch 0
        log.info("static classic member %s replaces %s (instance %s) in consumer group %s", member_id,
                 existing.member_id, instance_id, group.group_id)
        assignment = fmt.CurrentAssignment(0, 0, existing.state, existing.assigned, {})
        return ConsumerMember(member_id, existing.metadata, assignment), existing.member_id, 0

    # =========================================================================== the others
    @staticmethod
    def _classic_member(group: ConsumerGroup, member_id: str, instance_id: str | None, *,
                        by_instance_id: bool = False) -> ConsumerMember:
        """The classic member a request names; ``by_instance_id``: an administrator's LeaveGroup may
        name a static member by its instance id alone."""
        if instance_id is None:
            member = group.members.get(member_id)
            if member is None:
                raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID,
                               f"Member {member_id} is not a member of group {group.group_id}.")
        else:
            member = group.static_member(instance_id)
            if member is None:
                raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID, f"Member with instance id {instance_id} is not a member "
                               f"of group {group.group_id}.")
            if member.member_id != member_id and not (by_instance_id and member_id == UNKNOWN_MEMBER_ID):
                raise ApiError(ErrorCode.FENCED_INSTANCE_ID,
                               f"Static member {member_id} with instance id {instance_id} was fenced.")
        if not member.uses_classic_protocol:
            raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID, f"Member {member.member_id} does not use the classic protocol.")
        return member

    def sync(self, group: ConsumerGroup, *, member_id: str, group_instance_id: str | None, generation_id: int,
             protocol_type: str | None, protocol_name: str | None) -> SyncResult:
        try:
            member = self._classic_member(group, member_id, group_instance_id)
        except ApiError as exc:
            return SyncResult(exc.error_code)
        if generation_id != member.member_epoch:
            return SyncResult(ErrorCode.ILLEGAL_GENERATION)
        name = migration.first_protocol_name(member.classic)
        if (protocol_type is not None and protocol_type != migration.PROTOCOL_TYPE) or (
                protocol_name is not None and protocol_name != name):
            return SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        protocol = self._protocol
        if group.group_epoch > member.member_epoch and member.state != UNREVOKED_PARTITIONS:
            protocol.schedule_fencing("join", group.group_id, member.member_id, member.metadata.rebalance_timeout_ms,
                                      if_absent=True)
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        protocol.cancel_fencing("sync", group.group_id, member.member_id)
        protocol.schedule_session_timeout(group.group_id, member.member_id)
        version = migration.subscription_version(member.classic.supported_protocols[0][1])
        assignment = migration.encode_assignment(member.assigned, protocol.topic_names(), version)
        return SyncResult(ErrorCode.NONE, protocol_type, protocol_name, assignment)

    def heartbeat(self, group: ConsumerGroup, *, member_id: str, group_instance_id: str | None,
                  generation_id: int) -> int:
        try:
            member = self._classic_member(group, member_id, group_instance_id)
        except ApiError as exc:
            return exc.error_code
        if generation_id != member.member_epoch:
            return ErrorCode.ILLEGAL_GENERATION
        protocol = self._protocol
        protocol.schedule_session_timeout(group.group_id, member.member_id)
        if (member.member_epoch < group.group_epoch or member.state == UNREVOKED_PARTITIONS or (
                member.state == UNRELEASED_PARTITIONS and not group.waiting_on_unreleased_partition(member))):
            protocol.schedule_fencing("join", group.group_id, member.member_id, member.metadata.rebalance_timeout_ms,
                                      if_absent=True)
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave(self, group: ConsumerGroup, members: list[tuple[str, str | None]]
              ) -> tuple[int, list[tuple[str, str | None, int]]]:
        results: list[tuple[str, str | None, int]] = []
        leaving: list[str] = []
        for member_id, instance_id in members:
            try:
                member = self._classic_member(group, member_id, instance_id, by_instance_id=True)
            except ApiError as exc:
                results.append((member_id, instance_id, exc.error_code))
                continue
            if member.member_id not in leaving:
                leaving.append(member.member_id)
            results.append((member.member_id, instance_id, ErrorCode.NONE))
        if leaving:
            log.info("classic members %s left consumer group %s", leaving, group.group_id)
            error = self._protocol.remove_members(group, leaving)
            if error:
                return error, []
        return ErrorCode.NONE, results
