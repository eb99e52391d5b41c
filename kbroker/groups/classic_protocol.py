"""The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) of the group coordinator,
and what an administrator sees of classic groups (ListGroups, DescribeGroups, DeleteGroups' checks).

Each method is one coordinator operation (kbroker.coordinator.runtime): synchronous, driven by a
request handler or by a timer of the runtime's Timers (heartbeat expiry, the join and sync phases'
deadlines, the initial rebalance delay). A parked JoinGroup or SyncGroup is a handler awaiting its
Waiter; an operation completes it when the rebalance gets there. Group metadata (generation,
protocol, leader, members with their assignments) is appended to the group's partition of
`__consumer_offsets` in Kafka's format when it changes, and replayed at start, so a restart loses
no member of a stable group (who goes on heartbeating with its generation). The group's state is
kbroker.groups.classic; committed offsets are the offset store's (kbroker.groups.offsets), and this
module only says who may commit (validate_offset_commit) and when a group's offsets expire.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable

from ..protocol.errors import ErrorCode
from . import records as fmt
from .classic import (COMPLETING_REBALANCE, DEAD, EMPTY, PREPARING_REBALANCE, STABLE, ClassicGroup, JoinResult,
                      Member, SyncResult, Waiter, empty_group_record, group_from_record, group_record)

if TYPE_CHECKING:
    from ..coordinator import CoordinatorRuntime

log = logging.getLogger("kbroker.groups")

# Kafka times out a new member's parked JoinGroup after 5 minutes (it cannot heartbeat yet)
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
UNKNOWN_MEMBER_ID = ""


def _heartbeat_key(group_id: str, member_id: str) -> tuple:
    return ("heartbeat", group_id, member_id)


def _join_key(group_id: str) -> tuple:
    return ("join", group_id)


def _sync_key(group_id: str) -> tuple:
    return ("sync", group_id)


class ClassicGroupProtocol:
    def __init__(self, runtime: CoordinatorRuntime, *, initial_rebalance_delay_ms: int, min_session_timeout_ms: int,
                 max_session_timeout_ms: int, max_group_size: int):
        self._runtime = runtime
        self.timers = runtime.timers
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.max_group_size = max_group_size
        self.groups: dict[str, ClassicGroup] = {}

    def _write(self, group_id: str, records: list[tuple[bytes, bytes | None]]) -> int:
        return self._runtime.append(group_id, records)

    # =========================================================================== records, loading
    @staticmethod
    def tombstone(group_id: str) -> tuple[bytes, None]:
        return fmt.encode_group_metadata_key(group_id), None

    def replay(self, group_id: str, value: bytes | None) -> None:
        """Apply a group metadata record read back from the log (or appended: a tombstone of a
        group converted to a consumer group, whose timers then stop)."""
        if value is None:
            self._cancel_timers(group_id)
            self.groups.pop(group_id, None)
        else:
            self.groups[group_id] = group_from_record(group_id, fmt.decode_group_metadata_value(value))

    def ensure_group(self, group_id: str) -> ClassicGroup:
        """The group, created Empty if unknown: a group with committed offsets exists ("simple" group)."""
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = ClassicGroup(group_id)
        return group

    def resume_heartbeats(self, groups=None) -> None:
        """After loading: the members of a stable group must go on heartbeating, or expire."""
        for group in (self.groups.values() if groups is None else groups):
            if group.state == STABLE:
                for member in group.members.values():
                    self._reschedule_heartbeat(group, member)

    # =========================================================================== timers
    def _reschedule_heartbeat(self, group: ClassicGroup, member: Member, timeout_ms: int | None = None) -> None:
        group_id, member_id = group.group_id, member.member_id
        self.timers.schedule(_heartbeat_key(group_id, member_id),
                             member.session_timeout_ms if timeout_ms is None else timeout_ms,
                             lambda: self._expire_heartbeat(group_id, member_id))

    def _expire_heartbeat(self, group_id: str, member_id: str) -> None:
        group = self.groups.get(group_id)
        if group is None or group.state == DEAD:
            return
        if member_id in group.pending_join:
            log.info("pending member %s of group %s removed after its session timeout", member_id, group_id)
            group.remove(member_id)
            if group.state == PREPARING_REBALANCE and group.has_all_members_joined():
                self._complete_join(group)
            return
        member = group.members.get(member_id)
        if member is not None and not member.has_satisfied_heartbeat():
            log.info("member %s of group %s failed (session timeout), removing it", member_id, group_id)
            self._remove_member_and_update(group, member)

    def _remove_member_and_update(self, group: ClassicGroup, member: Member) -> None:
        group.complete_join(member, JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID))
        group.complete_sync(member, SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        group.remove(member.member_id)
        if group.is_in(STABLE, COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(group, "member removed")
        elif group.state == PREPARING_REBALANCE and group.has_all_members_joined():
            self._complete_join(group)

    # =========================================================================== rebalance
    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup, reason: str) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, reason)
        else:
            self._maybe_complete_join_phase(group)

    def _maybe_complete_join_phase(self, group: ClassicGroup) -> None:
        if group.state != PREPARING_REBALANCE or group.previous_state == EMPTY:
            return
        if group.has_all_members_joined():
            self._complete_join(group)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.state == COMPLETING_REBALANCE:
            self._reset_and_propagate_assignment(group, ErrorCode.REBALANCE_IN_PROGRESS)
        self._remove_sync_expiration(group)
        initial = group.state == EMPTY
        group_id = group.group_id
        if initial:
            delay = self.initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            self.timers.schedule(_join_key(group_id), delay,
                                 lambda: self._try_complete_initial_rebalance(group_id, delay, remaining))
        group.transition_to(PREPARING_REBALANCE)
        log.info("preparing to rebalance group %s (generation %d): %s", group_id, group.generation_id, reason)
        if not initial:
            if group.has_all_members_joined():
                self._complete_join(group)
            else:
                self.timers.schedule(_join_key(group_id), group.rebalance_timeout_ms(),
                                     lambda: self._complete_join_by_id(group_id))

    def _try_complete_initial_rebalance(self, group_id: str, delay: int, remaining: int) -> None:
        group = self.groups.get(group_id)
        if group is None:
            return
        if group.new_member_added and remaining != 0:
            group.new_member_added = False
            new_delay = min(self.initial_rebalance_delay_ms, remaining)
            new_remaining = max(remaining - delay, 0)
            self.timers.schedule(_join_key(group_id), new_delay,
                                 lambda: self._try_complete_initial_rebalance(group_id, new_delay, new_remaining))
        else:
            self._complete_join(group)

    def _complete_join_by_id(self, group_id: str) -> None:
        group = self.groups.get(group_id)
        if group is not None:
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        group_id = group.group_id
        self.timers.cancel(_join_key(group_id))
        if group.state != PREPARING_REBALANCE:
            return
        for member in [m for m in group.not_yet_rejoined() if m.group_instance_id is None]:
            group.remove(member.member_id)
            self.timers.cancel(_heartbeat_key(group_id, member.member_id))
            log.info("group %s removed member %s, which did not rejoin", group_id, member.member_id)
        if group.state == DEAD:
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # nobody rejoined: wait another rebalance timeout for session timeouts to clear them out
            self.timers.schedule(_join_key(group_id), group.rebalance_timeout_ms(),
                                 lambda: self._complete_join_by_id(group_id))
            return
        group.init_next_generation()
        if group.state == EMPTY:
            log.info("group %s with generation %d is now empty", group_id, group.generation_id)
            self._write(group_id, [group_record(group, {})])
            return
        log.info("stabilized group %s generation %d (%s) with %d members", group_id, group.generation_id,
                 group.protocol_name, len(group.members))
        for member in list(group.members.values()):
            members = group.current_members() if group.is_leader(member.member_id) else []
            group.complete_join(member, JoinResult(
                ErrorCode.NONE, member.member_id, group.generation_id, group.protocol_type, group.protocol_name,
                group.leader_id or "", False, members))
            self._reschedule_heartbeat(group, member)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        generation = group.generation_id
        self.timers.schedule(_sync_key(group_id), group.rebalance_timeout_ms(),
                             lambda: self._expire_pending_sync(group_id, generation))

    def _expire_pending_sync(self, group_id: str, generation: int) -> None:
        group = self.groups.get(group_id)
        if group is None or group.generation_id != generation:
            return
        if group.is_in(COMPLETING_REBALANCE, STABLE) and group.pending_sync:
            pending = list(group.pending_sync)
            for member_id in pending:
                member = group.members.get(member_id)
                if member is not None:
                    group.complete_sync(member, SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
                group.remove(member_id)
                self.timers.cancel(_heartbeat_key(group_id, member_id))
            self._prepare_rebalance(group, f"removing {pending} on pending sync request expiration")

    def _remove_sync_expiration(self, group: ClassicGroup) -> None:
        group.pending_sync.clear()
        self.timers.cancel(_sync_key(group.group_id))

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if group.is_in(DEAD, EMPTY, PREPARING_REBALANCE) or not group.pending_sync:
            self.timers.cancel(_sync_key(group.group_id))

    def _reset_and_propagate_assignment(self, group: ClassicGroup, error: int) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _set_and_propagate_assignment(self, group: ClassicGroup, assignment: dict[str, bytes]) -> None:
        for member in group.members.values():
            member.assignment = assignment.get(member.member_id, b"")
        self._propagate_assignment(group, ErrorCode.NONE)

    def _propagate_assignment(self, group: ClassicGroup, error: int) -> None:
        ok = error == ErrorCode.NONE
        for member in list(group.members.values()):
            result = SyncResult(error, group.protocol_type if ok else None, group.protocol_name if ok else None,
                                member.assignment)
            if group.complete_sync(member, result):
                self._reschedule_heartbeat(group, member)

    # =========================================================================== JoinGroup
    def join_group(self, *, group_id: str, member_id: str, group_instance_id: str | None, protocol_type: str,
                   protocols: list[tuple[str, bytes]], session_timeout_ms: int, rebalance_timeout_ms: int,
                   client_id: str, client_host: str, api_version: int, waiter: Waiter) -> None:
        def fail(error: int, member: str = member_id) -> None:
            waiter.complete(JoinResult(error, member))

        if not group_id:
            return fail(ErrorCode.INVALID_GROUP_ID)
        if not self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms:
            return fail(ErrorCode.INVALID_SESSION_TIMEOUT)
        unknown = member_id == UNKNOWN_MEMBER_ID
        group = self.groups.get(group_id)
        new_group = group is None
        if group is None:
            if not unknown:
                return fail(ErrorCode.UNKNOWN_MEMBER_ID)
            group = self.groups[group_id] = ClassicGroup(group_id)
        args = dict(group_instance_id=group_instance_id, protocol_type=protocol_type, protocols=protocols,
                    session_timeout_ms=session_timeout_ms, rebalance_timeout_ms=rebalance_timeout_ms,
                    client_id=client_id, client_host=client_host, api_version=api_version, waiter=waiter)
        if not self._accept_joining_member(group, member_id):
            group.remove(member_id)
            fail(ErrorCode.GROUP_MAX_SIZE_REACHED, UNKNOWN_MEMBER_ID)
        elif unknown:
            self._join_new_member(group, **args)
        else:
            self._join_existing_member(group, member_id, **args)
        if new_group:
            error = self._write(group_id, [empty_group_record(group)])
            if error:
                waiter.complete(JoinResult(error, UNKNOWN_MEMBER_ID))

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        if group.is_in(EMPTY, DEAD):
            return True
        member = group.members.get(member_id)
        if group.state == PREPARING_REBALANCE:
            return (member is not None and member.awaiting_join) or group.num_awaiting_join < self.max_group_size
        return member is not None or len(group.members) < self.max_group_size

    def _join_new_member(self, group: ClassicGroup, *, group_instance_id, protocol_type, protocols,
                         session_timeout_ms, rebalance_timeout_ms, client_id, client_host, api_version,
                         waiter) -> None:
        if group.state == DEAD:
            waiter.complete(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, UNKNOWN_MEMBER_ID))
            return
        if not group.supports_protocols(protocol_type, [name for name, _ in protocols]):
            waiter.complete(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER_ID))
            return
        new_member_id = group.generate_member_id(client_id, group_instance_id)
        if group_instance_id is not None:
            existing = group.static_members.get(group_instance_id)
            if existing is not None:
                log.info("static member %s of group %s rejoins with a new member id %s (was %s)", group_instance_id,
                         group.group_id, new_member_id, existing)
                self._update_static_member(group, existing, new_member_id, group_instance_id, protocols,
                                           session_timeout_ms, rebalance_timeout_ms, api_version, waiter)
            else:
                self._add_member(group, new_member_id, group_instance_id, protocol_type, protocols, session_timeout_ms,
                                 rebalance_timeout_ms, client_id, client_host, waiter)
        elif api_version >= 4:
            # KIP-394: the member must come back with the id it is given, so retries never leave ghosts
            group.add_pending_member(new_member_id)
            group_id = group.group_id
            self.timers.schedule(_heartbeat_key(group_id, new_member_id), session_timeout_ms,
                                 lambda: self._expire_heartbeat(group_id, new_member_id))
            waiter.complete(JoinResult(ErrorCode.MEMBER_ID_REQUIRED, new_member_id))
        else:
            self._add_member(group, new_member_id, None, protocol_type, protocols, session_timeout_ms,
                             rebalance_timeout_ms, client_id, client_host, waiter)

    def _join_existing_member(self, group: ClassicGroup, member_id: str, *, group_instance_id, protocol_type,
                              protocols, session_timeout_ms, rebalance_timeout_ms, client_id, client_host,
                              api_version, waiter) -> None:
        if group.state == DEAD:
            waiter.complete(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, member_id))
            return
        if not group.supports_protocols(protocol_type, [name for name, _ in protocols]):
            waiter.complete(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
            return
        if member_id in group.pending_join:
            if group_instance_id is not None:
                waiter.complete(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
                return
            self._add_member(group, member_id, None, protocol_type, protocols, session_timeout_ms,
                             rebalance_timeout_ms, client_id, client_host, waiter)
            return
        error = group.validate_member(member_id, group_instance_id)
        if error:
            waiter.complete(JoinResult(error, member_id))
            return
        member = group.members[member_id]

        def current_generation(with_members: bool) -> JoinResult:
            return JoinResult(ErrorCode.NONE, member_id, group.generation_id, group.protocol_type, group.protocol_name,
                              group.leader_id or "", False, group.current_members() if with_members else [])

        def update() -> None:
            group.update_member(member, protocols, rebalance_timeout_ms, session_timeout_ms, waiter)
            self._maybe_prepare_rebalance_or_complete_join(group, f"member {member_id} rejoins")

        if group.state == PREPARING_REBALANCE:
            update()
        elif group.state == COMPLETING_REBALANCE:
            if member.matches(protocols):
                # it missed the JoinGroup response: give it the current generation again
                waiter.complete(current_generation(group.is_leader(member_id)))
            else:
                update()
        elif group.state == STABLE:
            if group.is_leader(member_id) or not member.matches(protocols):
                update()
            else:
                waiter.complete(current_generation(False))
        else:
            waiter.complete(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))

    def _add_member(self, group: ClassicGroup, member_id: str, group_instance_id: str | None, protocol_type: str,
                    protocols: list[tuple[str, bytes]], session_timeout_ms: int, rebalance_timeout_ms: int,
                    client_id: str, client_host: str, waiter: Waiter) -> None:
        member = Member(member_id, group_instance_id, client_id, client_host, rebalance_timeout_ms,
                        session_timeout_ms, protocol_type, protocols, is_new=True)
        if group.state == PREPARING_REBALANCE and group.previous_state == EMPTY:
            group.new_member_added = True
        group.add(member, waiter)
        # a new member cannot heartbeat while parked; time its join out so retries leave no ghosts
        self._reschedule_heartbeat(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance_or_complete_join(group, f"adding new member {member_id}")

    def _update_static_member(self, group: ClassicGroup, old_member_id: str, new_member_id: str, instance_id: str,
                              protocols, session_timeout_ms: int, rebalance_timeout_ms: int, api_version: int,
                              waiter: Waiter) -> None:
        current_leader = group.leader_id
        member = group.replace_static_member(instance_id, old_member_id, new_member_id)
        self.timers.cancel(_heartbeat_key(group.group_id, old_member_id))
        self._reschedule_heartbeat(group, member)
        group.pending_sync.discard(old_member_id)
        group.update_member(member, protocols, rebalance_timeout_ms, session_timeout_ms, waiter)
        if group.state == STABLE:
            if group.protocol_name == group.select_protocol():
                # same protocol: no rebalance, the returning static member keeps its assignment
                error = self._write(group.group_id, [group_record(group)])
                if error:
                    group.complete_join(member, JoinResult(error, UNKNOWN_MEMBER_ID))
                elif api_version >= 9:
                    leader = group.is_leader(new_member_id)
                    group.complete_join(member, JoinResult(
                        ErrorCode.NONE, new_member_id, group.generation_id, group.protocol_type, group.protocol_name,
                        group.leader_id or "", leader, group.current_members() if leader else []))
                else:
                    group.complete_join(member, JoinResult(
                        ErrorCode.NONE, new_member_id, group.generation_id, group.protocol_type, group.protocol_name,
                        current_leader or "", False, []))
            else:
                self._maybe_prepare_rebalance_or_complete_join(group, f"static member {instance_id} changed protocols")
        elif group.state == COMPLETING_REBALANCE:
            self._prepare_rebalance(group, f"static member {instance_id} rejoined during the sync phase")
        else:
            self._maybe_complete_join_phase(group)

    def abandon_join(self, group_id: str, waiter: Waiter) -> None:
        """A parked JoinGroup's handler gave up (deadline or shutdown): detach it."""
        group = self.groups.get(group_id)
        if group is None:
            return
        for member in group.members.values():
            if member.join_waiter is waiter:
                member.join_waiter = None
                group.num_awaiting_join -= 1
                if group.state == PREPARING_REBALANCE and group.has_all_members_joined():
                    self._complete_join(group)
                return

    def abandon_sync(self, group_id: str, waiter: Waiter) -> None:
        group = self.groups.get(group_id)
        if group is None:
            return
        for member in group.members.values():
            if member.sync_waiter is waiter:
                member.sync_waiter = None
                return

    # =========================================================================== SyncGroup
    def sync_group(self, *, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                   protocol_type: str | None, protocol_name: str | None, assignments: dict[str, bytes],
                   waiter: Waiter) -> None:
        def fail(error: int) -> None:
            waiter.complete(SyncResult(error))

        if not group_id:
            return fail(ErrorCode.INVALID_GROUP_ID)
        group = self.groups.get(group_id)
        if group is None or group.state == EMPTY:
            return fail(ErrorCode.UNKNOWN_MEMBER_ID)
        if group.state == DEAD:
            return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        error = group.validate_member(member_id, group_instance_id)
        if error:
            return fail(error)
        if generation_id != group.generation_id:
            return fail(ErrorCode.ILLEGAL_GENERATION)
        if ((protocol_type is not None and group.protocol_type is not None and protocol_type != group.protocol_type)
                or (protocol_name is not None and group.protocol_name is not None
                    and protocol_name != group.protocol_name)):
            return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        member = group.members[member_id]
        if group.state == PREPARING_REBALANCE:
            return fail(ErrorCode.REBALANCE_IN_PROGRESS)
        if group.state == STABLE:
            self._remove_pending_sync_member(group, member_id)
            waiter.complete(SyncResult(ErrorCode.NONE, group.protocol_type, group.protocol_name, member.assignment))
            return
        # CompletingRebalance: park until the leader's assignment is stored
        if member.sync_waiter is not None and member.sync_waiter is not waiter:
            member.sync_waiter.complete(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        member.sync_waiter = waiter
        self._remove_pending_sync_member(group, member_id)
        if not group.is_leader(member_id):
            return
        full = {m: assignments.get(m, b"") for m in group.members}
        error = self._write(group_id, [group_record(group, full)])
        if group.state == COMPLETING_REBALANCE and generation_id == group.generation_id:
            if error:
                self._reset_and_propagate_assignment(group, error)
                self._maybe_prepare_rebalance_or_complete_join(group, f"error {error} storing the assignment")
            else:
                self._set_and_propagate_assignment(group, full)
                group.transition_to(STABLE)

    # =========================================================================== Heartbeat
    def heartbeat(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None) -> int:
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.state == DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = group.validate_member(member_id, group_instance_id)
        if error:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.state == EMPTY:
            return ErrorCode.UNKNOWN_MEMBER_ID
        self._reschedule_heartbeat(group, group.members[member_id])
        if group.state == PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    # =========================================================================== LeaveGroup
    def leave_group(self, group_id: str, members: list[tuple[str, str | None]]
                    ) -> tuple[int, list[tuple[str, str | None, int]]]:
        """(top-level error, [(member id, instance id, error)]) for the members asked to leave."""
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID, []
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.NONE, [(m, i, ErrorCode.UNKNOWN_MEMBER_ID) for m, i in members]
        if group.state == DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        results: list[tuple[str, str | None, int]] = []
        left = []
        for member_id, instance_id in members:
            if member_id == UNKNOWN_MEMBER_ID:
                # an administrator removing a static member by its instance id
                existing = group.static_members.get(instance_id) if instance_id is not None else None
                if existing is not None:
                    self._remove_current_member(group, existing)
                    results.append((member_id, instance_id, ErrorCode.NONE))
                    left.append(existing)
                else:
                    results.append((member_id, instance_id, ErrorCode.UNKNOWN_MEMBER_ID))
            elif member_id in group.pending_join:
                group.remove(member_id)
                self.timers.cancel(_heartbeat_key(group_id, member_id))
                results.append((member_id, instance_id, ErrorCode.NONE))
                left.append(member_id)
            else:
                error = group.validate_member(member_id, instance_id)
                if not error:
                    self._remove_current_member(group, member_id)
                    left.append(member_id)
                results.append((member_id, instance_id, error))
        if left:
            log.info("members %s left group %s", left, group_id)
            if group.is_in(STABLE, COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group, f"members {left} left")
            elif group.state == PREPARING_REBALANCE:
                self._maybe_complete_join_phase(group)
        return ErrorCode.NONE, results

    def _remove_current_member(self, group: ClassicGroup, member_id: str) -> None:
        member = group.members[member_id]
        self.timers.cancel(_heartbeat_key(group.group_id, member_id))
        group.complete_join(member, JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID))
        group.complete_sync(member, SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        group.remove(member_id)

    # =========================================================================== offsets: who may commit
    def validate_offset_commit(self, group_id: str, generation_id: int, member_id: str,
                               group_instance_id: str | None, api_version: int) -> int:
        """May this member commit offsets for the group (OffsetCommit)? A commit outside any
        generation creates a "simple" group, one that only has offsets."""
        group = self.groups.get(group_id)  # Kafka takes commits for the group id "" too
        if group is None:
            if generation_id >= 0:
                return ErrorCode.GROUP_ID_NOT_FOUND if api_version >= 9 else ErrorCode.ILLEGAL_GENERATION
            group = self.groups[group_id] = ClassicGroup(group_id)  # a "simple" group: offsets only
        error = self._validate_offset_commit(group, member_id, group_instance_id, generation_id)
        if error:
            return error
        if group.is_in(STABLE, PREPARING_REBALANCE) and member_id in group.members:
            self._reschedule_heartbeat(group, group.members[member_id])
        return ErrorCode.NONE

    def validate_transactional_offset_commit(self, group_id: str, generation_id: int, member_id: str,
                                             group_instance_id: str | None) -> int:
        """May this member commit offsets in a transaction (TxnOffsetCommit)?"""
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return ErrorCode.ILLEGAL_GENERATION
            group = self.groups[group_id] = ClassicGroup(group_id)
        return self._validate_offset_commit(group, member_id, group_instance_id, generation_id, transactional=True)

    @staticmethod
    def _validate_offset_commit(group: ClassicGroup, member_id: str, instance_id: str | None, generation: int,
                                transactional: bool = False) -> int:
        if group.state == DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if generation < 0 and group.state == EMPTY:
            return ErrorCode.NONE
        if generation >= 0 or member_id or instance_id is not None:
            error = group.validate_member(member_id, instance_id)
            if error:
                return error
            if generation != group.generation_id:
                return ErrorCode.ILLEGAL_GENERATION
        elif group.state != EMPTY and not transactional:
            # old TxnOffsetCommit versions carry no member: they are accepted whatever the group's state
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.state == COMPLETING_REBALANCE and not transactional:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE


    def offset_delete_check(self, group_id: str) -> tuple[int, set[str] | None]:
        """(error, the topics the group subscribes to) for an OffsetDelete: None when the members'
        subscriptions cannot be read (another protocol type), so every topic counts as subscribed."""
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID, None
        group = self.groups.get(group_id)
        if group is None or group.state == DEAD:
            return ErrorCode.GROUP_ID_NOT_FOUND, None
        if not group.is_empty and group.protocol_type != "consumer":
            return ErrorCode.NON_EMPTY_GROUP, None
        return ErrorCode.NONE, group.subscribed_topics() if not group.is_empty else set()

    def is_alive(self, group_id: str) -> bool:
        group = self.groups.get(group_id)
        return group is not None and group.state != DEAD

    @staticmethod
    def offsets_expire_since(group: ClassicGroup) -> tuple[bool, int | None]:
        """(do the group's offsets expire now, since when): a group with a protocol keeps them while
        it has members and, once Empty, counts retention from then; a simple group from each commit."""
        if not group.protocol_type:
            return True, None
        if group.state != EMPTY:
            return False, None
        return True, group.state_timestamp

    # =========================================================================== admin
    def list_groups(self, states: Iterable[str] = (), types: Iterable[str] = ()) -> list[tuple[str, str, str, str]]:
        states = {s.strip().lower() for s in states}
        types = {t.strip().lower() for t in types}
        out = []
        for group in self.groups.values():
            if states and group.state.lower() not in states:
                continue
            if types and "classic" not in types:
                continue
            out.append((group.group_id, group.protocol_type or "", group.state, "classic"))
        return out

    def describe_group(self, group_id: str):
        """(error, state, protocol type, protocol data, [(member id, instance id, client id, host, metadata,
        assignment)])."""
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.NONE, DEAD, "", "", []
        stable = group.state == STABLE
        members = [(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                    m.metadata(group.protocol_name) if stable else b"", m.assignment if stable else b"")
                   for m in group.members.values()]
        return (ErrorCode.NONE, group.state, group.protocol_type or "",
                (group.protocol_name or "") if stable else "", members)


    def delete_check(self, group_id: str) -> int:
        """May the group be deleted (DeleteGroups)?"""
        group = self.groups.get(group_id)
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        if group is None or group.state == DEAD:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if not group.is_empty:
            return ErrorCode.NON_EMPTY_GROUP
        return ErrorCode.NONE

    def unload_group(self, group_id: str) -> None:
        """Another broker coordinates the group now: forget it here, with its timers (its members'
        next requests here are NOT_COORDINATOR; parked joins and syncs end at their deadlines)."""
        group = self.groups.get(group_id)
        if group is not None:
            self._cancel_timers(group_id)
            del self.groups[group_id]

    def _cancel_timers(self, group_id: str) -> None:
        group = self.groups.get(group_id)
        for key in (_join_key(group_id), _sync_key(group_id)):
            self.timers.cancel(key)
        for member_id in (list(group.members) + list(group.pending_join)) if group is not None else []:
            self.timers.cancel(_heartbeat_key(group_id, member_id))

    # =========================================================================== online migration
    @staticmethod
    def answer_parked(group: ClassicGroup, error: int) -> None:
        """Answer every parked JoinGroup and SyncGroup of the group with ``error``."""
        for member in group.members.values():
            group.complete_join(member, JoinResult(error, member.member_id))
            group.complete_sync(member, SyncResult(error))

    def adopt_downgraded(self, group: ClassicGroup, rebalance: bool = True) -> None:
        """A consumer group turned back into this Stable classic group (its record is appended):
        its members heartbeat here now, and rejoin for the rebalance that starts at once."""
        self.groups[group.group_id] = group
        for member in group.members.values():
            self._reschedule_heartbeat(group, member)
        if rebalance:
            self._prepare_rebalance(group, f"downgrade of group {group.group_id} from consumer to classic")

    def remove_group(self, group: ClassicGroup) -> None:
        """The group's tombstone was appended: it is gone, and so are its join and sync deadlines."""
        group_id = group.group_id
        group.transition_to(DEAD)
        del self.groups[group_id]
        for key in (_join_key(group_id), _sync_key(group_id)):
            self.timers.cancel(key)
        log.info("deleted group %s", group_id)
