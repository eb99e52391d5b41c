"""The group coordinator of a single broker: what the handlers call, over the coordinator runtime.

It owns `__consumer_offsets` through a CoordinatorRuntime (kbroker.coordinator) and composes three
parts that share it: the classic group protocol (kbroker.groups.classic_protocol: join, sync,
heartbeat, leave, describe, list), the KIP-848 consumer group protocol (kbroker.groups.
consumer_protocol: ConsumerGroupHeartbeat, ConsumerGroupDescribe) and the offset store
(kbroker.groups.offsets: committed and transactional offsets, OffsetDelete, expiry, deleted
topics). A group id is one kind of group at a time; the requests are routed here by the kind of the
group they name, and what needs two parts is here too: an offset commit is checked by the group's
protocol and stored by the store; deleting a group tombstones its offsets and its records in one
batch; expiry drops offsets by the group's rule and then the empty groups left with none; an empty
group of one kind is retired when the other kind's first member arrives (Kafka's upgrade and
downgrade of empty groups), and a non-empty classic group is converted online into a consumer group
by its first consumer-protocol member, back when the last one leaves (kbroker.groups.migration;
classic members of a consumer group are kbroker.groups.classic_members'); at start the log is replayed, each record to the part it belongs to. The coordinator is
built from what it uses (the catalogue, ensure_topic, the partition layer, the topic deletion
listeners, its config values), never the Broker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import trio

from ..coordinator import CoordinatorRuntime, InternalTopic, Timers
from ..protocol.errors import ApiError, ErrorCode, ProtocolError
from . import consumer_records
from . import records as fmt
from . import migration
from .classic import EMPTY, ClassicGroup, JoinResult, SyncResult, Waiter, group_record, now_ms
from .classic_members import ClassicMembers
from .classic_protocol import ClassicGroupProtocol
from .consumer_group import ConsumerGroup
from .consumer_protocol import ConsumerGroupProtocol, ConsumerGroupSettings, Heartbeat, HeartbeatResult
from .offsets import OffsetAndMetadata, OffsetStore, OffsetsToCommit, PartitionErrors, everywhere

if TYPE_CHECKING:
    from ..config.broker import BrokerConfig
    from ..coordinator.services import Catalogue, EnsureTopic, PartitionLogs, TopicDeletionListener

log = logging.getLogger("kbroker.groups")

OFFSETS_TOPIC = "__consumer_offsets"

__all__ = ["GroupConfig", "GroupCoordinator", "OFFSETS_TOPIC", "OffsetAndMetadata"]


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """The broker configs the group coordinator reads (all read-only in Kafka)."""
    initial_rebalance_delay_ms: int
    min_session_timeout_ms: int
    max_session_timeout_ms: int
    max_group_size: int
    offsets_partitions: int
    offsets_segment_bytes: int
    offset_metadata_max_bytes: int
    retention_ms: int
    retention_check_ms: int
    consumer: ConsumerGroupSettings = ConsumerGroupSettings()

    @classmethod
    def from_broker_config(cls, config: BrokerConfig) -> GroupConfig:
        return cls(initial_rebalance_delay_ms=config.get("group.initial.rebalance.delay.ms"),
                   min_session_timeout_ms=config.get("group.min.session.timeout.ms"),
                   max_session_timeout_ms=config.get("group.max.session.timeout.ms"),
                   max_group_size=config.get("group.max.size"),
                   offsets_partitions=config.get("offsets.topic.num.partitions"),
                   offsets_segment_bytes=config.get("offsets.topic.segment.bytes"),
                   offset_metadata_max_bytes=config.get("offset.metadata.max.bytes"),
                   retention_ms=config.get("offsets.retention.minutes") * 60_000,
                   retention_check_ms=config.get("offsets.retention.check.interval.ms"),
                   consumer=ConsumerGroupSettings.from_broker_config(config.get))


class GroupCoordinator:
    def __init__(self, config: GroupConfig, *, catalogue: Catalogue, ensure_topic: EnsureTopic,
                 partitions: PartitionLogs, topic_deletion_listeners: list[TopicDeletionListener]):
        self.config = config
        self.runtime = CoordinatorRuntime(
            InternalTopic(OFFSETS_TOPIC, config.offsets_partitions, {
                "cleanup.policy": "compact",
                "compression.type": "producer",
                "segment.bytes": str(config.offsets_segment_bytes),
            }),
            catalogue=catalogue, ensure_topic=ensure_topic, partitions=partitions,
            timers=Timers(behind_received_requests=True))
        self.classic = ClassicGroupProtocol(
            self.runtime, initial_rebalance_delay_ms=config.initial_rebalance_delay_ms,
            min_session_timeout_ms=config.min_session_timeout_ms,
            max_session_timeout_ms=config.max_session_timeout_ms, max_group_size=config.max_group_size)
        self.consumer = ConsumerGroupProtocol(self.runtime, catalogue, config.consumer,
                                              retire_classic=self._classic_to_consumer,
                                              replay_other=lambda key, value: self._replay_record(0, key, value, None),
                                              downgrade=self._consumer_to_classic,
                                              classic_max_size=config.max_group_size)
        self.classic_members = ClassicMembers(self.consumer)
        self.offset_store = OffsetStore(self.runtime, catalogue, metadata_max_bytes=config.offset_metadata_max_bytes,
                                        retention_ms=config.retention_ms)
        self.loaded = False
        topic_deletion_listeners.append(self.offset_store.topic_deleted)

    @property
    def groups(self) -> dict[str, ClassicGroup]:
        return self.classic.groups

    @property
    def offsets(self) -> dict[str, dict[tuple[str, int], OffsetAndMetadata]]:
        return self.offset_store.offsets

    @property
    def initial_rebalance_delay_ms(self) -> int:
        return self.config.initial_rebalance_delay_ms

    # =========================================================================== lifecycle
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load the groups and offsets from the log, then serve timers until cancelled."""
        await self.runtime.run(self.load, task_status=task_status)

    def offsets_topic(self):
        """__consumer_offsets, or None until ensure_offsets_topic() created it."""
        return self.runtime.topic()

    async def ensure_offsets_topic(self):
        """__consumer_offsets, created if missing (CoordinatorRuntime.ensure_topic)."""
        return await self.runtime.ensure_topic()

    def partition_for(self, group_id: str) -> int:
        return self.runtime.partition_for(group_id)

    def load(self) -> None:
        """Replay __consumer_offsets, as Kafka's coordinator does when it becomes leader."""
        if self.runtime.topic() is not None:
            count = self.runtime.replay(self._replay_record, self.complete_transaction)
            log.info("loaded %d classic and %d consumer groups and offsets of %d groups from %d records of %s",
                     len(self.groups), len(self.consumer.groups), len(self.offsets), count, OFFSETS_TOPIC)
        self.classic.resume_heartbeats()
        self.consumer.resume_timers()
        self._schedule_expiration()
        self.loaded = True

    def load_partition(self, partition: int) -> None:
        """In a cluster, on becoming leader of a partition of __consumer_offsets: its groups and offsets."""
        count = self.runtime.replay_partition(partition, self._replay_record, self.complete_transaction)
        loaded = [g for g in self.groups.values() if self.partition_for(g.group_id) == partition]
        self.classic.resume_heartbeats(loaded)
        consumer_groups = [g for g in self.consumer.groups.values() if self.partition_for(g.group_id) == partition]
        self.consumer.resume_timers(consumer_groups)
        log.info("loaded %d classic and %d consumer groups from %d records of %s-%d", len(loaded),
                 len(consumer_groups), count, OFFSETS_TOPIC, partition)

    def unload_partition(self, partition: int) -> None:
        """Another broker leads the partition now: forget its groups and offsets here."""
        for group_id in [g for g in self.groups if self.partition_for(g) == partition]:
            self.classic.unload_group(group_id)
        for group_id in [g for g in self.consumer.groups if self.partition_for(g) == partition]:
            self.consumer.unload_group(group_id)
        for group_id in [g for g in self.offsets if self.partition_for(g) == partition]:
            self.offset_store.forget(group_id)
        self.offset_store.forget_pending(lambda group_id: self.partition_for(group_id) == partition)

    def owns(self, group_id: str) -> bool:
        """Whether this broker coordinates the group (in a cluster: leads its partition)."""
        return self.runtime.owns(group_id)

    def _replay_record(self, partition: int, key: bytes | None, value: bytes | None, producer_id: int | None) -> None:
        if key is None:
            return
        try:
            parsed = fmt.decode_key(key)
            if isinstance(parsed, fmt.OffsetCommitKey):
                if self.offset_store.replay(parsed, value, producer_id):
                    self._ensure_group(parsed.group)
            elif isinstance(parsed, fmt.GroupMetadataKey):
                self.classic.replay(parsed.group, value)
            else:
                consumer_key = consumer_records.decode_key(key)
                if consumer_key is not None:
                    self._replay_consumer_record(consumer_key, value)
        except (ProtocolError, fmt.RecordFormatError, consumer_records.RecordFormatError, UnicodeDecodeError) as exc:
            log.warning("skipping an unreadable %s record: %s", OFFSETS_TOPIC, exc)

    def _replay_consumer_record(self, key: consumer_records.Key, value: bytes | None) -> None:
        classic = self.groups.get(key.group_id)
        if value is not None and classic is not None and classic.is_empty and not classic.members:
            self.groups.pop(key.group_id)  # a group with only offsets, upgraded: now a consumer group
        self.consumer.replay(key, value)

    def _ensure_group(self, group_id: str) -> None:
        """A group with committed offsets exists: an empty classic ("simple") group unless the id
        is a consumer group's."""
        if group_id not in self.consumer.groups:
            self.classic.ensure_group(group_id)

    # =========================================================================== upgrade, downgrade
    def _classic_to_consumer(self, group_id: str) -> tuple[ConsumerGroup | None, list]:
        """A consumer group's first member arrives at a classic group's id: an empty classic group
        gives way (its metadata tombstone goes in the heartbeat's batch); a non-empty one of the
        consumer protocol type is converted online if group.consumer.migration.policy allows
        (kbroker.groups.migration); any other is refused."""
        group = self.groups.get(group_id)
        if group is None:
            return None, []
        if group.state == EMPTY:
            log.info("upgrading the empty classic group %s to a consumer group", group_id)
            return None, [self.classic.tombstone(group_id)]
        why = migration.can_upgrade(group, self.config.consumer.max_size) if self.config.consumer.upgrade_enabled \
            else "the online upgrade is disabled"
        if why:
            log.info("cannot upgrade classic group %s to a consumer group: %s", group_id, why)
            raise ApiError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group.")
        converted = migration.consumer_group_from_classic(group, self._topic_id, self.classic.tombstone(group_id))
        log.info("upgrading classic group %s (generation %d, %d members) online to a consumer group", group_id,
                 group.generation_id, len(group.members))
        # members parked in a join or sync rejoin; as consumer group members they rejoin anyway
        self.classic.answer_parked(group, ErrorCode.REBALANCE_IN_PROGRESS)
        return converted

    def _topic_id(self, name: str):
        topic = self.consumer.catalogue.get(name)
        return topic.topic_id if topic is not None else None

    def _consumer_to_classic(self, group: ConsumerGroup, leaving_id: str, joining=None) -> int:
        """The last consumer-protocol member of a mixed group leaves: the classic members become a
        classic group again, which rebalances at once (Kafka's convertToClassicGroup). When a classic
        instance of that (static) member replaces it instead, it joins the Stable classic group in
        its place with its assignment, and nobody rebalances."""
        classic = migration.classic_group_from_consumer(group, leaving_id, self.consumer.topic_names(), joining)
        tombstones = group.tombstones()
        error = self.runtime.append(group.group_id, tombstones + [group_record(classic)])
        if error:
            return error
        log.info("downgrading consumer group %s online to a classic group (%d members)", group.group_id,
                 len(classic.members))
        self.consumer.forget(group, tombstones)
        self.classic.adopt_downgraded(classic, rebalance=joining is None)
        return ErrorCode.NONE

    # =========================================================================== the classic protocol
    # The handlers' calls, one hop on (ClassicGroupProtocol has the signatures), after the routing
    # by the group's kind.
    def join_group(self, **request) -> None:
        if not self.owns(request["group_id"]):
            request["waiter"].complete(JoinResult(ErrorCode.NOT_COORDINATOR, request["member_id"]))
            return
        group = self.consumer.groups.get(request["group_id"])
        if group is not None and not group.is_empty:
            waiter = request.pop("waiter")
            del request["group_id"]
            waiter.complete(self.classic_members.join(group, **request))
            return
        if group is not None:
            error = self._downgrade_empty_consumer_group(group)
            if error:
                request["waiter"].complete(JoinResult(error, request["member_id"]))
                return
        self.classic.join_group(**request)

    def _downgrade_empty_consumer_group(self, group: ConsumerGroup) -> int:
        """A classic member joins an empty consumer group's id: the group gives way (its records
        are tombstoned, its offsets stay). A non-empty one takes the classic member in (ClassicMembers)."""
        log.info("downgrading the empty consumer group %s to a classic group", group.group_id)
        return self.consumer.delete(group, [])

    def abandon_join(self, group_id: str, waiter: Waiter) -> None:
        self.classic.abandon_join(group_id, waiter)

    def sync_group(self, **request) -> None:
        if not self.owns(request["group_id"]):
            request["waiter"].complete(SyncResult(ErrorCode.NOT_COORDINATOR))
            return
        group = self.consumer.groups.get(request["group_id"])
        if group is not None:
            result = SyncResult(ErrorCode.UNKNOWN_MEMBER_ID) if group.is_empty else self.classic_members.sync(
                group, member_id=request["member_id"], group_instance_id=request["group_instance_id"],
                generation_id=request["generation_id"], protocol_type=request["protocol_type"],
                protocol_name=request["protocol_name"])
            request["waiter"].complete(result)
            return
        self.classic.sync_group(**request)

    def abandon_sync(self, group_id: str, waiter: Waiter) -> None:
        self.classic.abandon_sync(group_id, waiter)

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None) -> int:
        if not self.owns(group_id):
            return ErrorCode.NOT_COORDINATOR
        group = self.consumer.groups.get(group_id)
        if group is not None:
            return self.classic_members.heartbeat(group, member_id=member_id, group_instance_id=group_instance_id,
                                                  generation_id=generation_id)
        return self.classic.heartbeat(group_id, generation_id, member_id, group_instance_id)

    def leave_group(self, group_id: str, members: list[tuple[str, str | None]]
                    ) -> tuple[int, list[tuple[str, str | None, int]]]:
        if not self.owns(group_id):
            return ErrorCode.NOT_COORDINATOR, []
        group = self.consumer.groups.get(group_id)
        if group is not None:
            return self.classic_members.leave(group, members)
        return self.classic.leave_group(group_id, members)

    def list_groups(self, states: Iterable[str] = (), types: Iterable[str] = ()) -> list[tuple[str, str, str, str]]:
        """(group id, protocol type, state, group type) of both kinds, filtered by state and type."""
        states = {s.strip().lower() for s in states}
        types = {t.strip().lower() for t in types}
        return self.classic.list_groups(states, types) + self.consumer.list_groups(states, types)

    # =========================================================================== the consumer protocol
    def consumer_group_heartbeat(self, request: Heartbeat) -> HeartbeatResult:
        if not self.owns(request.group_id):
            return HeartbeatResult(ErrorCode.NOT_COORDINATOR)
        return self.consumer.heartbeat(request)

    def consumer_group(self, group_id: str) -> ConsumerGroup:
        """The consumer group (ConsumerGroupDescribe), or ApiError(GROUP_ID_NOT_FOUND)."""
        if not self.owns(group_id):
            raise ApiError(ErrorCode.NOT_COORDINATOR)
        if group_id in self.groups and group_id not in self.consumer.groups:
            raise ApiError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group.")
        return self.consumer.describe(group_id)

    def is_consumer_group(self, group_id: str) -> bool:
        return group_id in self.consumer.groups

    def describe_group(self, group_id: str):
        if not self.owns(group_id):
            return ErrorCode.NOT_COORDINATOR, "", "", "", []
        return self.classic.describe_group(group_id)

    # =========================================================================== offsets
    def commit_offsets(self, *, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                       retention_time_ms: int, topics: OffsetsToCommit, api_version: int) -> PartitionErrors:
        """topics: [(name, [(partition, offset, leader epoch, metadata)])] -> [(name, [(partition, error)])].
        For a consumer group, ``generation_id`` is the member epoch."""
        if not self.owns(group_id):
            return everywhere(topics, ErrorCode.NOT_COORDINATOR)
        consumer_group = self.consumer.groups.get(group_id)
        if consumer_group is not None:
            error = self.consumer.validate_offset_commit(consumer_group, member_id, generation_id, api_version)
        else:
            error = self.classic.validate_offset_commit(group_id, generation_id, member_id, group_instance_id,
                                                        api_version)
        if error:
            return everywhere(topics, error)
        return self.offset_store.commit(group_id, topics, retention_time_ms, now_ms())

    def commit_transactional_offsets(self, *, group_id: str, producer_id: int, producer_epoch: int,
                                     generation_id: int, member_id: str, group_instance_id: str | None,
                                     topics: OffsetsToCommit) -> PartitionErrors:
        """TxnOffsetCommit: the offsets are written to __consumer_offsets in a transactional batch of
        the producer and stay pending until the transaction's marker commits (or drops) them."""
        if not self.owns(group_id):
            return everywhere(topics, ErrorCode.NOT_COORDINATOR)
        consumer_group = self.consumer.groups.get(group_id)
        if consumer_group is not None:
            error = self.consumer.validate_offset_commit(consumer_group, member_id, generation_id, 0,
                                                         transactional=True)
        else:
            error = self.classic.validate_transactional_offset_commit(group_id, generation_id, member_id,
                                                                      group_instance_id)
        if error:
            return everywhere(topics, error)
        return self.offset_store.commit_transactional(group_id, producer_id, producer_epoch, topics, now_ms())

    def complete_transaction(self, offsets_partition: int, producer_id: int, commit: bool) -> None:
        """A transaction marker was written to (or replayed from) a partition of __consumer_offsets."""
        for group_id in self.offset_store.complete_transaction(offsets_partition, producer_id, commit):
            self._ensure_group(group_id)

    def has_pending_offset(self, group_id: str, tp: tuple[str, int]) -> bool:
        return self.offset_store.has_pending_offset(group_id, tp)

    def fetch_offsets(self, group_id: str, topics: list[tuple[str, list[int]]] | None, require_stable: bool = False,
                      member_id: str | None = None, member_epoch: int = -1
                      ) -> tuple[int, list[tuple[str, list[tuple[int, int, int, str, int]]]]]:
        """(group error, [(topic, [(partition, offset, leader epoch, metadata, error)])]); topics None = all.
        With ``require_stable``, a partition with a transactional commit pending is UNSTABLE_OFFSET_COMMIT.
        A consumer group's member (OffsetFetch v9+) must be at its current epoch."""
        if not self.owns(group_id):
            return ErrorCode.NOT_COORDINATOR, []
        consumer_group = self.consumer.groups.get(group_id)
        if consumer_group is not None:
            error = self.consumer.validate_offset_fetch(consumer_group, member_id, member_epoch)
            if error:
                return error, []
            return ErrorCode.NONE, self.offset_store.fetch(group_id, topics, require_stable)
        return ErrorCode.NONE, self.offset_store.fetch(group_id, topics, require_stable,
                                                       group_alive=self.classic.is_alive(group_id))

    def delete_offsets(self, group_id: str, topics: list[tuple[str, list[int]]]) -> tuple[int, PartitionErrors]:
        if not self.owns(group_id):
            return ErrorCode.NOT_COORDINATOR, []
        consumer_group = self.consumer.groups.get(group_id)
        if consumer_group is not None:
            return self.offset_store.delete(group_id, topics, self.consumer.subscribed_topics(consumer_group))
        error, subscribed = self.classic.offset_delete_check(group_id)
        if error:
            return error, []
        return self.offset_store.delete(group_id, topics, subscribed)

    # =========================================================================== DeleteGroups
    def delete_groups(self, group_ids: list[str]) -> list[tuple[str, int]]:
        out = []
        for group_id in group_ids:
            if not self.owns(group_id):
                out.append((group_id, ErrorCode.NOT_COORDINATOR))
                continue
            consumer_group = self.consumer.groups.get(group_id)
            if consumer_group is not None:
                error = ErrorCode.NON_EMPTY_GROUP if not consumer_group.is_empty else self._delete_consumer_group(
                    consumer_group)
                out.append((group_id, error))
                continue
            error = self.classic.delete_check(group_id)
            if not error:
                error = self._delete_group(self.groups[group_id])
            out.append((group_id, error))
        return out

    def _delete_group(self, group: ClassicGroup) -> int:
        """Tombstone the group's offsets and its metadata in one batch, then forget both."""
        group_id = group.group_id
        error = self.runtime.append(group_id, self.offset_store.tombstones(group_id) + [self.classic.tombstone(group_id)])
        if error:
            return error
        self.offset_store.forget(group_id)
        self.classic.remove_group(group)
        return ErrorCode.NONE

    def _delete_consumer_group(self, group: ConsumerGroup) -> int:
        error = self.consumer.delete(group, self.offset_store.tombstones(group.group_id))
        if not error:
            self.offset_store.forget(group.group_id)
        return error

    # =========================================================================== retention
    def _schedule_expiration(self) -> None:
        self.runtime.timers.schedule(("offsets-retention",), self.config.retention_check_ms, self._expire_offsets_tick)

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
            expires, since = self.classic.offsets_expire_since(group)
            if expires:
                removed += self.offset_store.expire(group_id, now, since)
            if not self.offset_store.has_offsets(group_id):
                self.offset_store.forget(group_id)
                if group.state == EMPTY:
                    self._delete_group(group)
        for group_id, consumer_group in list(self.consumer.groups.items()):
            # a consumer group keeps its offsets while it has members; once empty, each expires
            # retention after its commit (Kafka's ConsumerGroup.offsetExpirationCondition)
            if consumer_group.is_empty:
                removed += self.offset_store.expire(group_id, now, None)
                if not self.offset_store.has_offsets(group_id):
                    self._delete_consumer_group(consumer_group)
        return removed
