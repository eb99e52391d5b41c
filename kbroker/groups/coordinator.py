"""The classic group coordinator of a single broker, and the committed offsets it keeps.

All state changes are synchronous (no await between reading and writing state), driven by request
handlers and by timers (kbroker.groups.timers) that one coordinator-owned nursery serves. A parked
JoinGroup or SyncGroup is a handler awaiting its Waiter; the coordinator completes it when the
rebalance gets there. What Kafka persists is persisted the same way, in `__consumer_offsets`: offset
commits and group metadata (generation, protocol, leader, members with their assignments) are
appended as records in Kafka's format and read back at start, so a restart loses neither offsets nor
the members of a stable group (who go on heartbeating with their generation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import trio

from ..log import ORIGIN_COORDINATOR
from ..protocol import records as rec
from ..protocol.errors import ApiError, ErrorCode, ProtocolError
from . import records as fmt
from .classic import (COMPLETING_REBALANCE, DEAD, EMPTY, PREPARING_REBALANCE, STABLE, ClassicGroup, JoinResult,
                      Member, SyncResult, Waiter, now_ms)
from .timers import Timers

if TYPE_CHECKING:
    from ..broker import Broker

log = logging.getLogger("kbroker.groups")

OFFSETS_TOPIC = "__consumer_offsets"
# Kafka times out a new member's parked JoinGroup after 5 minutes (it cannot heartbeat yet)
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
UNKNOWN_MEMBER_ID = ""
_LOAD_READ_BYTES = 5 * 1024 * 1024


@dataclass(slots=True)
class OffsetAndMetadata:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1


def _append_error(error: int) -> int:
    """Kafka's mapping of a failed coordinator append to what the client is told."""
    if error in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.REQUEST_TIMED_OUT):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if error in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    if error in (ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.INVALID_FETCH_SIZE):
        return ErrorCode.UNKNOWN_SERVER_ERROR
    return error


def _heartbeat_key(group_id: str, member_id: str) -> tuple:
    return ("heartbeat", group_id, member_id)


def _join_key(group_id: str) -> tuple:
    return ("join", group_id)


def _sync_key(group_id: str) -> tuple:
    return ("sync", group_id)


class GroupCoordinator:
    def __init__(self, broker: Broker):
        self.broker = broker
        config = broker.config
        self.initial_rebalance_delay_ms: int = config.get("group.initial.rebalance.delay.ms")
        self.min_session_timeout_ms: int = config.get("group.min.session.timeout.ms")
        self.max_session_timeout_ms: int = config.get("group.max.session.timeout.ms")
        self.max_group_size: int = config.get("group.max.size")
        self.offsets_partitions: int = config.get("offsets.topic.num.partitions")
        self.offset_metadata_max_bytes: int = config.get("offset.metadata.max.bytes")
        self.retention_ms: int = config.get("offsets.retention.minutes") * 60_000
        self.retention_check_ms: int = config.get("offsets.retention.check.interval.ms")
        self.groups: dict[str, ClassicGroup] = {}
        self.offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = {}
        # transactional offset commits awaiting their transaction's marker: producer id -> group -> offsets
        self.pending_txn_offsets: dict[int, dict[str, dict[tuple[str, int], OffsetAndMetadata]]] = {}
        self.timers = Timers(behind_received_requests=True)
        self.loaded = False
        broker.topic_deletion_listeners.append(self.on_topic_deleted)

    # =========================================================================== lifecycle
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load the groups and offsets from the log, then serve timers until cancelled."""
        self.load()
        async with trio.open_nursery() as nursery:
            self.timers.attach(nursery)
            self._schedule_expiration()
            task_status.started()
            await trio.sleep_forever()

    def offsets_topic(self):
        """__consumer_offsets, or None until ensure_offsets_topic() created it."""
        return self.broker.metadata.get(OFFSETS_TOPIC)

    async def ensure_offsets_topic(self):
        """__consumer_offsets, created if missing: Kafka creates it on the first FindCoordinator. The
        handlers of requests that write to it call this first too (a client may skip FindCoordinator),
        so the coordinator's synchronous paths find it there; creating it never blocks the event loop."""
        return await self.broker.ensure_topic(OFFSETS_TOPIC, self.offsets_partitions, {
            "cleanup.policy": "compact",
            "compression.type": "producer",
            "segment.bytes": str(self.broker.config.get("offsets.topic.segment.bytes")),
        })

    def partition_for(self, group_id: str) -> int:
        topic = self.offsets_topic()
        partitions = topic.partitions if topic is not None else self.offsets_partitions
        return fmt.partition_for(group_id, partitions)

    # =========================================================================== persistence
    def _write(self, group_id: str, records: list[tuple[bytes, bytes | None]]) -> int:
        """Append the records to the group's partition of __consumer_offsets; the error code."""
        if not records:
            return ErrorCode.NONE
        topic = self.offsets_topic()
        if topic is None:  # handlers ensure it first; only a request racing its deletion gets here
            return _append_error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        try:
            partition_log = self.broker.partition_log(topic, fmt.partition_for(group_id, topic.partitions))
            batch = rec.build_batch([rec.Record(key, value) for key, value in records])
            partition_log.append(batch, leader_epoch=topic.leader_epoch, origin=ORIGIN_COORDINATOR)
        except ApiError as exc:
            log.warning("could not write group %s to %s: %s", group_id, OFFSETS_TOPIC, exc)
            return _append_error(exc.error_code if hasattr(exc, "error_code") else ErrorCode.UNKNOWN_SERVER_ERROR)
        except OSError as exc:
            log.warning("could not write group %s to %s: %s", group_id, OFFSETS_TOPIC, exc)
            return ErrorCode.NOT_COORDINATOR
        return ErrorCode.NONE

    def _group_record(self, group: ClassicGroup, assignment: dict[str, bytes] | None = None):
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

    def _empty_group_record(self, group: ClassicGroup):
        value = fmt.GroupMetadataValue("", 0, None, None,
                                       group.state_timestamp if group.state_timestamp is not None else -1, [])
        return fmt.encode_group_metadata_key(group.group_id), fmt.encode_group_metadata_value(value)

    def load(self) -> None:
        """Replay __consumer_offsets, as Kafka's coordinator does when it becomes leader."""
        topic = self.offsets_topic()
        if topic is not None:
            count = 0
            for partition in range(topic.partitions):
                partition_log = self.broker.partition_log(topic, partition)
                offset = partition_log.log_start_offset
                end = partition_log.log_end_offset
                while offset < end:
                    data = memoryview(partition_log.read_bytes(offset, _LOAD_READ_BYTES))
                    if not data:
                        break
                    last = offset
                    for header in rec.iter_batches(data, check=False):
                        last = header.next_offset
                        if header.position + header.size > len(data):
                            continue
                        batch = data[header.position:header.position + header.size]
                        if header.is_control:
                            if header.has_producer_id:
                                try:
                                    kind = rec.control_record_type(batch)
                                except ApiError:
                                    continue
                                if kind in (rec.CONTROL_COMMIT, rec.CONTROL_ABORT):
                                    self.complete_transaction(partition, header.producer_id,
                                                              kind == rec.CONTROL_COMMIT)
                            continue
                        pending = header.producer_id if header.is_transactional else None
                        for record in rec.decode_batch_records(batch, None):
                            self._replay(record.key, record.value, pending)
                            count += 1
                    if last <= offset:
                        break
                    offset = last
            log.info("loaded %d groups and offsets of %d groups from %d records of %s", len(self.groups),
                     len(self.offsets), count, OFFSETS_TOPIC)
        for group in self.groups.values():
            if group.state == STABLE:
                for member in group.members.values():
                    self._reschedule_heartbeat(group, member)
        self.loaded = True

    def _replay(self, key: bytes | None, value: bytes | None, producer_id: int | None = None) -> None:
        if key is None:
            return
        try:
            parsed = fmt.decode_key(key)
            if isinstance(parsed, fmt.OffsetCommitKey) and producer_id is not None:
                if value is not None:  # a transactional commit: pending until its marker
                    v = fmt.decode_offset_commit_value(value)
                    self.pending_txn_offsets.setdefault(producer_id, {}).setdefault(parsed.group, {})[
                        (parsed.topic, parsed.partition)] = OffsetAndMetadata(
                        v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp)
                return
            if isinstance(parsed, fmt.OffsetCommitKey):
                tp = (parsed.topic, parsed.partition)
                if value is None:
                    group_offsets = self.offsets.get(parsed.group)
                    if group_offsets is not None:
                        group_offsets.pop(tp, None)
                        if not group_offsets:
                            del self.offsets[parsed.group]
                    return
                v = fmt.decode_offset_commit_value(value)
                self.offsets.setdefault(parsed.group, {})[tp] = OffsetAndMetadata(
                    v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp)
                self.groups.setdefault(parsed.group, ClassicGroup(parsed.group))
            elif isinstance(parsed, fmt.GroupMetadataKey):
                if value is None:
                    self.groups.pop(parsed.group, None)
                    return
                self.groups[parsed.group] = self._group_from_record(parsed.group, fmt.decode_group_metadata_value(value))
        except (ProtocolError, fmt.RecordFormatError, UnicodeDecodeError) as exc:
            log.warning("skipping an unreadable %s record: %s", OFFSETS_TOPIC, exc)

    @staticmethod
    def _group_from_record(group_id: str, value: fmt.GroupMetadataValue) -> ClassicGroup:
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
            self._write(group_id, [self._group_record(group, {})])
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
            error = self._write(group_id, [self._empty_group_record(group)])
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
                error = self._write(group.group_id, [self._group_record(group)])
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
        error = self._write(group_id, [self._group_record(group, full)])
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

    # =========================================================================== offsets
    def _partition_exists(self, topic: str, partition: int) -> bool:
        t = self.broker.metadata.get(topic)
        return t is not None and 0 <= partition < t.partitions

    def commit_offsets(self, *, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                       retention_time_ms: int, topics: list[tuple[str, list[tuple[int, int, int, str | None]]]],
                       api_version: int) -> list[tuple[str, list[tuple[int, int]]]]:
        """topics: [(name, [(partition, offset, leader epoch, metadata)])] -> [(name, [(partition, error)])]."""
        def everywhere(error: int):
            return [(name, [(p[0], error) for p in parts]) for name, parts in topics]

        group = self.groups.get(group_id)  # Kafka takes commits for the group id "" too
        if group is None:
            if generation_id >= 0:
                return everywhere(ErrorCode.GROUP_ID_NOT_FOUND if api_version >= 9 else ErrorCode.ILLEGAL_GENERATION)
            group = self.groups[group_id] = ClassicGroup(group_id)  # a "simple" group: offsets only
        error = self._validate_offset_commit(group, member_id, group_instance_id, generation_id)
        if error:
            return everywhere(error)
        if group.is_in(STABLE, PREPARING_REBALANCE) and member_id in group.members:
            self._reschedule_heartbeat(group, group.members[member_id])
        now = now_ms()
        expire = now + retention_time_ms if retention_time_ms is not None and retention_time_ms >= 0 else -1
        results: list[tuple[str, list[tuple[int, int]]]] = []
        records: list[tuple[bytes, bytes | None]] = []
        accepted: list[tuple[tuple[str, int], OffsetAndMetadata]] = []
        for name, parts in topics:
            out = []
            for partition, offset, epoch, metadata in parts:
                if not self._partition_exists(name, partition):
                    out.append([partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION])
                elif metadata is not None and len(metadata.encode()) > self.offset_metadata_max_bytes:
                    out.append([partition, ErrorCode.OFFSET_METADATA_TOO_LARGE])
                else:
                    value = OffsetAndMetadata(offset, epoch if epoch is not None else -1, metadata or "", now, expire)
                    records.append((fmt.encode_offset_commit_key(group_id, name, partition),
                                    fmt.encode_offset_commit_value(fmt.OffsetCommitValue(
                                        value.offset, value.leader_epoch, value.metadata, now, expire))))
                    accepted.append(((name, partition), value))
                    out.append([partition, ErrorCode.NONE])
            results.append((name, out))
        error = self._write(group_id, records)
        if error:
            for _name, out in results:
                for item in out:
                    if item[1] == ErrorCode.NONE:
                        item[1] = error
        else:
            group_offsets = self.offsets.setdefault(group_id, {})
            for tp, value in accepted:
                group_offsets[tp] = value
        return [(name, [tuple(item) for item in out]) for name, out in results]

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

    # =========================================================================== transactional offsets
    def commit_transactional_offsets(self, *, group_id: str, producer_id: int, producer_epoch: int,
                                     generation_id: int, member_id: str, group_instance_id: str | None,
                                     topics: list[tuple[str, list[tuple[int, int, int, str | None]]]]
                                     ) -> list[tuple[str, list[tuple[int, int]]]]:
        """TxnOffsetCommit: the offsets are written to __consumer_offsets in a transactional batch of
        the producer and stay pending until the transaction's marker commits (or drops) them."""
        def everywhere(error: int):
            return [(name, [(p[0], error) for p in parts]) for name, parts in topics]

        if not group_id:
            return everywhere(ErrorCode.INVALID_GROUP_ID)
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return everywhere(ErrorCode.ILLEGAL_GENERATION)
            group = self.groups[group_id] = ClassicGroup(group_id)
        error = self._validate_offset_commit(group, member_id, group_instance_id, generation_id, transactional=True)
        if error:
            return everywhere(error)
        now = now_ms()
        results, records, accepted = [], [], []
        for name, parts in topics:
            out = []
            for partition, offset, epoch, metadata in parts:
                if metadata is not None and len(metadata.encode()) > self.offset_metadata_max_bytes:
                    out.append((partition, ErrorCode.OFFSET_METADATA_TOO_LARGE))
                    continue
                value = OffsetAndMetadata(offset, epoch if epoch is not None else -1, metadata or "", now)
                records.append((fmt.encode_offset_commit_key(group_id, name, partition),
                                fmt.encode_offset_commit_value(fmt.OffsetCommitValue(
                                    value.offset, value.leader_epoch, value.metadata, now))))
                accepted.append(((name, partition), value))
                out.append((partition, ErrorCode.NONE))
            results.append((name, out))
        if records:
            topic = self.offsets_topic()
            if topic is None:  # see _write
                return everywhere(_append_error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
            try:
                partition_log = self.broker.partition_log(topic, fmt.partition_for(group_id, topic.partitions))
                batch = rec.build_batch([rec.Record(k, v) for k, v in records], producer_id=producer_id,
                                        producer_epoch=producer_epoch, transactional=True)
                partition_log.append(batch, leader_epoch=topic.leader_epoch, origin=ORIGIN_COORDINATOR)
            except (ApiError, OSError) as exc:
                log.warning("could not write transactional offsets of group %s: %s", group_id, exc)
                code = exc.error_code if isinstance(exc, ApiError) else ErrorCode.NOT_COORDINATOR
                return everywhere(_append_error(code))
            pending = self.pending_txn_offsets.setdefault(producer_id, {}).setdefault(group_id, {})
            for tp, value in accepted:
                pending[tp] = value
        return results

    def complete_transaction(self, offsets_partition: int, producer_id: int, commit: bool) -> None:
        """A transaction marker was written to (or replayed from) a partition of __consumer_offsets:
        the producer's pending offsets of the groups in that partition are committed or dropped."""
        by_group = self.pending_txn_offsets.get(producer_id)
        if not by_group:
            return
        for group_id in [g for g in by_group if self.partition_for(g) == offsets_partition]:
            pending = by_group.pop(group_id)
            if commit:
                self.offsets.setdefault(group_id, {}).update(pending)
                self.groups.setdefault(group_id, ClassicGroup(group_id))
        if not by_group:
            del self.pending_txn_offsets[producer_id]

    def has_pending_offset(self, group_id: str, tp: tuple[str, int]) -> bool:
        return any(tp in by_group.get(group_id, ()) for by_group in self.pending_txn_offsets.values())

    def fetch_offsets(self, group_id: str, topics: list[tuple[str, list[int]]] | None, require_stable: bool = False
                      ) -> tuple[int, list[tuple[str, list[tuple[int, int, int, str, int]]]]]:
        """(group error, [(topic, [(partition, offset, leader epoch, metadata, error)])]); topics None = all.
        With ``require_stable``, a partition with a transactional commit pending is UNSTABLE_OFFSET_COMMIT."""
        group = self.groups.get(group_id)
        dead = group is None or group.state == DEAD
        committed = {} if dead else self.offsets.get(group_id, {})
        unstable = (lambda tp: self.has_pending_offset(group_id, tp)) if require_stable else (lambda tp: False)
        if topics is None:
            by_topic: dict[str, list] = {}
            for (name, partition), value in sorted(committed.items()):
                if unstable((name, partition)):
                    by_topic.setdefault(name, []).append((partition, -1, -1, "", ErrorCode.UNSTABLE_OFFSET_COMMIT))
                    continue
                by_topic.setdefault(name, []).append(
                    (partition, value.offset, value.leader_epoch, value.metadata, ErrorCode.NONE))
            return ErrorCode.NONE, list(by_topic.items())
        out = []
        for name, partitions in topics:
            parts = []
            for partition in partitions:
                value = committed.get((name, partition))
                if unstable((name, partition)):
                    parts.append((partition, -1, -1, "", ErrorCode.UNSTABLE_OFFSET_COMMIT))
                elif value is None:
                    parts.append((partition, -1, -1, "", ErrorCode.NONE))
                else:
                    parts.append((partition, value.offset, value.leader_epoch, value.metadata, ErrorCode.NONE))
            out.append((name, parts))
        return ErrorCode.NONE, out

    def delete_offsets(self, group_id: str, topics: list[tuple[str, list[int]]]
                       ) -> tuple[int, list[tuple[str, list[tuple[int, int]]]]]:
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID, []
        group = self.groups.get(group_id)
        if group is None or group.state == DEAD:
            return ErrorCode.GROUP_ID_NOT_FOUND, []
        if not group.is_empty and group.protocol_type != "consumer":
            return ErrorCode.NON_EMPTY_GROUP, []
        subscribed = group.subscribed_topics() if not group.is_empty else set()
        committed = self.offsets.get(group_id, {})
        records, removed, out = [], [], []
        for name, partitions in topics:
            parts = []
            for partition in partitions:
                if not self._partition_exists(name, partition):
                    parts.append((partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
                elif subscribed is None or name in subscribed:
                    parts.append((partition, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC))
                else:
                    if (name, partition) in committed:
                        records.append((fmt.encode_offset_commit_key(group_id, name, partition), None))
                        removed.append((name, partition))
                    parts.append((partition, ErrorCode.NONE))
            out.append((name, parts))
        error = self._write(group_id, records)
        if error:
            return error, []
        for tp in removed:
            committed.pop(tp, None)
        return ErrorCode.NONE, out

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

    def delete_groups(self, group_ids: list[str]) -> list[tuple[str, int]]:
        out = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if not group_id:
                error = ErrorCode.INVALID_GROUP_ID
            elif group is None or group.state == DEAD:
                error = ErrorCode.GROUP_ID_NOT_FOUND
            elif not group.is_empty:
                error = ErrorCode.NON_EMPTY_GROUP
            else:
                error = self._delete_group(group)
            out.append((group_id, error))
        return out

    def _delete_group(self, group: ClassicGroup) -> int:
        group_id = group.group_id
        records = [(fmt.encode_offset_commit_key(group_id, topic, partition), None)
                   for topic, partition in self.offsets.get(group_id, {})]
        records.append((fmt.encode_group_metadata_key(group_id), None))
        error = self._write(group_id, records)
        if error:
            return error
        self.offsets.pop(group_id, None)
        group.transition_to(DEAD)
        del self.groups[group_id]
        for key in (_join_key(group_id), _sync_key(group_id)):
            self.timers.cancel(key)
        log.info("deleted group %s", group_id)
        return ErrorCode.NONE

    def on_topic_deleted(self, topic) -> None:
        """A deleted topic's committed offsets go too (tombstones), as in Kafka."""
        if topic.name == OFFSETS_TOPIC:
            return
        for group_id, committed in list(self.offsets.items()):
            gone = [tp for tp in committed if tp[0] == topic.name]
            if gone and self._write(group_id, [(fmt.encode_offset_commit_key(group_id, t, p), None)
                                               for t, p in gone]) == ErrorCode.NONE:
                for tp in gone:
                    committed.pop(tp, None)

    # =========================================================================== retention
    def _schedule_expiration(self) -> None:
        self.timers.schedule(("offsets-retention",), self.retention_check_ms, self._expire_offsets_tick)

    def _expire_offsets_tick(self) -> None:
        try:
            self.expire_offsets()
        finally:
            self._schedule_expiration()

    def expire_offsets(self, now: int | None = None) -> int:
        """Kafka's offsets.retention.minutes: drop expired offsets, then empty groups left with none."""
        now = now_ms() if now is None else now
        removed = 0
        for group_id, group in list(self.groups.items()):
            committed = self.offsets.get(group_id, {})
            base = None
            if group.protocol_type:
                if group.state == EMPTY:
                    base = "state"
            else:
                base = "commit"
            expired = []
            if base is not None:
                for tp, value in committed.items():
                    if value.expire_timestamp >= 0:
                        gone = now >= value.expire_timestamp
                    else:
                        start = (group.state_timestamp if base == "state" and group.state_timestamp is not None
                                 else value.commit_timestamp)
                        gone = now - start >= self.retention_ms
                    if gone:
                        expired.append(tp)
            if expired:
                records = [(fmt.encode_offset_commit_key(group_id, t, p), None) for t, p in expired]
                if self._write(group_id, records) == ErrorCode.NONE:
                    for tp in expired:
                        committed.pop(tp, None)
                    removed += len(expired)
                    log.info("expired %d offsets of group %s", len(expired), group_id)
            if not committed:
                self.offsets.pop(group_id, None)
                if group.state == EMPTY:
                    self._delete_group(group)
        return removed
