"""The record format of `__transaction_state`, byte-compatible with Apache Kafka's.

Key: version int16 (0), transactional id (string). Value (a null value is a tombstone): version
int16, then producer id int64, producer epoch int16, transaction timeout int32, state int8, the
partitions of the transaction (nullable array of topic + partition ids; null in state Empty), last
update timestamp int64, start timestamp int64. Version 1 is the flexible form (compact strings and
arrays, tagged fields: 0 previous producer id, 1 next producer id, 2 client transaction version).
Kafka writes version 0 for a transaction run with transaction version 1 and version 1 for one run
with version 2 (KIP-890 part 2), and so does kbroker (kbroker.txn.coordinator); both are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol.primitives import Reader, Writer

KEY_VERSION = 0
VALUE_VERSION = 0

# transaction states, with the ids Kafka persists and the names DescribeTransactions reports
EMPTY, ONGOING, PREPARE_COMMIT, PREPARE_ABORT, COMPLETE_COMMIT, COMPLETE_ABORT, DEAD, PREPARE_EPOCH_FENCE = range(8)
STATE_NAMES = ["Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead",
               "PrepareEpochFence"]


class RecordFormatError(ValueError):
    pass


@dataclass(slots=True)
class TransactionLogValue:
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: int
    partitions: list[tuple[str, int]] = field(default_factory=list)
    last_update_ms: int = -1
    start_ms: int = -1
    previous_producer_id: int = -1
    next_producer_id: int = -1
    client_transaction_version: int = 0


def encode_key(transactional_id: str) -> bytes:
    w = Writer()
    w.int16(KEY_VERSION)
    w.string(transactional_id)
    return w.getvalue()


def decode_key(data: bytes) -> str | None:
    """The transactional id, or None for a key version this broker does not know."""
    r = Reader(data)
    if r.int16() != KEY_VERSION:
        return None
    return r.string()


def _by_topic(partitions: list[tuple[str, int]]) -> dict[str, list[int]]:
    topics: dict[str, list[int]] = {}
    for topic, partition in sorted(partitions):
        topics.setdefault(topic, []).append(partition)
    return topics


def encode_value(value: TransactionLogValue, version: int = VALUE_VERSION) -> bytes:
    w = Writer()
    w.int16(version)
    w.int64(value.producer_id)
    w.int16(value.producer_epoch)
    w.int32(value.timeout_ms)
    w.int8(value.state)
    topics = None if value.state == EMPTY else _by_topic(value.partitions)
    if version == 0:
        if topics is None:
            w.int32(-1)
        else:
            w.int32(len(topics))
            for topic, ids in topics.items():
                w.string(topic)
                w.int32(len(ids))
                for p in ids:
                    w.int32(p)
    else:
        if topics is None:
            w.uvarint(0)
        else:
            w.uvarint(len(topics) + 1)
            for topic, ids in topics.items():
                w.compact_string(topic)
                w.uvarint(len(ids) + 1)
                for p in ids:
                    w.int32(p)
                w.uvarint(0)
    w.int64(value.last_update_ms)
    w.int64(value.start_ms)
    if version >= 1:
        tags = []
        for tag, v, size in ((0, value.previous_producer_id, 8), (1, value.next_producer_id, 8),
                             (2, value.client_transaction_version, 2)):
            if v not in (-1, 0) or (tag == 2 and v != 0):
                tags.append((tag, v.to_bytes(size, "big", signed=True)))
        w.tagged_fields(tags)
    return w.getvalue()


def decode_value(data: bytes) -> TransactionLogValue:
    r = Reader(data)
    version = r.int16()
    if version not in (0, 1):
        raise RecordFormatError(f"unknown transaction log value version {version}")
    flex = version >= 1
    value = TransactionLogValue(r.int64(), r.int16(), r.int32(), r.int8())
    count = r.compact_array_length() if flex else r.array_length()
    for _ in range(max(count, 0)):
        topic = r.compact_string() if flex else r.string()
        n = r.compact_array_length() if flex else r.array_length()
        for _ in range(max(n, 0)):
            value.partitions.append((topic, r.int32()))
        if flex:
            for _tag, size in r.tagged_fields():
                r.skip(size)
    value.last_update_ms = r.int64()
    value.start_ms = r.int64()
    if flex:
        for tag, size in r.tagged_fields():
            if tag == 0 and size == 8:
                value.previous_producer_id = r.int64()
            elif tag == 1 and size == 8:
                value.next_producer_id = r.int64()
            elif tag == 2 and size == 2:
                value.client_transaction_version = r.int16()
            else:
                r.skip(size)
    if value.state == EMPTY:
        value.partitions = []
    if not 0 <= value.state < len(STATE_NAMES):
        raise RecordFormatError(f"unknown transaction state {value.state}")
    return value
