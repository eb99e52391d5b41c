"""What compaction keeps of one batch: Kafka's cleaner filter (LogCleaner.cleanInto and
MemoryRecords.filterTo), as pure functions over batch bytes.

- ``iter_records`` walks the records of a batch payload without building Record objects: where each
  record's bytes are, its offset and timestamp deltas, its key and whether it has a value.
  ``keyless_records`` is the produce-time check of a compacted topic (INVALID_RECORD).
- ``CleanedTransactions`` follows transactions through the cleaned range as Kafka's
  CleanedTransactionMetadata does: data of aborted transactions (from the aborted-transaction index)
  is discarded, and a marker is discarded only once no data of its transaction is left -- and then
  only after a delete horizon, like a tombstone.
- ``filter_batch`` decides one batch: dropped, copied as its bytes (nothing removed), rebuilt with
  the records kept (same base offset, last offset delta, producer id/epoch/base sequence and codec,
  so producer state survives), or reduced to an empty header (the last batch of an active producer,
  or the last batch of the cleaning round, keeps its offsets even when none of its records stays).
  A batch that keeps a tombstone (or a marker that may go) gets its delete horizon (KIP-534:
  now + delete.retention.ms, in the base timestamp); once past it, those go at the next cleaning.

Per-record work happens here, in the cleaner's worker process, never on the produce/fetch path (the
produce-time key check walks only the bytes up to each key, about 1.5 us a record). Run in a
thread of the broker instead (``CleaningJob.run_here``), the walk sleeps GIL_PAUSE every
YIELD_EVERY records: the event loop, which gives the GIL up at every system call, would otherwise
wait up to the 5 ms switch interval to get it back after each one.
"""

from __future__ import annotations

import heapq
import struct
import time
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Protocol

from kbroker.log.txn_index import AbortedTxn
from kbroker.protocol import compression
from kbroker.protocol import records as rec
from kbroker.protocol.errors import ApiError, ErrorCode, InvalidRecordBatch
from kbroker.protocol.records import BatchHeader, read_varint, write_varint

_U32 = struct.Struct(">I")
YIELD_EVERY = 32  # records between GIL hand-overs (~0.3 ms of work)
GIL_PAUSE = 50e-6  # a real sleep: the thread leaves the CPU, so the event loop's thread runs even
#                    when every core is busy (time.sleep(0) returns before another thread is scheduled)


class RecordSpan(NamedTuple):
    start: int  # the record's first byte (its length varint) in the payload
    end: int
    fields: int  # where its key length starts (after attributes, timestamp and offset deltas)
    timestamp_delta: int
    offset_delta: int
    key: bytes | None
    has_value: bool


def iter_records(data, count: int) -> Iterator[RecordSpan]:
    """The ``count`` records of an uncompressed payload; InvalidRecordBatch if they are malformed.
    Run in the cleaner's worker thread: it hands the GIL over every few records (module docstring)."""
    end = len(data)
    pos = 0
    for i in range(count):
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            time.sleep(GIL_PAUSE)
        start = pos
        length, pos = read_varint(data, pos, end, 5)
        rend = pos + length
        if length < rec.MIN_RECORD_SIZE - 1 or rend > end:
            raise InvalidRecordBatch(f"invalid record length {length}", ErrorCode.CORRUPT_MESSAGE)
        ts_delta, pos = read_varint(data, pos + 1, rend)
        off_delta, pos = read_varint(data, pos, rend, 5)
        fields_at = pos
        key_len, pos = read_varint(data, pos, rend, 5)
        key = None
        if key_len >= 0:
            key = bytes(data[pos:pos + key_len])
            pos += key_len
        value_len, _ = read_varint(data, pos, rend, 5)
        yield RecordSpan(start, rend, fields_at, ts_delta, off_delta, key, value_len >= 0)
        pos = rend


def keyless_records(batch: memoryview, h: BatchHeader) -> list[int]:
    """Indexes of the records without a key in the batch at ``h.position`` of ``batch``.
    Uncompressed: walks the bytes of the memoryview up to each key, nothing is copied, nothing
    decoded but the record and key lengths (a null key is the varint -1: the single byte 0x01)."""
    if h.compression == compression.NONE:
        data = batch[h.position + rec.HEADER_SIZE:h.position + h.size]
    else:
        data = memoryview(rec.batch_payload(batch, h))
    end = len(data)
    pos = 0
    keyless = []
    try:
        for i in range(h.record_count):
            length, pos = read_varint(data, pos, end, 5)
            rend = pos + length
            pos += 1  # attributes
            while data[pos] & 0x80:  # timestamp delta
                pos += 1
            pos += 1
            while data[pos] & 0x80:  # offset delta
                pos += 1
            if rend > end or pos >= rend:
                raise IndexError
            if data[pos + 1] == 1:  # key length -1
                keyless.append(i)
            pos = rend
    except IndexError:
        raise InvalidRecordBatch("record runs past the end of the batch", ErrorCode.CORRUPT_MESSAGE) from None
    return keyless


# ---------------------------------------------------------------------------- transactions


@dataclass(slots=True)
class _Aborted:
    txn: AbortedTxn
    last_observed_batch: int = -1


@dataclass
class CleanedTransactions:
    """Transactions met while walking the cleaned range in offset order (Kafka's
    CleanedTransactionMetadata). ``aborted`` are the aborted transactions overlapping the range."""

    aborted: list[AbortedTxn]
    cleaned_index: list[AbortedTxn] = field(default_factory=list)  # retained markers' entries

    def __post_init__(self) -> None:
        self._heap = [(t.first_offset, i, t) for i, t in enumerate(dict.fromkeys(self.aborted))]
        heapq.heapify(self._heap)
        self._committed: set[int] = set()
        self._ongoing_aborted: dict[int, _Aborted] = {}

    def _consume_up_to(self, offset: int) -> None:
        while self._heap and self._heap[0][0] <= offset:
            txn = heapq.heappop(self._heap)[2]
            self._ongoing_aborted.setdefault(txn.producer_id, _Aborted(txn))

    def on_control_batch(self, h: BatchHeader, batch) -> bool:
        """A control batch was read; True if it may be discarded (no data of its transaction left)."""
        self._consume_up_to(h.last_offset)
        if h.record_count == 0:
            return True  # an empty control batch was already cleaned
        try:
            kind, _ = rec.read_control_record(batch)
        except ApiError:
            return False
        if kind == rec.CONTROL_ABORT:
            ongoing = self._ongoing_aborted.pop(h.producer_id, None)
            if ongoing is not None and ongoing.last_observed_batch >= 0:
                self.cleaned_index.append(ongoing.txn)  # retained until its data is gone
                return False
            return True
        if kind == rec.CONTROL_COMMIT:
            if h.producer_id in self._committed:
                self._committed.discard(h.producer_id)
                return False
            return True
        return False

    def on_data_batch(self, h: BatchHeader) -> bool:
        """A data batch was read; True if it belongs to an aborted transaction (discard it)."""
        self._consume_up_to(h.last_offset)
        if not h.is_transactional:
            return False
        ongoing = self._ongoing_aborted.get(h.producer_id)
        if ongoing is not None:
            ongoing.last_observed_batch = h.last_offset
            return True
        self._committed.add(h.producer_id)
        return False


# ---------------------------------------------------------------------------- one batch


class LastOfProducer(NamedTuple):
    """What the cleaner must keep of an active producer: the batch holding its last data offset
    (its last sequence), or, when it has none, its last marker (its epoch)."""
    last_data_offset: int | None
    epoch: int


class OffsetLookup(Protocol):
    """What filter_batch needs of the offset map (kbroker.log.offset_map)."""
    latest_offset: int

    def get(self, key: bytes) -> int | None: ...


@dataclass(slots=True)
class FilterContext:
    offsets: OffsetLookup
    transactions: CleanedTransactions
    producers: dict[int, LastOfProducer]
    round_end: int  # the cleaning round's end offset: its last batch is kept, even empty
    now_ms: int
    delete_retention_ms: int
    records_read: int = 0
    records_kept: int = 0
    earliest_horizon: int = -1  # the earliest delete horizon still ahead in what was kept (-1: none)

    def note_horizon(self, horizon: int) -> None:
        if self.earliest_horizon < 0 or horizon < self.earliest_horizon:
            self.earliest_horizon = horizon


def filter_batch(batch: bytes, h: BatchHeader, ctx: FilterContext) -> bytes | None:
    """What stays of one batch (``batch`` holds exactly it, ``h`` its header at position 0):
    None to drop it, the batch itself, a rebuilt batch, or an empty header."""
    if h.is_control:
        can_discard = ctx.transactions.on_control_batch(h, batch)
        discard_records = can_discard and h.has_delete_horizon and h.base_timestamp <= ctx.now_ms
    else:
        can_discard = discard_records = ctx.transactions.on_data_batch(h)
    retain_empty = (h.has_producer_id and _last_of_producer(h, ctx.producers)) or h.next_offset == ctx.round_end
    if discard_records and not retain_empty:
        ctx.records_read += h.record_count
        return None
    marker_for_empty_txn = can_discard and h.is_control
    payload = rec.batch_payload(batch, h) if h.compression != compression.NONE else memoryview(batch)[rec.HEADER_SIZE:]
    kept: list[RecordSpan] = []
    all_kept = True
    tombstones = False
    base_ts = h.base_timestamp
    retain_deletes = not h.has_delete_horizon or ctx.now_ms < base_ts
    for r in iter_records(payload, h.record_count):
        ctx.records_read += 1
        if discard_records:
            keep = False
        elif h.is_control:
            keep = True
        else:
            keep = _retain_record(r, h.base_offset + r.offset_delta, ctx.offsets, retain_deletes)
        if keep:
            kept.append(r)
            tombstones = tombstones or not r.has_value
        else:
            all_kept = False
    ctx.records_kept += len(kept)
    set_horizon = (tombstones or marker_for_empty_txn) and not h.has_delete_horizon
    if kept:
        if h.has_delete_horizon and base_ts > ctx.now_ms:
            ctx.note_horizon(base_ts)  # what it keeps for now goes at a cleaning after this time
        if all_kept and not set_horizon:
            return batch
        horizon = ctx.now_ms + ctx.delete_retention_ms if set_horizon else None
        if horizon is not None:
            ctx.note_horizon(horizon)
        return _rebuild(h, payload, kept, horizon)
    if retain_empty:
        return empty_batch(h)
    return None


def _retain_record(r: RecordSpan, offset: int, offsets: OffsetLookup, retain_deletes: bool) -> bool:
    if offset > offsets.latest_offset:
        return True  # beyond what the map covers
    if r.key is None:
        return False
    latest = offsets.get(r.key)
    return (latest is None or offset >= latest) and (r.has_value or retain_deletes)


def _last_of_producer(h: BatchHeader, producers: dict[int, LastOfProducer]) -> bool:
    last = producers.get(h.producer_id)
    if last is None:
        return False
    if last.last_data_offset is not None:
        return h.last_offset == last.last_data_offset
    return h.is_control and h.producer_epoch == last.epoch


def _rebuild(h: BatchHeader, payload, kept: list[RecordSpan], delete_horizon: int | None) -> bytes:
    """The batch with only ``kept`` records: offsets, producer fields, codec and last offset delta
    kept (Kafka keeps the last offset so the last sequence survives). Records keep their bytes
    unless a delete horizon becomes the base timestamp, which re-bases their timestamp deltas."""
    body = bytearray()
    log_append = h.timestamp_type == rec.LOG_APPEND_TIME
    base_ts = h.base_timestamp
    max_ts = -1
    for r in kept:
        ts = base_ts + r.timestamp_delta
        max_ts = max(max_ts, ts)
        if delete_horizon is None:
            body += payload[r.start:r.end]
        else:
            inner = bytearray(b"\x00")
            write_varint(inner, ts - delete_horizon)
            write_varint(inner, r.offset_delta)
            inner += payload[r.fields:r.end]
            write_varint(body, len(inner))
            body += inner
    attributes = h.attributes
    if delete_horizon is not None:
        attributes |= rec.DELETE_HORIZON_MASK
        base_ts = delete_horizon
    if log_append or h.is_control:
        max_ts = h.max_timestamp
    data = compression.compress(h.compression, body) if h.compression != compression.NONE else bytes(body)
    return _pack(h, attributes, base_ts, max_ts, len(kept), data)


def empty_batch(h: BatchHeader) -> bytes:
    """A header-only batch with ``h``'s offsets and producer fields (Kafka's writeEmptyHeader)."""
    attributes = h.attributes & ~(rec.COMPRESSION_MASK | rec.DELETE_HORIZON_MASK)
    return _pack(h, attributes, h.max_timestamp, h.max_timestamp, 0, b"")


def _pack(h: BatchHeader, attributes: int, base_ts: int, max_ts: int, count: int, data: bytes) -> bytes:
    out = bytearray(rec.HEADER_SIZE)
    rec._HEADER.pack_into(out, 0, h.base_offset, rec.HEADER_SIZE - rec.LOG_OVERHEAD + len(data),
                          h.partition_leader_epoch, 2, 0, attributes, h.last_offset_delta, base_ts, max_ts,
                          h.producer_id, h.producer_epoch, h.base_sequence, count)
    out += data
    _U32.pack_into(out, rec.CRC_OFFSET, rec.compute_crc(out, 0, len(out)))
    return bytes(out)
