"""A KIP-848 consumer group's state, rebuilt from its `__consumer_offsets` records.

The group has a group epoch (bumped whenever the members' subscriptions or the subscribed topics'
metadata change), a target assignment computed by the server-side assignor for an assignment epoch,
and members. Each member has its subscription (its member metadata record), its target partitions,
and its current assignment: its member epoch, the epoch before it, its reconciliation state (Kafka's
MemberState: STABLE, UNREVOKED_PARTITIONS, UNRELEASED_PARTITIONS) and the partitions it owns or
must still revoke. A partition is owned while it is in some member's assigned or pending-revocation
set; no other member gets it until then (`owner`).

Group states, as Kafka names them: Empty (no members), Assigning (the group epoch is ahead of the
target assignment's), Reconciling (some member has not reached the target assignment), Stable, and
Dead (deleted).

Every change is made by replaying a record (`replay`), in the live path right after it was appended
as at load, so what is in memory is exactly what a restart reads back. The decisions (who gets what,
when an epoch moves) are kbroker.groups.consumer_protocol's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Iterable

from . import consumer_records as fmt

EMPTY, ASSIGNING, RECONCILING, STABLE, DEAD = "Empty", "Assigning", "Reconciling", "Stable", "Dead"

# Kafka's MemberState values, as stored in the current assignment record
MEMBER_STABLE, UNREVOKED_PARTITIONS, UNRELEASED_PARTITIONS, MEMBER_UNKNOWN = 0, 1, 2, 127

# a static member that left with epoch -2 and may come back within its session timeout
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2

Partitions = fmt.Partitions


@dataclass(slots=True)
class ConsumerMember:
    member_id: str
    metadata: fmt.MemberMetadata
    assignment: fmt.CurrentAssignment = field(
        default_factory=lambda: fmt.CurrentAssignment(0, 0, MEMBER_STABLE))

    @property
    def instance_id(self) -> str | None:
        return self.metadata.instance_id

    @property
    def member_epoch(self) -> int:
        return self.assignment.member_epoch

    @property
    def previous_member_epoch(self) -> int:
        return self.assignment.previous_member_epoch

    @property
    def state(self) -> int:
        return self.assignment.state

    @property
    def assigned(self) -> Partitions:
        return self.assignment.assigned

    @property
    def pending_revocation(self) -> Partitions:
        return self.assignment.pending_revocation

    @property
    def classic(self) -> fmt.ClassicMemberMetadata | None:
        """What a member speaking the classic protocol (JoinGroup/SyncGroup) joined with, else None."""
        return self.metadata.classic

    @property
    def uses_classic_protocol(self) -> bool:
        return self.metadata.classic is not None

    def is_reconciled_to(self, epoch: int) -> bool:
        return self.state == MEMBER_STABLE and self.member_epoch == epoch


def empty_metadata(client_id: str = "", client_host: str = "") -> fmt.MemberMetadata:
    return fmt.MemberMetadata(None, None, client_id, client_host, (), None, -1, None)


def updated_metadata(metadata: fmt.MemberMetadata, **changes) -> fmt.MemberMetadata:
    return replace(metadata, **changes)


class ConsumerGroup:
    def __init__(self, group_id: str):
        self.group_id = group_id
        self.group_epoch = 0
        self.metadata_hash = 0
        self.assignment_epoch = 0
        self.subscription_metadata: list[fmt.TopicMetadata] = []
        self.members: dict[str, ConsumerMember] = {}
        self.static_members: dict[str, str] = {}
        self.target: dict[str, Partitions] = {}
        self.owner: dict[tuple[uuid.UUID, int], str] = {}
        self.dead = False

    # -- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        if self.dead:
            return DEAD
        if not self.members:
            return EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ASSIGNING
        if any(not m.is_reconciled_to(self.assignment_epoch) for m in self.members.values()):
            return RECONCILING
        return STABLE

    @property
    def is_empty(self) -> bool:
        return not self.members

    def static_member(self, instance_id: str) -> ConsumerMember | None:
        member_id = self.static_members.get(instance_id)
        return self.members.get(member_id) if member_id is not None else None

    def classic_members(self) -> list[ConsumerMember]:
        return [m for m in self.members.values() if m.uses_classic_protocol]

    def all_classic_except(self, member_id: str) -> bool:
        """Whether every member but this one (which does not) speaks the classic protocol (Kafka's
        allMembersUseClassicProtocolExcept: when it goes, the group may turn classic again)."""
        member = self.members.get(member_id)
        return member is not None and not member.uses_classic_protocol and all(
            m.uses_classic_protocol for m in self.members.values() if m.member_id != member_id)

    def supports_classic_protocols(self, protocol_type: str, names: Iterable[str]) -> bool:
        """Kafka's supportsClassicProtocols: a classic member may join when it speaks the consumer
        protocol type and one protocol (assignor) every classic member supports."""
        if protocol_type != "consumer":
            return False
        names = set(names)
        classic = self.classic_members()
        if not self.members or not classic:
            return bool(names)
        return any(all(name in {p for p, _ in m.classic.supported_protocols} for m in classic) for name in names)

    def waiting_on_unreleased_partition(self, member: ConsumerMember) -> bool:
        """A member in UNRELEASED_PARTITIONS whose target still has a partition another member owns."""
        if member.state != UNRELEASED_PARTITIONS:
            return False
        for topic_id, indexes in self.target.get(member.member_id, {}).items():
            for index in indexes - member.assigned.get(topic_id, frozenset()):
                if self.owner.get((topic_id, index)) not in (None, member.member_id):
                    return True
        return False

    def partition_owner(self, topic_id: uuid.UUID, partition: int) -> str | None:
        return self.owner.get((topic_id, partition))

    def preferred_assignor(self, default: str) -> str:
        """The server assignor most members ask for (ties: by name), else the broker's default."""
        votes: dict[str, int] = {}
        for member in self.members.values():
            if member.metadata.server_assignor:
                votes[member.metadata.server_assignor] = votes.get(member.metadata.server_assignor, 0) + 1
        if not votes:
            return default
        return max(sorted(votes), key=lambda name: votes[name])

    # -- replay --------------------------------------------------------------------------------
    def replay(self, key: fmt.Key, value: bytes | None) -> None:
        kind = key.record_type
        if kind == fmt.GROUP_METADATA:
            if value is not None:
                self.group_epoch, self.metadata_hash = fmt.decode_group_metadata(value)
        elif kind == fmt.PARTITION_METADATA:
            self.subscription_metadata = fmt.decode_partition_metadata(value) if value is not None else []
        elif kind == fmt.TARGET_ASSIGNMENT_METADATA:
            if value is not None:
                self.assignment_epoch = fmt.decode_target_assignment_metadata(value)
        elif kind == fmt.TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                self.target.pop(key.member_id, None)
            else:
                self.target[key.member_id] = fmt.decode_target_assignment_member(value)
        elif kind == fmt.MEMBER_METADATA:
            self._replay_member_metadata(key.member_id, value)
        elif kind == fmt.CURRENT_ASSIGNMENT:
            self._replay_current_assignment(key.member_id, value)

    def _replay_member_metadata(self, member_id: str, value: bytes | None) -> None:
        member = self.members.get(member_id)
        if value is None:
            if member is not None:
                self._set_owned(member, {}, {})
                del self.members[member_id]
                if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
                    del self.static_members[member.instance_id]
            return
        metadata = fmt.decode_member_metadata(value)
        if member is None:
            member = self.members[member_id] = ConsumerMember(member_id, metadata)
        else:
            if member.instance_id is not None and member.instance_id != metadata.instance_id:
                self.static_members.pop(member.instance_id, None)
            member.metadata = metadata
        if metadata.instance_id is not None:
            self.static_members[metadata.instance_id] = member_id

    def _replay_current_assignment(self, member_id: str, value: bytes | None) -> None:
        member = self.members.get(member_id)
        if member is None:
            if value is None:
                return
            member = self.members[member_id] = ConsumerMember(member_id, empty_metadata())
        assignment = fmt.decode_current_assignment(value) if value is not None else \
            fmt.CurrentAssignment(0, 0, MEMBER_STABLE)
        self._set_owned(member, assignment.assigned, assignment.pending_revocation)
        member.assignment = assignment

    def _set_owned(self, member: ConsumerMember, assigned: Partitions, pending: Partitions) -> None:
        for partitions in (member.assigned, member.pending_revocation):
            for topic_id, indexes in partitions.items():
                for index in indexes:
                    if self.owner.get((topic_id, index)) == member.member_id:
                        del self.owner[(topic_id, index)]
        for partitions in (assigned, pending):
            for topic_id, indexes in partitions.items():
                for index in indexes:
                    self.owner[(topic_id, index)] = member.member_id

    # -- records -------------------------------------------------------------------------------
    def member_tombstones(self, member_id: str) -> list[fmt.Record]:
        """The records removing a member, in Kafka's order: current, target, metadata."""
        return [fmt.tombstone(fmt.CURRENT_ASSIGNMENT, self.group_id, member_id),
                fmt.tombstone(fmt.TARGET_ASSIGNMENT_MEMBER, self.group_id, member_id),
                fmt.tombstone(fmt.MEMBER_METADATA, self.group_id, member_id)]

    def tombstones(self) -> list[fmt.Record]:
        """The records deleting the whole group (its members first, the group metadata last)."""
        records: list[fmt.Record] = []
        for member_id in self.members:
            records += self.member_tombstones(member_id)
        records += [fmt.tombstone(fmt.TARGET_ASSIGNMENT_METADATA, self.group_id),
                    fmt.tombstone(fmt.PARTITION_METADATA, self.group_id),
                    fmt.tombstone(fmt.GROUP_METADATA, self.group_id)]
        return records
