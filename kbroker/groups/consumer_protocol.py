"""The KIP-848 consumer group protocol (ConsumerGroupHeartbeat, ConsumerGroupDescribe) of the group
coordinator, as Kafka 4.4's GroupMetadataManager runs it.

A member joins with member epoch 0 and its subscription (topic names, or a regular expression),
then heartbeats every `group.consumer.heartbeat.interval.ms` with its epoch and the partitions it
owns. Each heartbeat is one coordinator operation (kbroker.coordinator.runtime), in three steps:
1. the member's subscription is updated; if it changed, or the subscribed topics' metadata changed
   (a topic created that a regex matches, partitions added), the group epoch is bumped;
2. if the group epoch is ahead of the target assignment's, the server-side assignor (`uniform` or
   `range`, kbroker.groups.assignors) computes a new target assignment for that epoch;
3. the member is reconciled towards its target (kbroker.groups.reconciliation): it is first told
   to revoke what it must give up, keeps its epoch until it did, and then moves to the target epoch
   with the partitions nobody else owns any more.
The records of the change (Kafka 4.4's formats, kbroker.groups.consumer_records) are appended as
one batch to the group's partition of `__consumer_offsets` and only then replayed into the group
(kbroker.groups.consumer_group), so memory is what a restart reloads.

Timers: a member that does not heartbeat within `group.consumer.session.timeout.ms` is fenced
(removed, the group epoch bumped, its partitions go to the others); one that does not revoke within
its rebalance timeout likewise. Leaving is a heartbeat with epoch -1; a static member
(`group.instance.id`) may leave with -2, keeping its assignment for a new instance with the same id
that joins within the session timeout.

Upgrade and downgrade (Kafka 4.4's rules, `group.consumer.migration.policy`): the first
consumer-protocol member of an empty classic group (or a group with only committed offsets) turns
it into a consumer group, and a classic JoinGroup to an empty consumer group turns it back
(kbroker.groups.coordinator). A non-empty classic group of the consumer protocol type is converted
online when the policy allows upgrades (kbroker.groups.migration): its members become classic
members of the consumer group, which go on with JoinGroup/SyncGroup/Heartbeat
(kbroker.groups.classic_members) while the assignor assigns over everyone; when the last
consumer-protocol member leaves or is fenced and the policy allows downgrades, the group is classic
again (`fence`). Any other group of the other kind is refused: GROUP_ID_NOT_FOUND for a heartbeat.

Regular expressions are matched with Python's `re` (fullmatch against every topic name, internal
topics included, as Kafka matches them). Kafka uses RE2/J: the common syntax is the same; Python also accepts lookarounds and
backreferences, which RE2/J rejects as INVALID_REGULAR_EXPRESSION.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from ..protocol.errors import ApiError, ErrorCode
from . import consumer_records as fmt
from .assignors import ASSIGNORS, MemberSpec
from .consumer_group import (DEAD, EMPTY, LEAVE_GROUP_STATIC_MEMBER_EPOCH, UNREVOKED_PARTITIONS, ConsumerGroup,
                             ConsumerMember, empty_metadata, updated_metadata)
from .reconciliation import reconcile

if TYPE_CHECKING:
    from ..coordinator import CoordinatorRuntime
    from ..coordinator.services import Catalogue
    from ..metadata import Topic

log = logging.getLogger("kbroker.groups")

LEAVE_GROUP_MEMBER_EPOCH = -1
MEMBER_TYPE_CLASSIC, MEMBER_TYPE_CONSUMER = 0, 1
# Kafka's names of its assignor classes, accepted in group.consumer.assignors too
_ASSIGNOR_CLASSES = {"org.apache.kafka.coordinator.group.assignor.UniformAssignor": "uniform",
                     "org.apache.kafka.coordinator.group.assignor.RangeAssignor": "range"}

Partitions = fmt.Partitions


@dataclass(frozen=True, slots=True)
class ConsumerGroupSettings:
    """The broker's group.consumer.* configs (Kafka's defaults: 45 s session, 5 s heartbeat)."""
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 5_000
    max_size: int = 2**31 - 1
    assignors: tuple[str, ...] = ("uniform", "range")
    migration_policy: str = "bidirectional"  # group.consumer.migration.policy

    @property
    def upgrade_enabled(self) -> bool:
        return self.migration_policy in ("bidirectional", "upgrade")

    @property
    def downgrade_enabled(self) -> bool:
        return self.migration_policy in ("bidirectional", "downgrade")

    @classmethod
    def from_broker_config(cls, get) -> ConsumerGroupSettings:
        """From a config getter; the bounds Kafka's GroupCoordinatorConfig enforces at start."""
        session, heartbeat = get("group.consumer.session.timeout.ms"), get("group.consumer.heartbeat.interval.ms")
        for name, value in (("session.timeout.ms", session), ("heartbeat.interval.ms", heartbeat)):
            low, high = get(f"group.consumer.min.{name}"), get(f"group.consumer.max.{name}")
            if not low <= value <= high:
                raise ValueError(f"group.consumer.{name} must be between group.consumer.min.{name} ({low}) "
                                 f"and group.consumer.max.{name} ({high})")
        if heartbeat >= session:
            raise ValueError("group.consumer.heartbeat.interval.ms must be less than "
                             "group.consumer.session.timeout.ms")
        names = []
        for entry in get("group.consumer.assignors"):
            name = _ASSIGNOR_CLASSES.get(entry, entry)
            if name not in ASSIGNORS:
                raise ValueError(f"group.consumer.assignors: unknown assignor {entry!r} (uniform, range)")
            names.append(name)
        if not names:
            raise ValueError("group.consumer.assignors must name at least one assignor")
        return cls(session, heartbeat, get("group.consumer.max.size"), tuple(names),
                   get("group.consumer.migration.policy").lower())


@dataclass(slots=True)
class Heartbeat:
    """A ConsumerGroupHeartbeat request, as the coordinator sees it (owned: {topic id: partitions})."""
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: list[str] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: Partitions | None = None
    client_id: str = ""
    client_host: str = ""
    api_version: int = 1


@dataclass(slots=True)
class HeartbeatResult:
    error: int = ErrorCode.NONE
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Partitions | None = None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _session_key(group_id: str, member_id: str) -> tuple:
    return ("consumer-session", group_id, member_id)


def _revocation_key(group_id: str, member_id: str) -> tuple:
    return ("consumer-revocation", group_id, member_id)


def _member_timer_keys(group_id: str, member_id: str) -> list[tuple]:
    return [(kind, group_id, member_id) for kind in (
        "consumer-session", "consumer-revocation", "consumer-join", "consumer-sync")]


def _metadata_hash(topics: list[fmt.TopicMetadata]) -> int:
    """A stable 64-bit digest of the subscribed topics' metadata (Kafka's MetadataHash plays this
    role; its value is only ever compared with what this coordinator computes)."""
    if not topics:
        return 0
    text = "|".join(f"{t.name}:{t.topic_id}:{t.partitions}" for t in topics)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def _epoch_error(member: ConsumerMember, epoch: int) -> int:
    if epoch == member.member_epoch:
        return ErrorCode.NONE
    return ErrorCode.ILLEGAL_GENERATION if member.uses_classic_protocol else ErrorCode.STALE_MEMBER_EPOCH


def _invalid(message: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, message)


class ConsumerGroupProtocol:
    def __init__(self, runtime: CoordinatorRuntime, catalogue: Catalogue, settings: ConsumerGroupSettings,
                 retire_classic: Callable[[str], tuple[ConsumerGroup | None, list[fmt.Record]]] = (
                     lambda group_id: (None, [])),
                 replay_other: Callable[[bytes, bytes | None], None] = lambda key, value: None,
                 downgrade: Callable[..., int] = lambda group, leaving_id, joining: ErrorCode.NONE,
                 classic_max_size: int = 2**31 - 1):
        """``retire_classic(group id)``: for a consumer group to take the place of a classic group of
        that id, the records that retire (an empty one) or convert it (a non-empty one, with the
        consumer group it becomes, not yet materialized), or ApiError when it cannot; ``replay_other``
        applies those records once appended. ``downgrade(group, leaving member id, joining classic
        Member or None)`` turns a consumer group whose last consumer-protocol member leaves (or is
        replaced by a classic instance of the same static member) into a classic group."""
        self._runtime = runtime
        self._downgrade = downgrade
        self.classic_max_size = classic_max_size
        self._replay_other = replay_other
        self._retire_classic = retire_classic
        self.catalogue = catalogue
        self.timers = runtime.timers
        self.settings = settings
        self.groups: dict[str, ConsumerGroup] = {}
        self._patterns: dict[str, re.Pattern] = {}

    @property
    def default_assignor(self) -> str:
        return self.settings.assignors[0]

    # =========================================================================== replay, load
    def replay(self, key: fmt.Key, value: bytes | None) -> None:
        group = self.groups.get(key.group_id)
        if group is None:
            if value is None:
                return
            group = self.groups[key.group_id] = ConsumerGroup(key.group_id)
        group.replay(key, value)
        if key.record_type == fmt.GROUP_METADATA and value is None:
            group.dead = True
            del self.groups[key.group_id]
            for member_id in list(group.members):
                self._cancel_timers(key.group_id, member_id)

    def resume_timers(self, groups=None) -> None:
        """After loading: every member must heartbeat within its session timeout again, or be fenced."""
        for group in (self.groups.values() if groups is None else groups):
            for member in group.members.values():
                self.schedule_session_timeout(group.group_id, member.member_id)

    def unload_group(self, group_id: str) -> None:
        """Another broker coordinates the group now: forget it here, with its members' timers."""
        group = self.groups.pop(group_id, None)
        if group is not None:
            for member_id in list(group.members):
                self._cancel_timers(group_id, member_id)

    def _apply(self, group: ConsumerGroup, records: list[fmt.Record]) -> None:
        for key, value in records:
            parsed = fmt.decode_key(key)
            if parsed is None:
                self._replay_other(key, value)
                continue
            if group.group_id not in self.groups and value is not None:
                self.groups[group.group_id] = group
            self.replay(parsed, value)

    # =========================================================================== topics
    def _topics(self) -> list[Topic]:
        return list(self.catalogue.topics())  # internal topics too: Kafka's regexes match them

    def _pattern(self, regex: str) -> re.Pattern:
        pattern = self._patterns.get(regex)
        if pattern is None:
            try:
                pattern = re.compile(regex)
            except re.error as exc:
                raise ApiError(ErrorCode.INVALID_REGULAR_EXPRESSION,
                               f"SubscribedTopicRegex `{regex}` is not a valid regular expression: {exc}.") from exc
            self._patterns[regex] = pattern
        return pattern

    def _member_topic_names(self, metadata: fmt.MemberMetadata, all_names: Iterable[str] | None) -> set[str]:
        names = set(metadata.subscribed_topic_names)
        if metadata.subscribed_topic_regex:
            pattern = self._pattern(metadata.subscribed_topic_regex)
            names.update(n for n in (all_names or ()) if pattern.fullmatch(n))
        return names

    def _subscription(self, members: dict[str, fmt.MemberMetadata]
                      ) -> tuple[dict[str, set[str]], list[fmt.TopicMetadata]]:
        """Each member's subscribed topic names (regexes resolved) and the metadata of the existing
        topics any member subscribes to, sorted by name."""
        # every topic's name only when a regex must be matched against them; else a lookup per name
        all_names = [t.name for t in self._topics()] if any(m.subscribed_topic_regex for m in members.values()) \
            else None
        per_member = {member_id: self._member_topic_names(m, all_names) for member_id, m in members.items()}
        subscribed = set().union(*per_member.values()) if per_member else set()
        metadata = []
        for name in sorted(subscribed):
            topic = self.catalogue.get(name)
            if topic is not None:
                metadata.append(fmt.TopicMetadata(topic.topic_id, name, topic.partitions))
        return per_member, metadata

    def subscribed_topics(self, group: ConsumerGroup) -> set[str]:
        per_member, _ = self._subscription({m.member_id: m.metadata for m in group.members.values()})
        return set().union(*per_member.values()) if per_member else set()

    # =========================================================================== ConsumerGroupHeartbeat
    def heartbeat(self, request: Heartbeat) -> HeartbeatResult:
        try:
            self._validate(request)
            if request.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                return self._leave(request)
            return self._heartbeat(request)
        except ApiError as exc:
            return HeartbeatResult(exc.error_code, exc.message)

    def _validate(self, r: Heartbeat) -> None:
        for value, what in ((r.group_id, "GroupId"), (r.instance_id, "InstanceId"), (r.rack_id, "RackId")):
            if value is not None and not value.strip():
                raise _invalid(f"{what} can't be empty.")
        if r.member_epoch > 0 or r.member_epoch == LEAVE_GROUP_MEMBER_EPOCH or r.api_version >= 1:
            if not r.member_id.strip():
                raise _invalid("MemberId can't be empty.")
        if r.member_epoch == 0:
            if r.rebalance_timeout_ms == -1:
                raise _invalid("RebalanceTimeoutMs must be provided in first request.")
            if r.owned is None or any(r.owned.values()):
                raise _invalid("TopicPartitions must be empty when (re-)joining.")
            if not r.subscribed_topic_names and not r.subscribed_topic_regex:
                raise _invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
        elif r.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            if r.instance_id is None:
                raise _invalid("InstanceId can't be null.")
        elif r.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            raise _invalid("MemberEpoch is invalid.")
        if r.server_assignor is not None and r.server_assignor not in self.settings.assignors:
            raise ApiError(ErrorCode.UNSUPPORTED_ASSIGNOR,
                           f"ServerAssignor {r.server_assignor} is not supported. Supported assignors: "
                           f"{', '.join(self.settings.assignors)}.")
        if r.subscribed_topic_regex:
            self._pattern(r.subscribed_topic_regex)

    def _existing_group(self, group_id: str) -> ConsumerGroup:
        group = self.groups.get(group_id)
        if group is None:
            raise ApiError(ErrorCode.GROUP_ID_NOT_FOUND, f"Consumer group {group_id} not found.")
        return group

    def _member(self, group: ConsumerGroup, r: Heartbeat) -> tuple[ConsumerMember, str | None]:
        """The member the heartbeat is from (a new one on a join) and, when a static member's new
        instance replaces its old one, the old member's id."""
        if r.instance_id is None:
            member = group.members.get(r.member_id)
            if r.member_epoch == 0:
                if member is None:
                    log.info("member %s joins consumer group %s", r.member_id, group.group_id)
                    return ConsumerMember(r.member_id, empty_metadata()), None
                # an existing member rejoining from scratch: it starts over with nothing assigned
                return ConsumerMember(member.member_id, member.metadata), None
            if member is None:
                raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID,
                               f"Member {r.member_id} is not a member of group {group.group_id}.")
            self._check_epoch(member, r)
            return member, None
        existing = group.static_member(r.instance_id)
        if r.member_epoch == 0:
            if existing is None:
                log.info("static member %s (instance %s) joins consumer group %s", r.member_id, r.instance_id,
                         group.group_id)
                return ConsumerMember(r.member_id, empty_metadata()), None
            if existing.member_id == r.member_id:
                return ConsumerMember(existing.member_id, existing.metadata), None
            # a classic instance is replaced at once (Kafka: only two consumer-protocol ones need the -2 leave)
            if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH and not existing.uses_classic_protocol:
                raise ApiError(ErrorCode.UNRELEASED_INSTANCE_ID,
                               f"Static member {r.member_id} with instance id {r.instance_id} cannot join the group "
                               f"because the instance id is owned by {existing.member_id} member.")
            # the new instance takes the old one's place and its assignment, at epoch 0
            log.info("static member %s replaces %s (instance %s) in consumer group %s", r.member_id,
                     existing.member_id, r.instance_id, group.group_id)
            assignment = fmt.CurrentAssignment(0, 0, existing.state, existing.assigned, {})
            return ConsumerMember(r.member_id, existing.metadata, assignment), existing.member_id
        if existing is None:
            raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {r.instance_id} is unknown.")
        if existing.member_id != r.member_id:
            raise ApiError(ErrorCode.FENCED_INSTANCE_ID,
                           f"Static member {r.member_id} with instance id {r.instance_id} was fenced by member "
                           f"{existing.member_id}.")
        self._check_epoch(existing, r)
        return existing, None

    @staticmethod
    def _check_epoch(member: ConsumerMember, r: Heartbeat) -> None:
        received, known = r.member_epoch, member.member_epoch
        if received > known:
            raise ApiError(ErrorCode.FENCED_MEMBER_EPOCH,
                           f"The consumer group member has a greater member epoch ({received}) than the one known "
                           f"by the group coordinator ({known}). The member must abandon all its partitions and "
                           "rejoin.")
        if received < known:
            # the response that moved it to the current epoch may have been lost
            owned_subset = r.owned is not None and all(
                indexes <= member.assigned.get(topic_id, frozenset()) for topic_id, indexes in r.owned.items())
            if received != member.previous_member_epoch or not owned_subset:
                raise ApiError(ErrorCode.FENCED_MEMBER_EPOCH,
                               f"The consumer group member has a smaller member epoch ({received}) than the one "
                               f"known by the group coordinator ({known}). The member must abandon all its "
                               "partitions and rejoin.")

    def _group_for_heartbeat(self, r: Heartbeat) -> tuple[ConsumerGroup, list[fmt.Record], bool]:
        """(the group, the records that retire or convert a classic group of that id, converted)."""
        group = self.groups.get(r.group_id)
        if group is not None:
            return group, [], False
        if r.member_epoch != 0:
            raise ApiError(ErrorCode.GROUP_ID_NOT_FOUND, f"Consumer group {r.group_id} not found.")
        # the tombstone of an empty classic group, the conversion of a non-empty one, or a refusal
        converted, records = self._retire_classic(r.group_id)
        return (converted or ConsumerGroup(r.group_id)), records, converted is not None

    def _heartbeat(self, r: Heartbeat) -> HeartbeatResult:
        group, records, converted = self._group_for_heartbeat(r)
        if not r.member_id:
            r.member_id = str(uuid.uuid4())  # version 0: the coordinator names the member
        self.check_size(group, r.member_id, r.instance_id)
        member, replaced_id = self._member(group, r)
        old = member.metadata
        metadata = updated_metadata(
            old, client_id=r.client_id, client_host=r.client_host,
            instance_id=r.instance_id if r.instance_id is not None else old.instance_id,
            rack_id=r.rack_id if r.rack_id is not None else old.rack_id,
            rebalance_timeout_ms=r.rebalance_timeout_ms if r.rebalance_timeout_ms != -1 else old.rebalance_timeout_ms,
            server_assignor=r.server_assignor if r.server_assignor is not None else old.server_assignor,
            subscribed_topic_names=(tuple(sorted(set(r.subscribed_topic_names)))
                                    if r.subscribed_topic_names is not None else old.subscribed_topic_names),
            subscribed_topic_regex=((r.subscribed_topic_regex or None) if r.subscribed_topic_regex is not None
                                    else old.subscribed_topic_regex),
            classic=None)
        is_new = member.member_id not in group.members
        current = member.assignment
        assignment, error = self.update_member(group, member, replaced_id, metadata, r.owned, records)
        if error:
            return HeartbeatResult(error)
        member_id = member.member_id
        if converted:
            self._start_classic_sessions(group)
        self.schedule_session_timeout(group.group_id, member_id)
        self._schedule_revocation_timeout(group, group.members[member_id])
        full = r.member_epoch == 0 or (r.rebalance_timeout_ms != -1 and r.owned is not None and (
            r.subscribed_topic_names is not None or r.subscribed_topic_regex is not None))
        changed = assignment.assigned != current.assigned
        return HeartbeatResult(ErrorCode.NONE, None, member_id, assignment.member_epoch,
                               self.settings.heartbeat_interval_ms,
                               assignment.assigned if full or changed or is_new else None)

    def check_size(self, group: ConsumerGroup, member_id: str, instance_id: str | None) -> None:
        if len(group.members) >= self.settings.max_size and member_id not in group.members and not (
                instance_id is not None and group.static_member(instance_id) is not None):
            raise ApiError(ErrorCode.GROUP_MAX_SIZE_REACHED,
                           f"The consumer group has reached its maximum capacity of {self.settings.max_size} members.")

    def _start_classic_sessions(self, group: ConsumerGroup) -> None:
        """A classic group just became this consumer group: its members' sessions go on here."""
        for m in group.classic_members():
            self.schedule_session_timeout(group.group_id, m.member_id)

    def update_member(self, group: ConsumerGroup, member: ConsumerMember, replaced_id: str | None,
                      metadata: fmt.MemberMetadata, owned: Partitions | None, records: list[fmt.Record]
                      ) -> tuple[fmt.CurrentAssignment, int]:
        """The three steps of a heartbeat (or of a classic member's JoinGroup) for a member with
        its new metadata and the partitions it reports owning: (its new current assignment, the
        error of appending the records, which are applied once appended)."""
        member_id = member.member_id
        is_new = member_id not in group.members
        old = member.metadata
        if replaced_id is not None:
            records += group.member_tombstones(replaced_id)
        subscription_changed = replaced_id is None and (is_new or (
            metadata.subscribed_topic_names, metadata.subscribed_topic_regex) != (
            old.subscribed_topic_names, old.subscribed_topic_regex))
        if is_new or metadata != old:
            records.append(fmt.member_metadata(group.group_id, member_id, metadata))

        # 1. the group epoch
        members = {m.member_id: m.metadata for m in group.members.values() if m.member_id != replaced_id}
        members[member_id] = metadata
        per_member, topics = self._subscription(members)
        metadata_hash = _metadata_hash(topics)
        group_epoch = group.group_epoch
        if subscription_changed or metadata_hash != group.metadata_hash:
            group_epoch += 1
            if topics != group.subscription_metadata:
                records.append(fmt.partition_metadata(group.group_id, topics))
            records.append(fmt.group_metadata(group.group_id, group_epoch, metadata_hash))
            log.info("consumer group %s: group epoch %d", group.group_id, group_epoch)

        # 2. the target assignment
        if group_epoch > group.assignment_epoch:
            target = self._assign(group, members, per_member, topics, replaced_id, member_id)
            for other_id, partitions in target.items():
                if group.target.get(other_id) != partitions or other_id == member_id:
                    records.append(fmt.target_assignment_member(group.group_id, other_id, partitions))
            records.append(fmt.target_assignment_metadata(group.group_id, group_epoch, _now_ms()))
            target_epoch, member_target = group_epoch, target.get(member_id, {})
        else:
            target_epoch = group.assignment_epoch
            member_target = group.target.get(replaced_id if replaced_id is not None else member_id, {})
            if replaced_id is not None:
                records.append(fmt.target_assignment_member(group.group_id, member_id, member_target))

        # 3. reconciliation
        myself = {member_id, replaced_id}
        assignment = reconcile(member.assignment, target_epoch, member_target, owned,
                               lambda topic_id, p: group.partition_owner(topic_id, p) in (None, *myself))
        stored = group.members.get(member_id)
        if stored is None or assignment != stored.assignment:
            records.append(fmt.current_assignment(group.group_id, member_id, assignment))

        error = self._runtime.append(group.group_id, records)
        if error:
            return assignment, error
        self._apply(group, records)
        if replaced_id is not None:
            self._cancel_timers(group.group_id, replaced_id)
        return assignment, ErrorCode.NONE

    def _assign(self, group: ConsumerGroup, members: dict[str, fmt.MemberMetadata],
                per_member: dict[str, set[str]], topics: list[fmt.TopicMetadata], replaced_id: str | None,
                member_id: str) -> dict[str, Partitions]:
        ids = {t.name: t.topic_id for t in topics}
        specs = {}
        for other_id in members:
            current = group.target.get(replaced_id if other_id == member_id and replaced_id else other_id, {})
            specs[other_id] = MemberSpec(frozenset(ids[n] for n in per_member[other_id] if n in ids), current)
        assignor_name = self._preferred_assignor(members)
        return ASSIGNORS[assignor_name](specs, {t.topic_id: t.partitions for t in topics})

    def _preferred_assignor(self, members: dict[str, fmt.MemberMetadata]) -> str:
        votes: dict[str, int] = {}
        for m in members.values():
            if m.server_assignor:
                votes[m.server_assignor] = votes.get(m.server_assignor, 0) + 1
        return max(sorted(votes), key=lambda name: votes[name]) if votes else self.default_assignor

    # =========================================================================== leaving, fencing
    def _leave(self, r: Heartbeat) -> HeartbeatResult:
        group = self._existing_group(r.group_id)
        if r.instance_id is None:
            member = group.members.get(r.member_id)
            if member is None:
                raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID,
                               f"Member {r.member_id} is not a member of group {group.group_id}.")
        else:
            member = group.static_member(r.instance_id)
            if member is None:
                raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {r.instance_id} is unknown.")
            if member.member_id != r.member_id:
                raise ApiError(ErrorCode.FENCED_INSTANCE_ID,
                               f"Static member {r.member_id} with instance id {r.instance_id} was fenced by member "
                               f"{member.member_id}.")
            if r.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                log.info("static member %s (instance %s) temporarily left consumer group %s", member.member_id,
                         r.instance_id, group.group_id)
                a = member.assignment
                record = fmt.current_assignment(group.group_id, member.member_id, fmt.CurrentAssignment(
                    LEAVE_GROUP_STATIC_MEMBER_EPOCH, a.previous_member_epoch, a.state, a.assigned, {}))
                error = self._runtime.append(group.group_id, [record])
                if error:
                    return HeartbeatResult(error)
                self._apply(group, [record])
                self.timers.cancel(_revocation_key(group.group_id, member.member_id))
                return HeartbeatResult(ErrorCode.NONE, None, member.member_id, LEAVE_GROUP_STATIC_MEMBER_EPOCH)
        log.info("member %s left consumer group %s", member.member_id, group.group_id)
        error = self.fence(group, member.member_id)
        if error:
            return HeartbeatResult(error)
        return HeartbeatResult(ErrorCode.NONE, None, r.member_id, r.member_epoch)

    def fence(self, group: ConsumerGroup, member_id: str) -> int:
        """Remove a member (it left, or its session or rebalance timeout passed) and bump the group
        epoch, so the others get its partitions at their next heartbeat. When the last member
        speaking the consumer protocol goes and the rest speak the classic one, the group turns
        classic again instead (Kafka's online downgrade), if the migration policy allows."""
        if len(group.members) > 1 and self.may_downgrade(group, member_id):
            return self.convert_to_classic(group, member_id)
        return self.remove_members(group, [member_id])

    def convert_to_classic(self, group: ConsumerGroup, leaving_id: str, joining=None) -> int:
        """Downgrade the group without ``leaving_id``, with ``joining`` (a classic group Member
        replacing that static member) if given; every member's timers here stop."""
        member_ids = list(group.members)
        error = self._downgrade(group, leaving_id, joining)
        if not error:
            for member_id in member_ids:
                self._cancel_timers(group.group_id, member_id)
        return error

    def remove_members(self, group: ConsumerGroup, member_ids: list[str]) -> int:
        records = []
        for member_id in member_ids:
            records += group.member_tombstones(member_id)
        members = {m.member_id: m.metadata for m in group.members.values() if m.member_id not in member_ids}
        _, topics = self._subscription(members)
        if topics != group.subscription_metadata:
            records.append(fmt.partition_metadata(group.group_id, topics))
        records.append(fmt.group_metadata(group.group_id, group.group_epoch + 1, _metadata_hash(topics)))
        error = self._runtime.append(group.group_id, records)
        if error:
            return error
        self._apply(group, records)
        for member_id in member_ids:
            self._cancel_timers(group.group_id, member_id)
        return ErrorCode.NONE

    def may_downgrade(self, group: ConsumerGroup, leaving_id: str, replaced: bool = False) -> bool:
        """Kafka's validateOnlineDowngradeWith{FencedMember,ReplacedMemberId}: ``leaving_id`` is the
        only consumer-protocol member and the policy and group.max.size allow a classic group."""
        if not group.all_classic_except(leaving_id):
            return False
        if not self.settings.downgrade_enabled:
            log.info("consumer group %s stays a consumer group: online downgrade is disabled", group.group_id)
            return False
        if len(group.members) - (0 if replaced else 1) > self.classic_max_size:
            log.info("consumer group %s stays a consumer group: more members than group.max.size", group.group_id)
            return False
        return True

    def _cancel_timers(self, group_id: str, member_id: str) -> None:
        for key in _member_timer_keys(group_id, member_id):
            self.timers.cancel(key)

    def schedule_session_timeout(self, group_id: str, member_id: str) -> None:
        """A member of the consumer protocol has the broker's session timeout, a classic member its own."""
        member = self.groups[group_id].members.get(member_id) if group_id in self.groups else None
        timeout = member.classic.session_timeout_ms if member is not None and member.classic is not None \
            else self.settings.session_timeout_ms
        self.timers.schedule(_session_key(group_id, member_id), timeout,
                             lambda: self._session_expired(group_id, member_id))

    def schedule_fencing(self, kind: str, group_id: str, member_id: str, timeout_ms: int, *,
                         if_absent: bool = False) -> None:
        """A classic member's join or sync deadline ("join", "sync"): missed, the member is fenced."""
        key = (f"consumer-{kind}", group_id, member_id)
        if if_absent and self.timers.is_scheduled(key):
            return
        self.timers.schedule(key, timeout_ms, lambda: self._deadline_missed(kind, group_id, member_id))

    def cancel_fencing(self, kind: str, group_id: str, member_id: str) -> None:
        self.timers.cancel((f"consumer-{kind}", group_id, member_id))

    def _deadline_missed(self, kind: str, group_id: str, member_id: str) -> None:
        group = self.groups.get(group_id)
        if group is not None and member_id in group.members:
            log.info("classic member %s of consumer group %s fenced: it did not %s in time", member_id, group_id,
                     kind)
            self.fence(group, member_id)

    def _session_expired(self, group_id: str, member_id: str) -> None:
        group = self.groups.get(group_id)
        if group is not None and member_id in group.members:
            log.info("member %s of consumer group %s fenced: session timeout", member_id, group_id)
            self.fence(group, member_id)

    def _schedule_revocation_timeout(self, group: ConsumerGroup, member: ConsumerMember) -> None:
        key = _revocation_key(group.group_id, member.member_id)
        if member.state != UNREVOKED_PARTITIONS:
            self.timers.cancel(key)
            return
        if self.timers.is_scheduled(key):
            return
        group_id, member_id, epoch = group.group_id, member.member_id, member.member_epoch
        timeout = member.metadata.rebalance_timeout_ms
        self.timers.schedule(key, timeout if timeout > 0 else self.settings.session_timeout_ms,
                             lambda: self._revocation_expired(group_id, member_id, epoch))

    def _revocation_expired(self, group_id: str, member_id: str, epoch: int) -> None:
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if member is not None and member.state == UNREVOKED_PARTITIONS and member.member_epoch == epoch:
            log.info("member %s of consumer group %s fenced: partitions not revoked within the rebalance timeout",
                     member_id, group_id)
            self.fence(group, member_id)

    # =========================================================================== offsets: who may commit
    def validate_offset_commit(self, group: ConsumerGroup, member_id: str, member_epoch: int,
                               api_version: int, transactional: bool = False) -> int:
        """Kafka's ConsumerGroup.validateOffsetCommit: an empty group takes commits from outside
        (epoch < 0, the admin client); a member must be known and at its current epoch (a classic
        member's generation is its epoch: ILLEGAL_GENERATION when it differs)."""
        if member_epoch < 0 and (group.is_empty or (transactional and not member_id)):
            return ErrorCode.NONE  # old TxnOffsetCommit versions carry no member: accepted, as classic
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if not transactional and api_version < 9 and not member.uses_classic_protocol:
            return ErrorCode.UNSUPPORTED_VERSION
        return _epoch_error(member, member_epoch)

    @staticmethod
    def validate_offset_fetch(group: ConsumerGroup, member_id: str | None, member_epoch: int) -> int:
        if member_id is None and member_epoch < 0:
            return ErrorCode.NONE
        member = group.members.get(member_id or "")
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return _epoch_error(member, member_epoch)

    # =========================================================================== admin
    def list_groups(self, states: set[str], types: set[str]) -> list[tuple[str, str, str, str]]:
        if types and "consumer" not in types:
            return []
        return [(g.group_id, "consumer", g.state, "consumer") for g in self.groups.values()
                if not states or g.state.lower() in states]

    def describe(self, group_id: str):
        """The group for ConsumerGroupDescribe, or an ApiError (GROUP_ID_NOT_FOUND)."""
        return self._existing_group(group_id)

    def assignor_of(self, group: ConsumerGroup) -> str:
        return self._preferred_assignor({m.member_id: m.metadata for m in group.members.values()})

    def topic_names(self) -> dict[uuid.UUID, str]:
        return {t.topic_id: t.name for t in self.catalogue.topics()}

    def delete(self, group: ConsumerGroup, offset_tombstones: list[fmt.Record]) -> int:
        """DeleteGroups of an empty group: its offsets' and its own tombstones in one batch."""
        records = offset_tombstones + group.tombstones()
        error = self._runtime.append(group.group_id, records)
        if error:
            return error
        self._apply(group, group.tombstones())
        log.info("deleted consumer group %s", group.group_id)
        return ErrorCode.NONE

    def forget(self, group: ConsumerGroup, tombstones: list[fmt.Record]) -> None:
        """The group's tombstones were appended (it became a classic group): drop it and its timers."""
        self._apply(group, tombstones)

    def is_alive(self, group_id: str) -> bool:
        group = self.groups.get(group_id)
        return group is not None and group.state != DEAD

    def is_empty(self, group_id: str) -> bool:
        group = self.groups.get(group_id)
        return group is not None and group.state == EMPTY
