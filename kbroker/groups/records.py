"""The record formats of `__consumer_offsets`, byte-compatible with Apache Kafka's.

Every record's key starts with an int16 that says what it is:
  0, 1  offset commit      key: group string, topic string, partition int32
  2     group metadata     key: group string
Values start with their own int16 version. A null value is a tombstone (the offset, or the whole
group, is gone). Kafka 4.x writes offset values at version 3 (version 1 when the commit carried a
retention time, i.e. an expire timestamp) and group values at version 3; versions 0-4 are read.
Values of version 4+ are flexible (compact strings, tagged fields) and are read here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..coordinator.runtime import partition_for  # noqa: F401  (Kafka's group id -> partition)
from ..protocol.primitives import Reader, Writer

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1
GROUP_METADATA_VALUE_VERSION = 3


@dataclass(slots=True)
class OffsetCommitKey:
    group: str
    topic: str
    partition: int


@dataclass(slots=True)
class GroupMetadataKey:
    group: str


@dataclass(slots=True)
class OffsetCommitValue:
    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp: int = -1
    expire_timestamp: int = -1


@dataclass(slots=True)
class MemberMetadata:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(slots=True)
class GroupMetadataValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    members: list[MemberMetadata] = field(default_factory=list)


# ------------------------------------------------------------------------------- encoding

def encode_offset_commit_key(group: str, topic: str, partition: int) -> bytes:
    w = Writer()
    w.int16(OFFSET_COMMIT_KEY_VERSION)
    w.string(group)
    w.string(topic)
    w.int32(partition)
    return w.getvalue()


def encode_group_metadata_key(group: str) -> bytes:
    w = Writer()
    w.int16(GROUP_METADATA_KEY_VERSION)
    w.string(group)
    return w.getvalue()


def encode_offset_commit_value(value: OffsetCommitValue) -> bytes:
    w = Writer()
    if value.expire_timestamp >= 0:
        w.int16(OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY)
        w.int64(value.offset)
        w.string(value.metadata)
        w.int64(value.commit_timestamp)
        w.int64(value.expire_timestamp)
    else:
        w.int16(OFFSET_COMMIT_VALUE_VERSION)
        w.int64(value.offset)
        w.int32(value.leader_epoch)
        w.string(value.metadata)
        w.int64(value.commit_timestamp)
    return w.getvalue()


def encode_group_metadata_value(value: GroupMetadataValue) -> bytes:
    w = Writer()
    w.int16(GROUP_METADATA_VALUE_VERSION)
    w.string(value.protocol_type)
    w.int32(value.generation)
    w.nullable_string(value.protocol)
    w.nullable_string(value.leader)
    w.int64(value.current_state_timestamp)
    w.int32(len(value.members))
    for m in value.members:
        w.string(m.member_id)
        w.nullable_string(m.group_instance_id)
        w.string(m.client_id)
        w.string(m.client_host)
        w.int32(m.rebalance_timeout)
        w.int32(m.session_timeout)
        w.bytes(m.subscription)
        w.bytes(m.assignment)
    return w.getvalue()


# ------------------------------------------------------------------------------- decoding

class RecordFormatError(ValueError):
    pass


def decode_key(data: bytes) -> OffsetCommitKey | GroupMetadataKey | None:
    """The key, or None for record types this coordinator does not keep (KIP-848 consumer groups,
    share groups...)."""
    r = Reader(data)
    version = r.int16()
    if version in (0, 1):
        return OffsetCommitKey(r.string(), r.string(), r.int32())
    if version == 2:
        return GroupMetadataKey(r.string())
    return None


def _str(r: Reader, flexible: bool) -> str:
    return r.compact_string() if flexible else r.string()


def _nstr(r: Reader, flexible: bool) -> str | None:
    return r.compact_nullable_string() if flexible else r.nullable_string()


def _skip_tags(r: Reader) -> None:
    for _tag, size in r.tagged_fields():
        r.skip(size)


def decode_offset_commit_value(data: bytes) -> OffsetCommitValue:
    r = Reader(data)
    version = r.int16()
    if not 0 <= version <= 4:
        raise RecordFormatError(f"unknown offset commit value version {version}")
    flex = version >= 4
    value = OffsetCommitValue(r.int64())
    if version >= 3:
        value.leader_epoch = r.int32()
    value.metadata = _str(r, flex)
    value.commit_timestamp = r.int64()
    if version == 1:
        value.expire_timestamp = r.int64()
    if flex:
        _skip_tags(r)
    return value


def decode_group_metadata_value(data: bytes) -> GroupMetadataValue:
    r = Reader(data)
    version = r.int16()
    if not 0 <= version <= 4:
        raise RecordFormatError(f"unknown group metadata value version {version}")
    flex = version >= 4
    value = GroupMetadataValue(_str(r, flex), r.int32(), _nstr(r, flex), _nstr(r, flex))
    if version >= 2:
        value.current_state_timestamp = r.int64()
    count = r.compact_array_length() if flex else r.array_length()
    for _ in range(max(count, 0)):
        member_id = _str(r, flex)
        instance_id = _nstr(r, flex) if version >= 3 else None
        client_id = _str(r, flex)
        client_host = _str(r, flex)
        rebalance_timeout = r.int32() if version >= 1 else -1
        session_timeout = r.int32()
        subscription = bytes(r.compact_bytes() if flex else r.bytes())
        assignment = bytes(r.compact_bytes() if flex else r.bytes())
        if flex:
            _skip_tags(r)
        if rebalance_timeout < 0:
            rebalance_timeout = session_timeout
        value.members.append(MemberMetadata(member_id, instance_id, client_id, client_host, rebalance_timeout,
                                            session_timeout, subscription, assignment))
    if flex:
        _skip_tags(r)
    return value
