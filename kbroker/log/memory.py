"""MemoryLog: a partition log whose batches live in memory, with the disk log's semantics.

For the layers above the log (the partition layer, the coordinators, handlers) in tests, and for any
log nothing needs to keep across a restart. Everything a caller can observe is BaseLog's
(kbroker.log.base), shared with PartitionLog: validation, offsets, idempotent producers,
transactions and the last stable offset, leader epochs, ListOffsets, DeleteRecords, reads up to the
high watermark; the same scenario tests run against both (the ``new_log`` fixture of tests/log_kinds.py).

Storage: each batch, once its offsets are assigned, is copied into an immutable ``bytes`` (one copy
per batch), kept in offset order with its header; a bisect on base offsets finds the batch holding
an offset. A read returns a memoryview of the whole batches it covers: of the one stored batch, or
of one joined bytes when it covers several (there are no segments, so a read is bounded only by
max_bytes and the upper offset). The aborted transactions are one list.

Where the disk log works in segments, this log works in batches: retention deletes the oldest
*batches* past retention.ms (by their max timestamp, or the time they were appended when they
carry none) or over retention.bytes, and DeleteRecords drops the batches wholly below the new log
start offset (the batch holding it stays, as the segment holding it does on disk). Nothing here
fails for lack of space, so the storage-failure paths of BaseLog never trigger.
"""

from __future__ import annotations

import bisect
from typing import Any, Mapping

from kbroker.log import retention
from kbroker.log.api import ReadResult, TimestampOffset
from kbroker.log.base import BaseLog, wall_clock_ms
from kbroker.log.checkpoint import LeaderEpochCache
from kbroker.log.config import LogConfig
from kbroker.log.txn_index import AbortedTxn, overlapping
from kbroker.protocol import records as rec
from kbroker.protocol.records import BatchHeader


class _StoredBatch:
    __slots__ = ("header", "data", "newest")

    def __init__(self, header: BatchHeader, data: bytes, newest: int):
        self.header = header
        self.data = data
        self.newest = newest  # the timestamp retention.ms goes by


class MemoryLog(BaseLog):
    def __init__(self, config: LogConfig | Mapping[str, Any] | None = None, *, topic: str = "memory",
                 partition: int = 0, log_start_offset: int = 0):
        super().__init__(config if isinstance(config, LogConfig) else LogConfig.from_dict(config),
                         LeaderEpochCache(None))
        self.topic, self.partition = topic, partition
        self.log_start_offset = log_start_offset
        self._end = log_start_offset
        self._batches: list[_StoredBatch] = []
        self._bases: list[int] = []
        self._size = 0
        self._aborted: list[AbortedTxn] = []

    @property
    def log_end_offset(self) -> int:
        return self._end

    @property
    def size_in_bytes(self) -> int:
        return self._size

    # ================================================================ storage for BaseLog

    def _store(self, mv: memoryview, headers: list[BatchHeader], last_offset: int, max_ts: int, now: int) -> None:
        for h in headers:
            data = bytes(mv[h.position:h.position + h.size])
            self._batches.append(_StoredBatch(h, data, h.max_timestamp if h.max_timestamp >= 0 else now))
            self._bases.append(h.base_offset)
            self._size += len(data)
        self._end = headers[-1].next_offset

    def _index_aborted(self, entries: list[AbortedTxn]) -> None:
        self._aborted.extend(entries)

    def _read_batches(self, result: ReadResult, offset: int, max_bytes: int, min_one_batch: bool, upper: int) -> None:
        batches = self._batches
        taken: list[bytes] = []
        size = 0
        next_offset = -1
        for i in range(max(0, bisect.bisect_right(self._bases, offset) - 1), len(batches)):
            h, data = batches[i].header, batches[i].data
            if h.base_offset >= upper or (taken and (h.last_offset >= upper or size + len(data) > max_bytes)):
                break
            taken.append(data)
            size += len(data)
            next_offset = h.next_offset
        if not taken or (not min_one_batch and size > max_bytes):
            return
        result.slices.append(memoryview(taken[0] if len(taken) == 1 else b"".join(taken)))
        result.next_offset = next_offset

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """The aborted transactions overlapping [fetch_offset, upper_bound)."""
        return overlapping(self._aborted, fetch_offset, upper_bound)

    def offset_for_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """First record with timestamp >= ``timestamp`` at or after the log start."""
        start = self.log_start_offset
        for stored in self._batches:
            h = stored.header
            if h.max_timestamp < timestamp or h.last_offset < start:
                continue
            for r in rec.decode_batch_records(stored.data):
                if r.timestamp >= timestamp and r.offset >= start:
                    return TimestampOffset(r.timestamp, r.offset, max(h.partition_leader_epoch, -1))
        return None

    def _max_timestamp_offset(self) -> TimestampOffset:
        best = None
        for stored in self._batches:
            if best is None or stored.header.max_timestamp > best.header.max_timestamp:
                best = stored
        if best is not None and best.header.max_timestamp >= 0:
            h = best.header
            for r in rec.decode_batch_records(best.data):
                if r.timestamp == h.max_timestamp:
                    return TimestampOffset(h.max_timestamp, r.offset, max(h.partition_leader_epoch, -1))
        return TimestampOffset(-1, -1, -1)

    # ================================================================ deletion

    def _delete_below_log_start(self, now_ms: int | None) -> int:
        n = bisect.bisect_right(self._bases, self.log_start_offset)
        if n and self._batches[n - 1].header.next_offset > self.log_start_offset:
            n -= 1  # the batch holding the log start stays
        self._drop(n)
        return n

    def enforce_retention(self, now_ms: int | None = None) -> int:
        """Delete the oldest batches past ``retention.ms`` / ``retention.bytes`` (cleanup.policy
        delete) and below the log start offset. Returns the number of batches deleted."""
        now = wall_clock_ms() if now_ms is None else now_ms
        deleted = self._delete_below_log_start(now)
        if not self.config.delete:
            return deleted
        count = retention.expired_count(((len(b.data), b.newest) for b in self._batches), self._size,
                                        self.config, now)
        if count:
            new_start = self._bases[count] if count < len(self._bases) else self._end
            self._drop(count)
            self._advance_log_start(new_start)
        return deleted + count

    def _drop(self, n: int) -> None:
        """Forget the ``n`` oldest batches, and the aborted transactions whose markers they held."""
        if not n:
            return
        self._size -= sum(len(b.data) for b in self._batches[:n])
        del self._batches[:n]
        del self._bases[:n]
        first = self._bases[0] if self._bases else self._end
        self._aborted = [e for e in self._aborted if e.last_offset >= first]

    # ================================================================ truncation (BaseLog.truncate_to)

    def _truncate_batches_from(self, offset: int) -> None:
        n = max(0, bisect.bisect_right(self._bases, offset) - 1)
        if n < len(self._batches) and self._batches[n].header.next_offset <= offset:
            n += 1
        self._size -= sum(len(b.data) for b in self._batches[n:])
        del self._batches[n:]
        del self._bases[n:]
        self._end = self._batches[-1].header.next_offset if self._batches else max(offset, self.log_start_offset)
        self._aborted = [e for e in self._aborted if e.last_offset < self._end]

    def _stored_batches(self):
        for stored in self._batches:
            yield stored.header, (lambda data=stored.data: data)

    # ================================================================ lifecycle

    def close(self) -> None:
        self.offline = "log is closed"

    def delete(self) -> None:
        self.close()
        self._drop(len(self._batches))
