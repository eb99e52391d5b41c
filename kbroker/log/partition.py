"""PartitionLog: the durable, segmented log of one partition (directory ``<topic>-<partition>/``).

Synchronous file I/O, no trio: the server calls it from its event loop (appends and reads are a few
syscalls each) and may run ``flush()`` in a worker thread. Not otherwise thread-safe.

The semantics (validation, idempotence, transactions, leader epochs, ListOffsets rules,
DeleteRecords, storage failures) are BaseLog's (kbroker.log.base); this class keeps the batches in
segment files (kbroker.log.segment): the last one is active and takes the appends, one write each,
and a new one is rolled by segment.bytes, segment.ms, a full index or an offset range past int32.
A read finds the batch holding the offset via the segment's sparse index and a short header walk,
and returns a FileSlice of whole batches of that one segment, for os.sendfile.

Elsewhere: opening and repairing the directory is kbroker.log.recovery; retention, DeleteRecords'
segment deletion and the graveyard of deleted segments are kbroker.log.retention (and compaction's
log cleaner will sit beside it). Durability: ``flush`` fsyncs what was written and moves the
recovery point; by default only the flusher's schedule or a clean close does so.
"""

from __future__ import annotations

import bisect
import os
import shutil
from typing import Any, Mapping

from kbroker.log import durability, recovery, retention
from kbroker.log.api import FileSlice, ReadResult, TimestampOffset
from kbroker.log.base import BaseLog, wall_clock_ms
from kbroker.log.checkpoint import LeaderEpochCache
from kbroker.log.config import LONG_MAX, LogConfig
from kbroker.log.segment import LogSegment
from kbroker.log.txn_index import AbortedTxn
from kbroker.protocol import records as rec
from kbroker.protocol.records import BatchHeader


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        return None
    return topic, int(partition)


class PartitionLog(BaseLog):
    def __init__(self, directory: str, config: LogConfig):
        super().__init__(config, LeaderEpochCache(directory))
        self.directory = directory
        parsed = parse_partition_dir(os.path.basename(os.path.normpath(directory)))
        self.topic, self.partition = parsed if parsed else (os.path.basename(directory), 0)
        self.segments: list[LogSegment] = []
        self._bases: list[int] = []
        self.recovery_point = 0  # everything below is fsynced
        self.unflushed_messages = 0
        self.last_flush_ms = wall_clock_ms()
        self.topic_id: str | None = None
        self.graveyard = retention.Graveyard()
        self._closed = False

    @classmethod
    def open(
        cls,
        directory: str,
        config: LogConfig | Mapping[str, Any] | None = None,
        *,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        topic_id=None,
        now_ms: int | None = None,
    ) -> "PartitionLog":
        """Open (creating if needed) the partition directory and recover it (kbroker.log.recovery).

        Batches at offsets >= ``recovery_point`` are CRC-checked; a torn or corrupt tail is
        truncated; missing or inconsistent indexes are rebuilt. Logs one line saying what it did.
        """
        if not isinstance(config, LogConfig):
            config = LogConfig.from_dict(config)
        durability.make_directory(directory)
        log = cls(directory, config)
        recovery.recover(log, recovery_point=recovery_point, log_start_offset=log_start_offset, topic_id=topic_id,
                         now_ms=wall_clock_ms() if now_ms is None else now_ms)
        return log

    def _new_segment(self, base: int, now_ms: int) -> LogSegment:
        return LogSegment(
            self.directory,
            base,
            index_bytes=self.config.segment_index_bytes,
            index_interval=self.config.index_interval_bytes,
            now_ms=now_ms,
        )

    def _add_segment(self, seg: LogSegment) -> None:
        self.segments.append(seg)
        self._bases.append(seg.base_offset)

    # ================================================================ offsets

    @property
    def active_segment(self) -> LogSegment:
        return self.segments[-1]

    @property
    def log_end_offset(self) -> int:
        return self.segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        """BaseLog's (the log end offset), read directly: Fetch asks for it per partition."""
        return self.segments[-1].next_offset

    @property
    def size_in_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    # ================================================================ append (BaseLog.append)

    def _store(self, mv: memoryview, headers: list[BatchHeader], last_offset: int, max_ts: int, now: int) -> None:
        self._maybe_roll(len(mv), last_offset, max_ts, now)
        self.active_segment.append(mv, headers)

    def _index_aborted(self, entries: list[AbortedTxn]) -> None:
        self.active_segment.txn_index.extend(entries)  # the segment holding the markers

    def _after_append(self, record_count: int, now: int) -> None:
        self.unflushed_messages += record_count
        if self.unflushed_messages >= self.config.flush_messages:
            self.flush(now)

    def _maybe_roll(self, size: int, last_offset: int, max_ts: int, now_ms: int) -> None:
        seg = self.active_segment
        if seg.size == 0:
            return
        cfg = self.config
        if seg.rolling_timestamp is not None and seg.rolling_timestamp >= 0 and max_ts >= 0:
            waited = max_ts - seg.rolling_timestamp
        else:
            waited = now_ms - seg.created_ms
        if (
            seg.size > cfg.segment_bytes - size
            or waited > cfg.segment_ms - cfg.segment_jitter_ms
            or seg.index.is_full
            or seg.time_index.is_full
            or last_offset - seg.base_offset > rec.INT32_MAX
        ):
            self.roll(now_ms)

    def roll(self, now_ms: int | None = None) -> LogSegment:
        """Start a new active segment at the log end offset (no-op if the active one is empty).
        All or nothing: on OSError the old segment stays active and no new files stay behind."""
        seg = self.active_segment
        if seg.size == 0:
            return seg
        new = self._new_segment(self.log_end_offset, wall_clock_ms() if now_ms is None else now_ms)
        try:
            seg.on_become_inactive()
        except OSError:
            new.close()
            new.unlink()
            raise
        new.next_offset = new.base_offset
        self._add_segment(new)
        return new

    # ================================================================ read (BaseLog.read)

    def _read_batches(self, result: ReadResult, offset: int, max_bytes: int, min_one_batch: bool, upper: int) -> None:
        i = max(0, bisect.bisect_right(self._bases, offset) - 1)
        for seg in self.segments[i:]:
            h = seg.find_batch(offset)
            if h is not None:
                break
        else:
            return
        if h.base_offset >= upper:
            return
        seg_end = seg.size
        if upper < seg.next_offset:
            stop = seg.find_batch(upper)
            if stop is not None:
                seg_end = stop.position
        end = min(seg.batches_end(h.position, max_bytes), seg_end)
        if end <= h.position:
            end = h.position + h.size
        if not min_one_batch and end - h.position > max_bytes:
            return
        result.slices.append(FileSlice(seg.fd, h.position, end - h.position))
        result.next_offset = seg._header_at(end).base_offset if end < seg.size else seg.next_offset

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """The aborted transactions overlapping [fetch_offset, upper_bound), from the .txnindex of
        the segment holding ``fetch_offset`` on (a transaction's marker is never before its data)."""
        i = max(0, bisect.bisect_right(self._bases, fetch_offset) - 1)
        out: list[AbortedTxn] = []
        for seg in self.segments[i:]:
            if seg.txn_index.entries:
                out.extend(seg.txn_index.collect(fetch_offset, upper_bound))
        return out

    # ================================================================ truncation (BaseLog.truncate_to)

    def _truncate_batches_from(self, offset: int) -> None:
        """Later segments are unlinked (their files stay open in the graveyard for readers
        mid-sendfile); the segment holding ``offset`` is cut at that batch and re-walked as recovery
        walks a segment, which brings its indexes and maxima back in line with the file."""
        now = wall_clock_ms()
        while len(self.segments) > 1 and self.segments[-1].base_offset >= offset:
            seg = self.segments.pop()
            self._bases.pop()
            seg.unlink()
            self.graveyard.bury(seg, now + self.config.file_delete_delay_ms)
        seg = self.segments[-1]
        h = seg.find_batch(offset)
        if h is not None:
            seg.truncate(h.position)
            seg.txn_index.rewrite(e for e in seg.txn_index.entries if e.last_offset < h.base_offset)
        recovery.load_segment(seg, LONG_MAX, lambda _h: None)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)

    def _stored_batches(self):
        for seg in self.segments:
            for h in seg.iter_headers():
                yield h, (lambda seg=seg, h=h: seg.pread(h.position, h.size))

    # ================================================================ offsets lookups

    def offset_for_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """First record with timestamp >= ``timestamp`` at or after the log start, via the time index."""
        for seg in self.segments:
            if seg.max_timestamp >= timestamp and seg.next_offset > self.log_start_offset:
                found = seg.find_offset_by_timestamp(timestamp, self.log_start_offset)
                if found is not None:
                    ts, off, epoch = found
                    return TimestampOffset(ts, off, epoch if epoch >= 0 else -1)
        return None

    def _max_timestamp_offset(self) -> TimestampOffset:
        best = None
        for seg in self.segments:
            if best is None or seg.max_timestamp > best.max_timestamp:
                best = seg
        if best is None or best.max_timestamp < 0:
            return TimestampOffset(-1, -1, -1)
        _, position = best.index.lookup(best.offset_of_max_timestamp)
        for h in best.iter_headers(position):
            if h.max_timestamp == best.max_timestamp:
                for r in rec.decode_batch_records(best.pread(h.position, h.size)):
                    if r.timestamp == h.max_timestamp:
                        return TimestampOffset(h.max_timestamp, r.offset, max(h.partition_leader_epoch, -1))
                break
        return TimestampOffset(-1, -1, -1)

    # ================================================================ deletion (kbroker.log.retention)

    def _delete_below_log_start(self, now_ms: int | None) -> int:
        return retention.delete_segments_below_start(self, wall_clock_ms() if now_ms is None else now_ms)

    def enforce_retention(self, now_ms: int | None = None) -> int:
        """Delete whole segments past ``retention.ms`` / ``retention.bytes`` (cleanup.policy delete)
        and below the log start offset. Returns the number of segments deleted."""
        return retention.enforce_retention(self, wall_clock_ms() if now_ms is None else now_ms)

    # ================================================================ durability

    def flush_due(self, now_ms: int | None = None) -> bool:
        """True when ``flush.ms`` has passed with unflushed data, or a rolled segment awaits fsync."""
        if self.recovery_point >= self.log_end_offset:
            return False
        if any(s.dirty for s in self.segments[:-1]):
            return True
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        return self.config.flush_ms != LONG_MAX and now_ms - self.last_flush_ms >= self.config.flush_ms

    def flush(self, now_ms: int | None = None) -> int:
        """fsync every segment written since the last flush; returns the new recovery point.
        May run in a worker thread while the event loop appends."""
        target = self.log_end_offset
        for seg in list(self.segments):
            if seg.dirty and seg.fd >= 0:
                seg.fsync()
        self.recovery_point = max(self.recovery_point, target)
        self.unflushed_messages = 0
        self.last_flush_ms = wall_clock_ms() if now_ms is None else now_ms
        return self.recovery_point

    def close(self) -> None:
        """Flush and close (a clean shutdown: the recovery point becomes the log end offset)."""
        if self._closed:
            return
        for seg in self.segments:
            seg.index.write_pending()
            seg.time_index.write_pending()
        self.flush()
        self.epochs.save()
        for seg in self.segments:
            seg.close()
        self.graveyard.close_all()
        self._closed = True
        self.offline = "log is closed"

    def delete(self) -> None:
        """Close and remove the whole partition directory."""
        self._closed = True
        self.offline = "log is closed"
        for seg in self.segments:
            seg.close()
        self.graveyard.close_all()
        self.segments, self._bases = [], []
        shutil.rmtree(self.directory, ignore_errors=True)
