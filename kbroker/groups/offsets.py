"""Committed offsets of groups: the offset store of the group coordinator, persisted in
`__consumer_offsets` through the coordinator runtime (kbroker.coordinator).

An OffsetCommit is appended as one batch of offset records (Kafka's format, kbroker.groups.records)
and applied once appended; an OffsetDelete, an expiry or a deleted topic appends tombstones. A
transactional offset commit (TxnOffsetCommit) is appended in a transactional batch of its producer
and stays pending, invisible to OffsetFetch, until its transaction's marker lands on (or is replayed
from) the group's partition: COMMIT makes the offsets the group's, ABORT drops them. Who may commit
(generation, member) is the group protocol's business (kbroker.groups.classic_protocol); this module
only checks what is about the offsets: the partition exists, the metadata is not too large.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from ..protocol.errors import ErrorCode
from . import records as fmt

if TYPE_CHECKING:
    from ..coordinator import CoordinatorRuntime
    from ..coordinator.services import Catalogue
    from ..metadata import Topic

log = logging.getLogger("kbroker.groups")

TopicPartition = tuple[str, int]
# [(topic, [(partition, offset, leader epoch, metadata)])]
OffsetsToCommit = list[tuple[str, list[tuple[int, int, int, "str | None"]]]]
# [(topic, [(partition, error)])]
PartitionErrors = list[tuple[str, list[tuple[int, int]]]]


@dataclass(slots=True)
class OffsetAndMetadata:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1


def everywhere(topics: OffsetsToCommit, error: int) -> PartitionErrors:
    """The same error for every partition asked about."""
    return [(name, [(p[0], error) for p in parts]) for name, parts in topics]


def _tombstones(group_id: str, partitions: Iterable[TopicPartition]) -> list[tuple[bytes, None]]:
    return [(fmt.encode_offset_commit_key(group_id, topic, partition), None) for topic, partition in partitions]


class OffsetStore:
    def __init__(self, runtime: CoordinatorRuntime, catalogue: Catalogue, *, metadata_max_bytes: int,
                 retention_ms: int):
        self._runtime = runtime
        self._catalogue = catalogue
        self.metadata_max_bytes = metadata_max_bytes
        self.retention_ms = retention_ms
        self.offsets: dict[str, dict[TopicPartition, OffsetAndMetadata]] = {}
        # transactional offset commits awaiting their transaction's marker: producer id -> group -> offsets
        self.pending_txn_offsets: dict[int, dict[str, dict[TopicPartition, OffsetAndMetadata]]] = {}

    # =========================================================================== replay
    def replay(self, key: fmt.OffsetCommitKey, value: bytes | None, producer_id: int | None) -> bool:
        """Apply an offset record read back from the log; True when the group now has offsets."""
        tp = (key.topic, key.partition)
        if producer_id is not None:
            if value is not None:  # a transactional commit: pending until its marker
                v = fmt.decode_offset_commit_value(value)
                self.pending_txn_offsets.setdefault(producer_id, {}).setdefault(key.group, {})[tp] = \
                    OffsetAndMetadata(v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp)
            return False
        if value is None:
            group_offsets = self.offsets.get(key.group)
            if group_offsets is not None:
                group_offsets.pop(tp, None)
                if not group_offsets:
                    del self.offsets[key.group]
            return False
        v = fmt.decode_offset_commit_value(value)
        self.offsets.setdefault(key.group, {})[tp] = OffsetAndMetadata(
            v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp)
        return True

    # =========================================================================== OffsetCommit
    def _partition_exists(self, topic: str, partition: int) -> bool:
        t = self._catalogue.get(topic)
        return t is not None and 0 <= partition < t.partitions

    def _metadata_too_large(self, metadata: str | None) -> bool:
        return metadata is not None and len(metadata.encode()) > self.metadata_max_bytes

    def commit(self, group_id: str, topics: OffsetsToCommit, retention_time_ms: int | None, now: int
               ) -> PartitionErrors:
        """Store the offsets of an OffsetCommit whose member the group accepted."""
        expire = now + retention_time_ms if retention_time_ms is not None and retention_time_ms >= 0 else -1
        results: list[tuple[str, list[list[int]]]] = []
        records: list[tuple[bytes, bytes | None]] = []
        accepted: list[tuple[TopicPartition, OffsetAndMetadata]] = []
        for name, parts in topics:
            out = []
            for partition, offset, epoch, metadata in parts:
                if not self._partition_exists(name, partition):
                    out.append([partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION])
                elif self._metadata_too_large(metadata):
                    out.append([partition, ErrorCode.OFFSET_METADATA_TOO_LARGE])
                else:
                    value = OffsetAndMetadata(offset, epoch if epoch is not None else -1, metadata or "", now, expire)
                    records.append((fmt.encode_offset_commit_key(group_id, name, partition),
                                    fmt.encode_offset_commit_value(fmt.OffsetCommitValue(
                                        value.offset, value.leader_epoch, value.metadata, now, expire))))
                    accepted.append(((name, partition), value))
                    out.append([partition, ErrorCode.NONE])
            results.append((name, out))
        error = self._runtime.append(group_id, records)
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

    # =========================================================================== transactional offsets
    def commit_transactional(self, group_id: str, producer_id: int, producer_epoch: int, topics: OffsetsToCommit,
                             now: int) -> PartitionErrors:
        """Write the offsets in a transactional batch of the producer; pending until the marker."""
        results, records, accepted = [], [], []
        for name, parts in topics:
            out = []
            for partition, offset, epoch, metadata in parts:
                if self._metadata_too_large(metadata):
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
            error = self._runtime.append(group_id, records, producer_id=producer_id, producer_epoch=producer_epoch,
                                         transactional=True)
            if error:
                return everywhere(topics, error)
            pending = self.pending_txn_offsets.setdefault(producer_id, {}).setdefault(group_id, {})
            for tp, value in accepted:
                pending[tp] = value
        return results

    def complete_transaction(self, offsets_partition: int, producer_id: int, commit: bool) -> list[str]:
        """A transaction marker was written to (or replayed from) a partition of __consumer_offsets:
        the producer's pending offsets of the groups in that partition are committed or dropped.
        The groups that got offsets."""
        by_group = self.pending_txn_offsets.get(producer_id)
        if not by_group:
            return []
        committed = []
        for group_id in [g for g in by_group if self._runtime.partition_for(g) == offsets_partition]:
            pending = by_group.pop(group_id)
            if commit:
                self.offsets.setdefault(group_id, {}).update(pending)
                committed.append(group_id)
        if not by_group:
            del self.pending_txn_offsets[producer_id]
        return committed

    def has_pending_offset(self, group_id: str, tp: TopicPartition) -> bool:
        return any(tp in by_group.get(group_id, ()) for by_group in self.pending_txn_offsets.values())

    # =========================================================================== OffsetFetch
    def fetch(self, group_id: str, topics: list[tuple[str, list[int]]] | None, require_stable: bool,
              group_alive: bool = True) -> list[tuple[str, list[tuple[int, int, int, str, int]]]]:
        """[(topic, [(partition, offset, leader epoch, metadata, error)])]; topics None = all. A dead
        group has none. With ``require_stable``, a partition with a transactional commit pending is
        UNSTABLE_OFFSET_COMMIT."""
        committed = self.offsets.get(group_id, {}) if group_alive else {}
        unstable = (lambda tp: self.has_pending_offset(group_id, tp)) if require_stable else (lambda tp: False)
        if topics is None:
            by_topic: dict[str, list] = {}
            for (name, partition), value in sorted(committed.items()):
                if unstable((name, partition)):
                    by_topic.setdefault(name, []).append((partition, -1, -1, "", ErrorCode.UNSTABLE_OFFSET_COMMIT))
                    continue
                by_topic.setdefault(name, []).append(
                    (partition, value.offset, value.leader_epoch, value.metadata, ErrorCode.NONE))
            return list(by_topic.items())
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
        return out

    # =========================================================================== OffsetDelete
    def delete(self, group_id: str, topics: list[tuple[str, list[int]]], subscribed: set[str] | None
               ) -> tuple[int, PartitionErrors]:
        """Delete the committed offsets of partitions of topics the group is not subscribed to
        (``subscribed`` None: the group's subscriptions are unknown, so every topic counts as one)."""
        committed = self.offsets.get(group_id, {})
        removed, out = [], []
        for name, partitions in topics:
            parts = []
            for partition in partitions:
                if not self._partition_exists(name, partition):
                    parts.append((partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
                elif subscribed is None or name in subscribed:
                    parts.append((partition, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC))
                else:
                    if (name, partition) in committed:
                        removed.append((name, partition))
                    parts.append((partition, ErrorCode.NONE))
            out.append((name, parts))
        error = self._runtime.append(group_id, _tombstones(group_id, removed))
        if error:
            return error, []
        for tp in removed:
            committed.pop(tp, None)
        return ErrorCode.NONE, out

    # =========================================================================== a group's offsets as a whole
    def tombstones(self, group_id: str) -> list[tuple[bytes, None]]:
        """The records that delete every committed offset of the group (DeleteGroups)."""
        return _tombstones(group_id, self.offsets.get(group_id, {}))

    def forget(self, group_id: str) -> None:
        """The group's tombstones were appended: its offsets are gone."""
        self.offsets.pop(group_id, None)

    def forget_pending(self, of_group) -> None:
        """Drop pending transactional offsets of the groups ``of_group`` picks (their partition moved away)."""
        for producer_id in list(self.pending_txn_offsets):
            by_group = self.pending_txn_offsets[producer_id]
            for group_id in [g for g in by_group if of_group(g)]:
                del by_group[group_id]
            if not by_group:
                del self.pending_txn_offsets[producer_id]

    def has_offsets(self, group_id: str) -> bool:
        return bool(self.offsets.get(group_id))

    # =========================================================================== expiration, deleted topics
    def expire(self, group_id: str, now: int, since: int | None) -> int:
        """Kafka's offsets.retention.minutes for one group: an offset with an expire timestamp goes at
        that time, any other once retention passed since ``since`` (the time the group became empty)
        or, when None, since its own commit. The number of offsets expired; a group left with none is
        dropped from the store."""
        committed = self.offsets.get(group_id, {})
        expired = []
        for tp, value in committed.items():
            if value.expire_timestamp >= 0:
                gone = now >= value.expire_timestamp
            else:
                gone = now - (since if since is not None else value.commit_timestamp) >= self.retention_ms
            if gone:
                expired.append(tp)
        removed = 0
        if expired and self._runtime.append(group_id, _tombstones(group_id, expired)) == ErrorCode.NONE:
            for tp in expired:
                committed.pop(tp, None)
            removed = len(expired)
            log.info("expired %d offsets of group %s", removed, group_id)
        if not committed:
            self.offsets.pop(group_id, None)
        return removed

    def topic_deleted(self, topic: Topic) -> None:
        """A deleted topic's committed offsets go too (tombstones), as in Kafka."""
        if topic.name == self._runtime.name:
            return
        for group_id, committed in list(self.offsets.items()):
            gone = [tp for tp in committed if tp[0] == topic.name]
            if gone and self._runtime.append(group_id, _tombstones(group_id, gone)) == ErrorCode.NONE:
                for tp in gone:
                    committed.pop(tp, None)
