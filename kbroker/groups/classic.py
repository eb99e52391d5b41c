"""A classic consumer group's state: its members, generation, leader and protocol.

States, as Kafka names them: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and Dead
(deleted). This module only keeps state and answers questions about it, and converts a group to and
from its group metadata record (kbroker.groups.records); what happens on a join, sync, heartbeat or
timeout is the classic protocol's (kbroker.groups.classic_protocol).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import trio

from ..protocol.errors import ErrorCode
from . import records as fmt

EMPTY = "Empty"
PREPARING_REBALANCE = "PreparingRebalance"
COMPLETING_REBALANCE = "CompletingRebalance"
STABLE = "Stable"
DEAD = "Dead"
STATES = (EMPTY, PREPARING_REBALANCE, COMPLETING_REBALANCE, STABLE, DEAD)

_VALID_PREVIOUS = {
    PREPARING_REBALANCE: {STABLE, COMPLETING_REBALANCE, EMPTY},
    COMPLETING_REBALANCE: {PREPARING_REBALANCE},
    STABLE: {COMPLETING_REBALANCE},
    EMPTY: {PREPARING_REBALANCE},
    DEAD: set(STATES),
}


class Waiter:
    """A parked JoinGroup or SyncGroup: the handler awaits the event, the coordinator completes it."""

    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: Any = None

    @property
    def done(self) -> bool:
        return self.event.is_set()

    def complete(self, result: Any) -> bool:
        if self.event.is_set():
            return False
        self.result = result
        self.event.set()
        return True


@dataclass(slots=True)
class JoinResult:
    error: int
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    skip_assignment: bool = False
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class SyncResult:
    error: int
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(eq=False)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    join_waiter: Waiter | None = None
    sync_waiter: Waiter | None = None
    is_new: bool = False

    @property
    def awaiting_join(self) -> bool:
        return self.join_waiter is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_waiter is not None

    def metadata(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return protocols == self.protocols

    def vote(self, candidates: set[str]) -> str:
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError("member supports none of the candidate protocols")

    def has_satisfied_heartbeat(self) -> bool:
        if self.is_new:
            return False
        return self.awaiting_join or self.awaiting_sync


def now_ms() -> int:
    return int(time.time() * 1000)


class ClassicGroup:
    def __init__(self, group_id: str):
        self.group_id = group_id
        self.state = EMPTY
        self.previous_state: str | None = None
        self.state_timestamp: int | None = None
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}
        self.pending_join: set[str] = set()
        self.pending_sync: set[str] = set()
        self.num_awaiting_join = 0
        self.supported_protocols: Counter[str] = Counter()
        self.new_member_added = False

    # -- state ---------------------------------------------------------------------------------
    def is_in(self, *states: str) -> bool:
        return self.state in states

    def transition_to(self, state: str) -> None:
        if self.state not in _VALID_PREVIOUS[state]:
            raise AssertionError(f"group {self.group_id}: invalid transition {self.state} -> {state}")
        self.previous_state, self.state = self.state, state
        self.state_timestamp = now_ms()

    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS[PREPARING_REBALANCE]

    @property
    def is_empty(self) -> bool:
        return self.state == EMPTY

    # -- members -------------------------------------------------------------------------------
    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def add(self, member: Member, waiter: Waiter | None = None) -> None:
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.supported_protocols.update(name for name, _ in member.protocols)
        member.join_waiter = waiter
        if waiter is not None:
            self.num_awaiting_join += 1
        self.pending_join.discard(member.member_id)

    def remove(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        if member is not None:
            self.supported_protocols.subtract(name for name, _ in member.protocols)
            if member.awaiting_join:
                self.num_awaiting_join -= 1
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_join.discard(member_id)
        self.pending_sync.discard(member_id)

    def update_member(self, member: Member, protocols: list[tuple[str, bytes]], rebalance_timeout_ms: int,
                      session_timeout_ms: int, waiter: Waiter | None) -> None:
        self.supported_protocols.subtract(name for name, _ in member.protocols)
        member.protocols = protocols
        self.supported_protocols.update(name for name, _ in protocols)
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        if waiter is not None and not member.awaiting_join:
            self.num_awaiting_join += 1
        elif waiter is None and member.awaiting_join:
            self.num_awaiting_join -= 1
        old = member.join_waiter
        member.join_waiter = waiter
        if old is not None and old is not waiter:
            # a retried JoinGroup replaces a parked one; the old request is answered so it never hangs
            old.complete(JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id))

    def complete_join(self, member: Member, result: JoinResult) -> bool:
        waiter = member.join_waiter
        if waiter is None:
            return False
        member.join_waiter = None
        self.num_awaiting_join -= 1
        waiter.complete(result)
        return True

    def complete_sync(self, member: Member, result: SyncResult) -> bool:
        waiter = member.sync_waiter
        if waiter is None:
            return False
        member.sync_waiter = None
        waiter.complete(result)
        return True

    def replace_static_member(self, instance_id: str, old_member_id: str, new_member_id: str) -> Member:
        old = self.members.pop(old_member_id)
        self.complete_join(old, JoinResult(ErrorCode.FENCED_INSTANCE_ID, old_member_id))
        self.complete_sync(old, SyncResult(ErrorCode.FENCED_INSTANCE_ID))
        new = Member(new_member_id, old.group_instance_id, old.client_id, old.client_host, old.rebalance_timeout_ms,
                     old.session_timeout_ms, old.protocol_type, old.protocols, old.assignment)
        self.members[new_member_id] = new
        if self.leader_id == old_member_id:
            self.leader_id = new_member_id
        self.static_members[instance_id] = new_member_id
        return new

    def add_pending_member(self, member_id: str) -> None:
        self.pending_join.add(member_id)

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.num_awaiting_join and not self.pending_join

    def not_yet_rejoined(self) -> list[Member]:
        return [m for m in self.members.values() if not m.awaiting_join]

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def generate_member_id(self, client_id: str | None, instance_id: str | None) -> str:
        prefix = instance_id if instance_id is not None else (client_id or "")
        return f"{prefix}-{uuid.uuid4()}"

    def validate_member(self, member_id: str, instance_id: str | None) -> int:
        if instance_id is not None:
            existing = self.static_members.get(instance_id)
            if existing is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if existing != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
        if member_id not in self.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return ErrorCode.NONE

    def maybe_elect_new_joined_leader(self) -> bool:
        if self.leader_id is None:
            return False
        leader = self.members.get(self.leader_id)
        if leader is not None and leader.awaiting_join:
            return True
        for member in self.members.values():
            if member.awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    # -- protocols -----------------------------------------------------------------------------
    def candidate_protocols(self) -> set[str]:
        n = len(self.members)
        return {name for name, count in self.supported_protocols.items() if count == n}

    def select_protocol(self) -> str:
        candidates = self.candidate_protocols()
        votes: Counter[str] = Counter(m.vote(candidates) for m in self.members.values())
        return max(votes.items(), key=lambda item: item[1])[0]

    def supports_protocols(self, protocol_type: str, names: list[str]) -> bool:
        if self.state == EMPTY:
            return bool(protocol_type) and bool(names)
        n = len(self.members)
        return self.protocol_type == protocol_type and any(self.supported_protocols.get(x, 0) == n for x in names)

    def init_next_generation(self) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition_to(COMPLETING_REBALANCE)
        else:
            self.protocol_name = None
            self.transition_to(EMPTY)
        self.pending_sync.clear()

    def current_members(self) -> list[tuple[str, str | None, bytes]]:
        return [(m.member_id, m.group_instance_id, m.metadata(self.protocol_name)) for m in self.members.values()]

    def subscribed_topics(self) -> set[str] | None:
        """The topics the members subscribe to, when known (consumer protocol), else None."""
        if not self.members:
            return set()
        if self.protocol_type != "consumer" or self.protocol_name is None:
            return None
        from ..protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
        from ..protocol.primitives import Reader
        topics: set[str] = set()
        try:
            for member in self.members.values():
                r = Reader(member.metadata(self.protocol_name))
                version = r.int16()
                sub = ConsumerProtocolSubscription.decode(r, min(version, ConsumerProtocolSubscription.VERSIONS[1]))
                topics.update(sub.topics)
        except Exception:
            return None
        return topics


# ------------------------------------------------------------------------------ group metadata records
def group_record(group: ClassicGroup, assignment: dict[str, bytes] | None = None) -> tuple[bytes, bytes]:
    """The group's metadata record (key, value); ``assignment`` overrides the members' own."""
    members = []
    for m in group.members.values():
        members.append(fmt.MemberMetadata(
            m.member_id, m.group_instance_id, m.client_id, m.client_host, m.rebalance_timeout_ms,
            m.session_timeout_ms, m.metadata(group.protocol_name),
            (assignment or {}).get(m.member_id, m.assignment)))
    value = fmt.GroupMetadataValue(
        group.protocol_type or "", group.generation_id, group.protocol_name, group.leader_id,
        group.state_timestamp if group.state_timestamp is not None else -1, members)
    return fmt.encode_group_metadata_key(group.group_id), fmt.encode_group_metadata_value(value)


def empty_group_record(group: ClassicGroup) -> tuple[bytes, bytes]:
    """The record of a group just created: no protocol, no members."""
    value = fmt.GroupMetadataValue("", 0, None, None,
                                   group.state_timestamp if group.state_timestamp is not None else -1, [])
    return fmt.encode_group_metadata_key(group.group_id), fmt.encode_group_metadata_value(value)


def group_from_record(group_id: str, value: fmt.GroupMetadataValue) -> ClassicGroup:
    """The group a metadata record read back describes: Stable with its members, or Empty."""
    group = ClassicGroup(group_id)
    group.generation_id = value.generation
    group.protocol_type = value.protocol_type or None
    group.protocol_name = value.protocol
    group.leader_id = value.leader
    group.state_timestamp = value.current_state_timestamp if value.current_state_timestamp >= 0 else None
    for m in value.members:
        member = Member(m.member_id, m.group_instance_id, m.client_id, m.client_host, m.rebalance_timeout,
                        m.session_timeout, group.protocol_type or "", [(value.protocol or "", m.subscription)],
                        m.assignment)
        group.members[m.member_id] = member
        group.supported_protocols.update([value.protocol or ""])
        if m.group_instance_id is not None:
            group.static_members[m.group_instance_id] = m.member_id
    group.state = STABLE if group.members else EMPTY
    if group.leader_id not in group.members:
        group.leader_id = next(iter(group.members), None)
    return group
