"""PartitionLog: the durable, segmented log of one partition (directory ``<topic>-<partition>/``).

Synchronous file I/O, no trio: the server calls it from its event loop (appends and reads are a few
syscalls each) and may run ``flush()`` in a worker thread. Not otherwise thread-safe.

Append = validate the batch headers (records.py), check idempotence, assign offsets by patching the
batch bytes, one os.write. Read = find the batch holding the offset via the sparse index and a short
header walk, return file slices of whole batches for os.sendfile / os.preadv.
"""

from __future__ import annotations

import bisect
import logging
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

from kbroker.log import checkpoint, durability
from kbroker.log.checkpoint import LeaderEpochCache
from kbroker.log.config import LONG_MAX, LogConfig
from kbroker.log.producer_state import ProducerStateManager
from kbroker.log.recovery import load_segment
from kbroker.log.segment import LogSegment
from kbroker.log.txn_index import AbortedTxn
from kbroker.protocol import records as rec
from kbroker.protocol.errors import ErrorCode, ApiError
from kbroker.protocol.records import BatchHeader

logger = logging.getLogger("kbroker.log")

# ListOffsets special timestamps
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5

# who is appending: a client's Produce, or the broker itself (group/txn coordinators, markers)
ORIGIN_CLIENT = "client"
ORIGIN_COORDINATOR = "coordinator"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class AppendResult:
    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int
    record_count: int
    max_timestamp: int
    duplicate: bool = False  # an idempotent retry: nothing written, offsets are the original ones


class FileSlice(NamedTuple):
    fd: int
    position: int
    length: int


@dataclass(slots=True)
class ReadResult:
    slices: list[FileSlice]
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    # the offset just past the returned batches (the fetch's upper bound for aborted transactions)
    next_offset: int = -1

    @property
    def size(self) -> int:
        return sum(s.length for s in self.slices)

    def to_bytes(self) -> bytes:
        return b"".join(os.pread(s.fd, s.length, s.position) for s in self.slices)


class TimestampOffset(NamedTuple):
    timestamp: int
    offset: int
    leader_epoch: int  # -1 when unknown


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        return None
    return topic, int(partition)


class PartitionLog:
    def __init__(self, directory: str, config: LogConfig):
        self.directory = directory
        self.config = config
        parsed = parse_partition_dir(os.path.basename(os.path.normpath(directory)))
        self.topic, self.partition = parsed if parsed else (os.path.basename(directory), 0)
        self.segments: list[LogSegment] = []
        self._bases: list[int] = []
        self.producer_state = ProducerStateManager()
        self.epochs = LeaderEpochCache(directory)
        self.log_start_offset = 0
        self.recovery_point = 0  # everything below is fsynced
        self.unflushed_messages = 0
        self.last_flush_ms = _now_ms()
        self.topic_id: str | None = None
        self._graveyard: list[tuple[int, LogSegment]] = []  # (close after ms, segment)
        self._closed = False

    # ================================================================ open / recovery

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
        """Open (creating if needed) the partition directory and recover it.

        Batches at offsets >= ``recovery_point`` are CRC-checked; a torn or corrupt tail is
        truncated; missing or inconsistent indexes are rebuilt. Logs one line saying what it did.
        """
        if not isinstance(config, LogConfig):
            config = LogConfig.from_dict(config)
        now_ms = _now_ms() if now_ms is None else now_ms
        started = time.monotonic()
        durability.make_directory(directory)
        log = cls(directory, config)
        log.topic_id = checkpoint.read_partition_metadata(directory)
        if topic_id is not None:
            tid = checkpoint.topic_id_to_str(topic_id)
            if tid != log.topic_id:
                checkpoint.write_partition_metadata(directory, tid)
                log.topic_id = tid

        names = os.listdir(directory)
        for n in names:  # leftovers of interrupted writes and deletions
            if n.endswith((".tmp", ".deleted", ".cleaned", ".swap")):
                os.unlink(os.path.join(directory, n))
        bases = sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())
        for n in names:  # indexes whose .log is gone
            stem, ext = os.path.splitext(n)
            if ext in (".index", ".timeindex", ".txnindex") and stem.isdigit() and int(stem) not in bases:
                os.unlink(os.path.join(directory, n))

        notes: list[str] = []
        validated = truncated = rebuilt = 0
        epochs_seen = LeaderEpochCache(directory)

        rebuilt_aborted: list[AbortedTxn] = []

        def on_batch(h: BatchHeader) -> None:
            if h.has_producer_id:
                if h.is_control:
                    entry = log._replay_marker(seg, h)
                    if entry is not None:
                        rebuilt_aborted.append(entry)
                else:
                    log.producer_state.update(h)
            if h.partition_leader_epoch >= 0:
                epochs_seen.assign(h.partition_leader_epoch, h.base_offset, save=False)

        for i, base in enumerate(bases):
            seg = log._new_segment(base, now_ms)
            nxt = bases[i + 1] if i + 1 < len(bases) else None
            rebuilt_aborted = []
            report = load_segment(seg, recovery_point, on_batch, expected_next_offset=nxt)
            if log._recover_txn_index(seg, rebuilt_aborted):
                notes.append(f"rebuilt {os.path.basename(seg.txn_index.path)}")
            log._add_segment(seg)
            validated += report.validated_batches
            rebuilt += report.rebuilt_index + report.rebuilt_time_index
            if report.truncated_at >= 0:
                truncated += report.truncated_bytes
                notes.append(
                    f"truncated {report.truncated_bytes} bytes ({report.truncate_reason}) at position "
                    f"{report.truncated_at} of {os.path.basename(seg.log_path)}"
                )
                if nxt is not None:  # everything after a hole is unreachable
                    for later in bases[i + 1 :]:
                        gone = log._new_segment(later, now_ms)
                        gone.txn_index.delete()
                        truncated += gone.size
                        gone.unlink()
                        gone.close()
                    notes.append(f"deleted {len(bases) - i - 1} later segment(s)")
                    break
        if not log.segments:
            log._add_segment(log._new_segment(log_start_offset, now_ms))

        leo = log.log_end_offset
        log.log_start_offset = min(max(log_start_offset, log.segments[0].base_offset), leo)
        log.recovery_point = min(recovery_point, leo)
        loaded = log.epochs.load()
        if not loaded and leo > log.segments[0].base_offset:
            notes.append("rebuilt leader-epoch-checkpoint")
        on_disk = log.epochs.entries if loaded else None
        log.epochs.truncate_from_end(leo)
        for epoch, start in epochs_seen.entries:
            if log.epochs.latest_epoch is None or epoch > log.epochs.latest_epoch:
                log.epochs.assign(epoch, start, save=False)
        # written only when it differs from the file (a new partition's first epoch comes with becoming
        # leader, as in Kafka; an unchanged file is not rewritten at every start)
        if log.epochs.entries != on_disk and (log.epochs.entries or loaded or os.path.exists(log.epochs.path)):
            log.epochs.save()
        log.producer_state.forget_before(log.log_start_offset)

        if rebuilt:
            notes.append(f"rebuilt {rebuilt} index file(s)")
        level = logging.WARNING if truncated or rebuilt else logging.INFO
        logger.log(
            level,
            "Loaded partition %s-%d from %s: %d segment(s), offsets [%d, %d), %d batch(es) re-validated from "
            "recovery point %d%s in %.1f ms",
            log.topic, log.partition, directory, len(log.segments), log.log_start_offset, leo, validated,
            recovery_point, ("; " + "; ".join(notes)) if notes else "", (time.monotonic() - started) * 1000,
        )
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

    def _replay_marker(self, seg: LogSegment, h: BatchHeader) -> AbortedTxn | None:
        """A transaction marker met during recovery: close the producer's transaction; the aborted
        transaction's index entry, or None for a commit (or another control record)."""
        try:
            kind, coordinator_epoch = rec.read_control_record(seg.pread(h.position, h.size))
        except ApiError:
            return None
        return self._complete_transaction(h, kind, coordinator_epoch)

    def _complete_transaction(self, h: BatchHeader, kind: int, coordinator_epoch: int = -1) -> AbortedTxn | None:
        if kind not in (rec.CONTROL_COMMIT, rec.CONTROL_ABORT):
            return None
        first = self.producer_state.complete_transaction(h, coordinator_epoch)
        if kind == rec.CONTROL_COMMIT:
            return None
        unstable = self.producer_state.first_unstable_offset()
        return AbortedTxn(h.producer_id, first, h.base_offset, h.next_offset if unstable is None else unstable)

    @staticmethod
    def _recover_txn_index(seg: LogSegment, rebuilt: list[AbortedTxn]) -> bool:
        """Keep the segment's .txnindex when the replay agrees with it; otherwise rewrite it. An
        entry on disk may know a first offset the replay cannot (its data lies in deleted segments):
        for the same producer and marker offset the file's entry wins. True when rewritten."""
        on_disk = seg.txn_index.load()
        known = {(e.producer_id, e.last_offset): e for e in on_disk}
        merged = [known.get((e.producer_id, e.last_offset), e) for e in rebuilt]
        if merged == on_disk:
            return False
        seg.txn_index.rewrite(merged)
        return True

    # ================================================================ offsets

    @property
    def active_segment(self) -> LogSegment:
        return self.segments[-1]

    @property
    def log_end_offset(self) -> int:
        return self.segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        """Single broker: every appended batch is committed (Kafka's HW does not wait for fsync)."""
        return self.segments[-1].next_offset

    @property
    def size_in_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    # ================================================================ append

    def append(
        self,
        records,
        now_ms: int | None = None,
        *,
        leader_epoch: int = 0,
        origin: str = ORIGIN_CLIENT,
    ) -> AppendResult:
        """Append the records field of a Produce request (one v2 batch) or, for ``origin=
        ORIGIN_COORDINATOR``, one or more batches the broker built itself.

        The bytes are patched in place (offsets, leader epoch, LogAppendTime) when writable,
        otherwise copied once. Raises ApiError (nothing written) with CORRUPT_MESSAGE,
        INVALID_RECORD, MESSAGE_TOO_LARGE, INVALID_TIMESTAMP, OUT_OF_ORDER_SEQUENCE_NUMBER or
        INVALID_PRODUCER_EPOCH. A duplicate idempotent batch returns the original offsets.
        """
        if self._closed:
            raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, "log is closed")
        cfg = self.config
        now_ms = _now_ms() if now_ms is None else now_ms
        mv = records if isinstance(records, memoryview) else memoryview(records)
        if mv.readonly:
            mv = memoryview(bytearray(mv))
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        client = origin == ORIGIN_CLIENT
        if client:
            headers = rec.validate_produce_records(mv, max_batch_bytes=cfg.max_message_bytes)
        else:
            headers = list(rec.iter_batches(mv))
            if not headers:
                raise ApiError(ErrorCode.CORRUPT_MESSAGE, "no complete record batch")
        end = headers[-1].position + headers[-1].size
        if end != len(mv):
            mv = mv[:end]
        if end > cfg.segment_bytes:
            raise ApiError(ErrorCode.RECORD_LIST_TOO_LARGE, f"{end} bytes of records exceed segment.bytes {cfg.segment_bytes}")

        log_append_time = cfg.log_append_time
        if not client:
            for h in headers:
                if h.is_control and h.has_producer_id:
                    self.producer_state.check_marker(h.producer_id, h.producer_epoch)
        if client:
            self._check_timestamps(mv, headers, now_ms, log_append_time)
            for h in headers:
                if h.has_producer_id:
                    dup = self.producer_state.find_duplicate(h)
                    if dup is not None:
                        return AppendResult(
                            dup.first_offset, dup.last_offset, -1, self.log_start_offset, h.record_count,
                            dup.timestamp, duplicate=True,
                        )
                    self.producer_state.check(h)

        # assign offsets (and epoch, LogAppendTime) by patching the headers in place
        next_offset = self.log_end_offset
        first_offset = next_offset
        max_ts = -1
        count = 0
        for h in headers:
            h.base_offset = next_offset
            rec.set_base_offset(mv, h.position, next_offset)
            if client or h.partition_leader_epoch < 0:
                h.partition_leader_epoch = leader_epoch
                rec.set_partition_leader_epoch(mv, h.position, leader_epoch)
            if log_append_time:
                rec.set_log_append_time(mv, h, now_ms)
            next_offset = h.next_offset
            max_ts = max(max_ts, h.max_timestamp)
            count += h.record_count

        self._maybe_roll(len(mv), next_offset - 1, max_ts, now_ms)
        seg = self.active_segment
        seg.append(mv, headers)

        for h in headers:
            if h.has_producer_id:
                if h.is_control:
                    try:
                        kind, coordinator_epoch = rec.read_control_record(mv[h.position:h.position + h.size])
                    except ApiError:
                        kind, coordinator_epoch = -1, -1
                    aborted = self._complete_transaction(h, kind, coordinator_epoch)
                    if aborted is not None:
                        seg.txn_index.append(aborted)
                else:
                    self.producer_state.update(h)
            if h.partition_leader_epoch >= 0 and (
                self.epochs.latest_epoch is None or h.partition_leader_epoch > self.epochs.latest_epoch
            ):
                self.epochs.assign(h.partition_leader_epoch, h.base_offset)
        self.unflushed_messages += count
        if self.unflushed_messages >= cfg.flush_messages:
            self.flush(now_ms)
        return AppendResult(
            first_offset, next_offset - 1, now_ms if log_append_time else -1, self.log_start_offset, count, max_ts
        )

    def append_end_txn_marker(self, producer_id: int, producer_epoch: int, commit: bool, *,
                              coordinator_epoch: int = 0, leader_epoch: int = 0,
                              now_ms: int | None = None) -> AppendResult:
        """Write a transaction's COMMIT or ABORT marker (the transaction coordinator does this).
        Raises ApiError(INVALID_PRODUCER_EPOCH) for a marker older than the producer's epoch."""
        batch = rec.build_end_txn_marker(commit, producer_id, producer_epoch, coordinator_epoch, now_ms=now_ms)
        return self.append(batch, now_ms, leader_epoch=leader_epoch, origin=ORIGIN_COORDINATOR)

    @property
    def last_stable_offset(self) -> int:
        """The first offset of the earliest open transaction, else the high watermark."""
        unstable = self.producer_state.first_unstable_offset()
        hw = self.high_watermark
        return hw if unstable is None else min(unstable, hw)

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        return self.producer_state.has_ongoing_transaction(producer_id, producer_epoch)

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """The aborted transactions overlapping [fetch_offset, upper_bound), from the .txnindex of
        the segment holding ``fetch_offset`` on (a transaction's marker is never before its data)."""
        i = max(0, bisect.bisect_right(self._bases, fetch_offset) - 1)
        out: list[AbortedTxn] = []
        for seg in self.segments[i:]:
            if seg.txn_index.entries:
                out.extend(seg.txn_index.collect(fetch_offset, upper_bound))
        return out

    def _check_timestamps(self, mv: memoryview, headers: list[BatchHeader], now_ms: int, log_append_time: bool) -> None:
        """Kafka checks each record's timestamp. The batch's first and max timestamps bound them all,
        so only a batch that fails is decoded, to name the offending record as Kafka does."""
        cfg = self.config
        for h in headers:
            if log_append_time:
                if h.timestamp_type == rec.LOG_APPEND_TIME:
                    raise ApiError(ErrorCode.INVALID_TIMESTAMP, "producer should not set timestamp type to LogAppendTime")
                continue
            lo = now_ms - cfg.message_timestamp_before_max_ms
            hi = now_ms + cfg.message_timestamp_after_max_ms
            stamps = (h.max_timestamp,) if h.timestamp_type == rec.LOG_APPEND_TIME else (h.base_timestamp, h.max_timestamp)
            if all(ts == rec.NO_TIMESTAMP or lo <= ts <= hi for ts in stamps):
                continue
            offending = next((r for r in rec.decode_batch_records(mv[h.position:h.position + h.size])
                              if not lo <= r.timestamp <= hi), None)
            offset, ts = (offending.offset, offending.timestamp) if offending else (0, h.max_timestamp)
            raise ApiError(ErrorCode.INVALID_TIMESTAMP, f"Timestamp {ts} of message with offset {offset} is out of range. "
                                f"The timestamp should be within [{lo}, {hi}]", record_index=offset - h.base_offset)

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
        """Start a new active segment at the log end offset (no-op if the active one is empty)."""
        seg = self.active_segment
        if seg.size == 0:
            return seg
        seg.on_become_inactive()
        new = self._new_segment(self.log_end_offset, _now_ms() if now_ms is None else now_ms)
        new.next_offset = new.base_offset
        self._add_segment(new)
        return new

    # ================================================================ read

    def read(
        self, offset: int, max_bytes: int, *, min_one_batch: bool = True, max_offset: int | None = None
    ) -> ReadResult:
        """File slices of the whole batches from the one holding ``offset``, up to ``max_bytes``
        (but at least one batch when ``min_one_batch``, KIP-74). ``max_offset`` (exclusive, default
        the high watermark) bounds what is returned, for read_committed's last stable offset.

        Raises ApiError(OFFSET_OUT_OF_RANGE) unless log_start_offset <= offset <= log_end_offset.
        """
        leo = self.log_end_offset
        result = ReadResult([], self.high_watermark, self.log_start_offset, leo)
        if offset < self.log_start_offset or offset > leo:
            raise ApiError(ErrorCode.OFFSET_OUT_OF_RANGE, f"offset {offset} is out of range [{self.log_start_offset}, {leo}]")
        upper = self.high_watermark if max_offset is None else min(max_offset, self.high_watermark)
        if offset >= upper or max_bytes < 0:
            return result
        i = max(0, bisect.bisect_right(self._bases, offset) - 1)
        for seg in self.segments[i:]:
            h = seg.find_batch(offset)
            if h is not None:
                break
        else:
            return result
        if h.base_offset >= upper:
            return result
        seg_end = seg.size
        if upper < seg.next_offset:
            stop = seg.find_batch(upper)
            if stop is not None:
                seg_end = stop.position
        end = min(seg.batches_end(h.position, max_bytes), seg_end)
        if end <= h.position:
            end = h.position + h.size
        if not min_one_batch and end - h.position > max_bytes:
            return result
        result.slices.append(FileSlice(seg.fd, h.position, end - h.position))
        result.next_offset = seg._header_at(end).base_offset if end < seg.size else seg.next_offset
        return result

    def read_bytes(self, offset: int, max_bytes: int, **kw) -> bytes:
        return self.read(offset, max_bytes, **kw).to_bytes()

    # ================================================================ offsets lookups

    def list_offsets(self, timestamp: int, read_committed: bool = False) -> TimestampOffset:
        """ListOffsets for one partition: -1 latest, -2 earliest (-4 earliest local), -3 max
        timestamp, -5 latest tiered (none), else the first offset whose timestamp >= ``timestamp``.
        Returns TimestampOffset(-1, -1, -1) when no record qualifies. With ``read_committed`` the
        latest offset is the last stable offset, and a record found by timestamp must lie below it."""
        found = self._list_offsets(timestamp, read_committed)
        if read_committed and timestamp not in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP, LATEST_TIMESTAMP) \
                and found.offset >= self.last_stable_offset:
            return TimestampOffset(-1, -1, -1)
        return found

    def _list_offsets(self, timestamp: int, read_committed: bool) -> TimestampOffset:
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            first = self.epochs.epochs[0] if self.epochs.epochs and self.epochs.starts[0] <= self.log_start_offset else -1
            if timestamp == EARLIEST_LOCAL_TIMESTAMP:
                first = self.epochs.epoch_for_offset(self.log_start_offset)
                first = -1 if first is None else first
            return TimestampOffset(-1, self.log_start_offset, first)
        if timestamp == LATEST_TIMESTAMP:
            latest = self.epochs.latest_epoch
            end = self.last_stable_offset if read_committed else self.log_end_offset
            return TimestampOffset(-1, end, -1 if latest is None else latest)
        if timestamp == LATEST_TIERED_TIMESTAMP:
            return TimestampOffset(-1, -1, -1)
        if timestamp == MAX_TIMESTAMP:
            return self._max_timestamp_offset()
        if timestamp < 0:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"invalid timestamp {timestamp}")
        return self.offset_for_timestamp(timestamp) or TimestampOffset(-1, -1, -1)

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

    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (leader epoch, end offset); (-1, -1) if unknown."""
        return self.epochs.end_offset_for(leader_epoch, self.log_end_offset)

    def assign_leader_epoch(self, epoch: int) -> None:
        """On becoming leader with ``epoch``, as Kafka does: the epoch starts at the log end offset."""
        if self.epochs.latest_epoch is None or epoch > self.epochs.latest_epoch:
            self.epochs.assign(epoch, self.log_end_offset)

    # ================================================================ deletion

    def delete_records_before(self, offset: int, now_ms: int | None = None) -> int:
        """DeleteRecords: move the log start offset to ``offset`` (-1: the high watermark) and delete
        segments wholly below it. Returns the new log start offset (the low watermark).
        Raises OFFSET_OUT_OF_RANGE if ``offset`` is beyond the high watermark."""
        if offset == -1:
            offset = self.high_watermark
        if offset < 0 or offset > self.high_watermark:
            raise ApiError(ErrorCode.OFFSET_OUT_OF_RANGE, f"cannot delete records before {offset}: high watermark is {self.high_watermark}")
        if offset > self.log_start_offset:
            self.log_start_offset = offset
            self.epochs.truncate_from_start(offset)
            self.producer_state.forget_before(offset)
            self._delete_segments_below_start(now_ms)
        return self.log_start_offset

    def _delete_segments_below_start(self, now_ms: int | None) -> int:
        n = 0
        while len(self.segments) > 1 and self.segments[1].base_offset <= self.log_start_offset:
            self._delete_oldest(now_ms)
            n += 1
        if self.log_start_offset >= self.log_end_offset and self.active_segment.size > 0:
            self.roll(now_ms)
            self._delete_oldest(now_ms)
            n += 1
        return n

    def _delete_oldest(self, now_ms: int | None) -> None:
        seg = self.segments.pop(0)
        self._bases.pop(0)
        seg.unlink()
        now_ms = _now_ms() if now_ms is None else now_ms
        self._graveyard.append((now_ms + self.config.file_delete_delay_ms, seg))

    def enforce_retention(self, now_ms: int | None = None) -> int:
        """Delete whole segments past ``retention.ms`` / ``retention.bytes`` (cleanup.policy delete)
        and below the log start offset. Returns the number of segments deleted."""
        now_ms = _now_ms() if now_ms is None else now_ms
        self._reap(now_ms)
        deleted = self._delete_segments_below_start(now_ms)
        if not self.config.delete:
            return deleted
        cfg = self.config
        excess = self.size_in_bytes - cfg.retention_bytes if cfg.retention_bytes >= 0 else 0
        count = 0
        for i, seg in enumerate(self.segments):
            last = i == len(self.segments) - 1
            if last and seg.size == 0:
                break
            newest = seg.max_timestamp if seg.max_timestamp >= 0 else int(os.path.getmtime(seg.log_path) * 1000)
            by_time = cfg.retention_ms >= 0 and now_ms - newest > cfg.retention_ms
            by_size = excess > 0 and excess - seg.size >= 0
            if not (by_time or by_size):
                break
            excess -= seg.size
            count += 1
        if count:
            if count == len(self.segments):
                self.roll(now_ms)
            new_start = self.segments[count].base_offset
            for _ in range(count):
                self._delete_oldest(now_ms)
            if new_start > self.log_start_offset:
                self.log_start_offset = new_start
                self.epochs.truncate_from_start(new_start)
                self.producer_state.forget_before(new_start)
        return deleted + count

    def _reap(self, now_ms: int) -> None:
        keep = []
        for when, seg in self._graveyard:
            if when <= now_ms:
                seg.close()
            else:
                keep.append((when, seg))
        self._graveyard = keep

    # ================================================================ durability

    def flush_due(self, now_ms: int | None = None) -> bool:
        """True when ``flush.ms`` has passed with unflushed data, or a rolled segment awaits fsync."""
        if self.recovery_point >= self.log_end_offset:
            return False
        if any(s.dirty for s in self.segments[:-1]):
            return True
        now_ms = _now_ms() if now_ms is None else now_ms
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
        self.last_flush_ms = _now_ms() if now_ms is None else now_ms
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
        for _, seg in self._graveyard:
            seg.close()
        self._graveyard = []
        self._closed = True

    def delete(self) -> None:
        """Close and remove the whole partition directory."""
        self._closed = True
        for seg in self.segments:
            seg.close()
        for _, seg in self._graveyard:
            seg.close()
        self.segments, self._bases, self._graveyard = [], [], []
        shutil.rmtree(self.directory, ignore_errors=True)
