"""The `__consumer_offsets` records of KIP-848 consumer groups, byte-compatible with Kafka 4.4's.

A record's key starts with an int16 that is the record type (Kafka's coordinator record "api key"),
followed by the key's fields in the non-flexible encoding; its value starts with an int16 version
(0 for all of these) followed by the value's fields in the flexible encoding (compact strings and
arrays, a tagged-field section closing every struct). A null value is a tombstone.

  3  ConsumerGroupMetadata              key: group          value: group epoch, metadata hash (tag 0)
  4  ConsumerGroupPartitionMetadata     key: group          value: the subscribed topics' metadata
  5  ConsumerGroupMemberMetadata        key: group, member  value: subscription, client, rack, assignor
  6  ConsumerGroupTargetAssignmentMetadata  key: group      value: assignment epoch, timestamp (tag 0)
  7  ConsumerGroupTargetAssignmentMember    key: group, member  value: the member's target partitions
  8  ConsumerGroupCurrentMemberAssignment   key: group, member  value: epochs, state, assigned and
                                                            pending-revocation partitions

Partitions are keyed by topic id, as Kafka keeps them: {topic id: frozenset of partition indexes}.
A member of a mixed group that speaks the classic protocol has its session timeout and the protocols
of its JoinGroup in the member metadata's ClassicMemberMetadata (tag 0, a nullable struct); tagged
fields this module does not model (AssignmentEpochs) are skipped on read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ..protocol.primitives import Reader, Writer

GROUP_METADATA, PARTITION_METADATA, MEMBER_METADATA = 3, 4, 5
TARGET_ASSIGNMENT_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_ASSIGNMENT = 6, 7, 8
RECORD_TYPES = (GROUP_METADATA, PARTITION_METADATA, MEMBER_METADATA, TARGET_ASSIGNMENT_METADATA,
                TARGET_ASSIGNMENT_MEMBER, CURRENT_ASSIGNMENT)
_PER_MEMBER = (MEMBER_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_ASSIGNMENT)
VALUE_VERSION = 0

Partitions = dict[uuid.UUID, frozenset[int]]
Record = tuple[bytes, "bytes | None"]


@dataclass(frozen=True, slots=True)
class Key:
    record_type: int
    group_id: str
    member_id: str | None = None


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    topic_id: uuid.UUID
    name: str
    partitions: int


@dataclass(frozen=True, slots=True)
class ClassicMemberMetadata:
    """A classic-protocol member of a consumer group: its JoinGroup's session timeout and protocols."""
    session_timeout_ms: int
    supported_protocols: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class MemberMetadata:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None
    classic: ClassicMemberMetadata | None = None


@dataclass(frozen=True, slots=True)
class CurrentAssignment:
    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned: Partitions = field(default_factory=dict)
    pending_revocation: Partitions = field(default_factory=dict)


class RecordFormatError(ValueError):
    pass


# ------------------------------------------------------------------------------- keys
def encode_key(record_type: int, group_id: str, member_id: str | None = None) -> bytes:
    w = Writer()
    w.int16(record_type)
    w.string(group_id)
    if record_type in _PER_MEMBER:
        w.string(member_id or "")
    return w.getvalue()


def decode_key(data: bytes) -> Key | None:
    """The key of a consumer group record, or None for another kind of record."""
    r = Reader(data)
    record_type = r.int16()
    if record_type not in RECORD_TYPES:
        return None
    group_id = r.string()
    return Key(record_type, group_id, r.string() if record_type in _PER_MEMBER else None)


# ------------------------------------------------------------------------------- value helpers
def _writer() -> Writer:
    w = Writer()
    w.int16(VALUE_VERSION)
    return w


def _reader(data: bytes) -> Reader:
    r = Reader(data)
    version = r.int16()
    if version != VALUE_VERSION:
        raise RecordFormatError(f"unknown consumer group record value version {version}")
    return r


def _read_tags(r: Reader) -> dict[int, bytes]:
    tags = {}
    for tag, size in r.tagged_fields():
        start = r.pos
        r.skip(size)
        tags[tag] = bytes(r.buf[start:r.pos])
    return tags


def _write_partitions(w: Writer, partitions: Partitions) -> None:
    items = sorted(partitions.items(), key=lambda item: str(item[0]))
    w.compact_array_length(items)
    for topic_id, indexes in items:
        w.uuid(topic_id)
        ordered = sorted(indexes)
        w.compact_array_length(ordered)
        for index in ordered:
            w.int32(index)
        w.tagged_fields([])


def _read_partitions(r: Reader) -> Partitions:
    out: Partitions = {}
    for _ in range(max(r.compact_array_length(), 0)):
        topic_id = r.uuid()
        indexes = frozenset(r.int32() for _ in range(max(r.compact_array_length(), 0)))
        _read_tags(r)
        if indexes:
            out[topic_id] = indexes
    return out


def _int64(value: int) -> bytes:
    w = Writer()
    w.int64(value)
    return w.getvalue()


# ------------------------------------------------------------------------------- values
def group_metadata(group_id: str, epoch: int, metadata_hash: int) -> Record:
    w = _writer()
    w.int32(epoch)
    w.tagged_fields([(0, _int64(metadata_hash))] if metadata_hash else [])
    return encode_key(GROUP_METADATA, group_id), w.getvalue()


def decode_group_metadata(data: bytes) -> tuple[int, int]:
    """(group epoch, metadata hash)."""
    r = _reader(data)
    epoch = r.int32()
    tags = _read_tags(r)
    return epoch, Reader(tags[0]).int64() if 0 in tags else 0


def partition_metadata(group_id: str, topics: list[TopicMetadata]) -> Record:
    w = _writer()
    w.compact_array_length(topics)
    for topic in topics:
        w.uuid(topic.topic_id)
        w.compact_string(topic.name)
        w.int32(topic.partitions)
        w.compact_array_length([])  # PartitionMetadata: racks are not tracked
        w.tagged_fields([])
    w.tagged_fields([])
    return encode_key(PARTITION_METADATA, group_id), w.getvalue()


def decode_partition_metadata(data: bytes) -> list[TopicMetadata]:
    r = _reader(data)
    topics = []
    for _ in range(max(r.compact_array_length(), 0)):
        topic_id, name, count = r.uuid(), r.compact_string(), r.int32()
        for _ in range(max(r.compact_array_length(), 0)):
            r.int32()
            for _ in range(max(r.compact_array_length(), 0)):
                r.compact_string()
            _read_tags(r)
        _read_tags(r)
        topics.append(TopicMetadata(topic_id, name, count))
    return topics


def member_metadata(group_id: str, member_id: str, m: MemberMetadata) -> Record:
    w = _writer()
    w.compact_nullable_string(m.instance_id)
    w.compact_nullable_string(m.rack_id)
    w.compact_string(m.client_id)
    w.compact_string(m.client_host)
    w.compact_array_length(list(m.subscribed_topic_names))
    for name in m.subscribed_topic_names:
        w.compact_string(name)
    w.compact_nullable_string(m.subscribed_topic_regex)
    w.int32(m.rebalance_timeout_ms)
    w.compact_nullable_string(m.server_assignor)
    w.tagged_fields([(0, _classic_member_metadata(m.classic))] if m.classic is not None else [])
    return encode_key(MEMBER_METADATA, group_id, member_id), w.getvalue()


def decode_member_metadata(data: bytes) -> MemberMetadata:
    r = _reader(data)
    instance_id, rack_id = r.compact_nullable_string(), r.compact_nullable_string()
    client_id, client_host = r.compact_string(), r.compact_string()
    names = tuple(r.compact_string() for _ in range(max(r.compact_array_length(), 0)))
    regex = r.compact_nullable_string()
    rebalance_timeout_ms = r.int32()
    assignor = r.compact_nullable_string()
    tags = _read_tags(r)
    classic = _decode_classic_member_metadata(tags[0]) if 0 in tags else None
    return MemberMetadata(instance_id, rack_id, client_id, client_host, names, regex, rebalance_timeout_ms, assignor,
                          classic)


def _classic_member_metadata(c: ClassicMemberMetadata) -> bytes:
    w = Writer()
    w.int8(1)  # a nullable struct: present
    w.int32(c.session_timeout_ms)
    w.compact_array_length(list(c.supported_protocols))
    for name, metadata in c.supported_protocols:
        w.compact_string(name)
        w.compact_bytes(metadata)
        w.tagged_fields([])
    w.tagged_fields([])
    return w.getvalue()


def _decode_classic_member_metadata(data: bytes) -> ClassicMemberMetadata | None:
    r = Reader(data)
    if r.int8() < 0:
        return None
    session_timeout_ms = r.int32()
    protocols = []
    for _ in range(max(r.compact_array_length(), 0)):
        name, metadata = r.compact_string(), bytes(r.compact_bytes())
        _read_tags(r)
        protocols.append((name, metadata))
    _read_tags(r)
    return ClassicMemberMetadata(session_timeout_ms, tuple(protocols))


def target_assignment_metadata(group_id: str, assignment_epoch: int, timestamp_ms: int) -> Record:
    w = _writer()
    w.int32(assignment_epoch)
    w.tagged_fields([(0, _int64(timestamp_ms))] if timestamp_ms else [])
    return encode_key(TARGET_ASSIGNMENT_METADATA, group_id), w.getvalue()


def decode_target_assignment_metadata(data: bytes) -> int:
    r = _reader(data)
    epoch = r.int32()
    _read_tags(r)
    return epoch


def target_assignment_member(group_id: str, member_id: str, partitions: Partitions) -> Record:
    w = _writer()
    _write_partitions(w, partitions)
    w.tagged_fields([])
    return encode_key(TARGET_ASSIGNMENT_MEMBER, group_id, member_id), w.getvalue()


def decode_target_assignment_member(data: bytes) -> Partitions:
    r = _reader(data)
    partitions = _read_partitions(r)
    _read_tags(r)
    return partitions


def current_assignment(group_id: str, member_id: str, a: CurrentAssignment) -> Record:
    w = _writer()
    w.int32(a.member_epoch)
    w.int32(a.previous_member_epoch)
    w.int8(a.state)
    _write_partitions(w, a.assigned)
    _write_partitions(w, a.pending_revocation)
    w.tagged_fields([])
    return encode_key(CURRENT_ASSIGNMENT, group_id, member_id), w.getvalue()


def decode_current_assignment(data: bytes) -> CurrentAssignment:
    r = _reader(data)
    epoch, previous, state = r.int32(), r.int32(), r.int8()
    assigned, pending = _read_partitions(r), _read_partitions(r)
    _read_tags(r)
    return CurrentAssignment(epoch, previous, state, assigned, pending)


def tombstone(record_type: int, group_id: str, member_id: str | None = None) -> Record:
    return encode_key(record_type, group_id, member_id), None
