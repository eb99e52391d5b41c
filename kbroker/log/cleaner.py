"""The log cleaner: compaction of ``cleanup.policy=compact`` logs, as Kafka's LogCleaner does it.

Choosing (``LogCleaner.grab``, on the thread that serves the logs). A compacted log's dirty section
starts at its first dirty offset (the ``cleaner-offset-checkpoint`` of the log directory, else the
log start) and ends at its first uncleanable offset: the active segment's base, the last stable
offset (nothing of an open transaction is cleaned), and the first segment younger than
``min.compaction.lag.ms``. The log with the highest dirty ratio (dirty bytes / bytes up to the first
uncleanable offset) above ``min.cleanable.dirty.ratio`` is cleaned; a log whose dirty section has
waited longer than ``max.compaction.lag.ms``, or whose tombstones' delete horizon has passed, is
cleaned whatever its ratio.

Cleaning (a ``CleaningJob``; the broker runs the heavy steps in worker threads). The job reads the
segments through its own descriptors, so retention or DeleteRecords on the serving thread never
pull a file from under it.
1. ``build_map`` (worker): key -> offset of its last record over the dirty section, skipping data of
   aborted transactions and control batches, bounded by the dedupe buffer (kbroker.log.offset_map);
   where the map is full, this cleaning's range ends and the next one starts.
2. ``groups``: the segments from the log's start up to the end of the mapped range, in runs whose
   sizes add up to at most ``segment.bytes`` (small segments merge into one).
3. ``clean_group`` (worker): every batch goes through kbroker.log.compaction's filter into a
   ``.cleaned`` segment (kbroker.log.segment_swap), fsynced; I/O throttled to
   ``log.cleaner.io.max.bytes.per.second`` shared by all cleaner threads.
4. ``swap`` (serving thread): the cleaned segment replaces the group atomically (a few unlinks and
   renames; the fsyncs are the worker's), unless the log changed meanwhile (its segments deleted,
   truncated, the log closed): then the job is aborted and its files removed; the next pass starts
   over.
5. ``finish``: the checkpoint moves to the end of the cleaned range (the file is written by
   ``LogCleaner.write_checkpoint``, in a worker thread); one INFO line per cleaning.

The memory log (kbroker.log.memory) is not cleaned: it is for tests of the layers above, and its
compacted topics simply keep every record.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from kbroker.log import checkpoint, segment_swap
from kbroker.log.compaction import CleanedTransactions, FilterContext, LastOfProducer, filter_batch, iter_records
from kbroker.log.config import LONG_MAX
from kbroker.log.offset_map import OffsetMap
from kbroker.log.segment_swap import CleanedSegment, CleanedSegmentWriter
from kbroker.protocol import compression
from kbroker.protocol import records as rec
from kbroker.protocol.records import BatchHeader

if TYPE_CHECKING:
    from kbroker.log.partition import PartitionLog
    from kbroker.log.segment import LogSegment

logger = logging.getLogger("kbroker.log.cleaner")

CHECKPOINT_FILE = "cleaner-offset-checkpoint"
_READ_CHUNK = 1 << 20


class CleaningAborted(Exception):
    """The log changed under a cleaning (or the broker stops): its work is thrown away."""


@dataclass(frozen=True, slots=True)
class CleanerConfig:
    """The broker's log.cleaner.* settings, with Kafka's defaults."""
    enable: bool = True
    threads: int = 1
    dedupe_buffer_size: int = 128 * 1024 * 1024
    io_max_bytes_per_second: float = 1.7976931348623157e308
    backoff_ms: int = 15_000

    @classmethod
    def from_broker_config(cls, config) -> "CleanerConfig":
        return cls(enable=config.get("log.cleaner.enable"), threads=config.get("log.cleaner.threads"),
                   dedupe_buffer_size=config.get("log.cleaner.dedupe.buffer.size"),
                   io_max_bytes_per_second=config.get("log.cleaner.io.max.bytes.per.second"),
                   backoff_ms=config.get("log.cleaner.backoff.ms"))


class Throttler:
    """Sleeps the calling thread so the bytes reported stay under ``rate`` per second (shared)."""

    def __init__(self, rate: float):
        self.rate = rate
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._bytes = 0

    def throttle(self, n: int) -> None:
        if self.rate >= 1e300:
            return
        with self._lock:
            self._bytes += n
            now = time.monotonic()
            elapsed = now - self._start
            wait = self._bytes / self.rate - elapsed
            if elapsed > 1.0 and wait <= 0:  # a new window
                self._start, self._bytes = now, 0
        if wait > 0:
            time.sleep(wait)


@dataclass(slots=True)
class _Source:
    """A segment as the job found it: the object (to check at swap time) and its own descriptor."""
    segment: LogSegment
    fd: int
    size: int
    base_offset: int
    next_offset: int
    index_entries: int
    txn_entries: list
    mtime: float
    max_timestamp: int


@dataclass
class LogToClean:
    tp: tuple[str, int]
    log: PartitionLog
    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    dirty_bytes: int
    forced: bool

    @property
    def ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


class LogCleaner:
    """The compaction state of one log directory: checkpoints, logs in progress, tombstone horizons."""

    def __init__(self, log_dir: str, logs: Mapping[tuple[str, int], PartitionLog], config: CleanerConfig | None = None):
        self.log_dir = log_dir
        self.logs = logs
        self.config = config or CleanerConfig()
        self.throttler = Throttler(self.config.io_max_bytes_per_second)
        self.checkpoint_path = os.path.join(log_dir, CHECKPOINT_FILE)
        self.checkpoints = checkpoint.read_offset_checkpoint(self.checkpoint_path)
        self.in_progress: set[tuple[str, int]] = set()
        self.uncleanable: set[tuple[str, int]] = set()
        # per log, the earliest delete horizon ahead in what its last cleaning kept: the log is cleaned
        # again then, new data or not (in memory: after a restart, the next dirty cleaning does it)
        self.horizons: dict[tuple[str, int], int] = {}
        self.cleanings = 0

    def configure(self, config: CleanerConfig) -> None:
        self.config = config
        self.throttler = Throttler(config.io_max_bytes_per_second)

    # ------------------------------------------------------------------ choosing

    def candidates(self, now_ms: int) -> list[LogToClean]:
        out = []
        for tp, log in list(self.logs.items()):
            if not log.config.compact or tp in self.in_progress or tp in self.uncleanable or log.offline:
                continue
            candidate = self._measure(tp, log, now_ms)
            if candidate is not None:
                out.append(candidate)
        return out

    def _measure(self, tp, log: PartitionLog, now_ms: int) -> LogToClean | None:
        cfg = log.config
        start, leo = log.log_start_offset, log.log_end_offset
        first_dirty = self.checkpoints.get(tp, start)
        if not start <= first_dirty <= leo:
            first_dirty = start
        inactive = log.segments[:-1]
        uncleanable = min(log.last_stable_offset, log.active_segment.base_offset)
        if cfg.min_compaction_lag_ms > 0:
            young = next((s for s in inactive if s.next_offset > first_dirty
                          and s.max_timestamp > now_ms - cfg.min_compaction_lag_ms), None)
            if young is not None:
                uncleanable = min(uncleanable, young.base_offset)
        first_dirty = min(first_dirty, uncleanable)
        clean = sum(s.size for s in inactive if s.next_offset <= first_dirty)
        dirty_segments = [s for s in inactive if s.next_offset > first_dirty and s.base_offset < uncleanable]
        dirty = sum(s.size for s in dirty_segments)
        if clean + dirty == 0:
            return None
        forced = False
        if dirty and cfg.max_compaction_lag_ms < LONG_MAX:
            first_ts = dirty_segments[0].rolling_timestamp
            forced = first_ts is not None and first_ts >= 0 and now_ms - first_ts > cfg.max_compaction_lag_ms
        horizon = self.horizons.get(tp)
        if horizon is not None and horizon <= now_ms:
            forced = True
        candidate = LogToClean(tp, log, first_dirty, uncleanable, clean, dirty, forced)
        if forced or (dirty and candidate.ratio > cfg.min_cleanable_dirty_ratio):
            return candidate
        return None

    def grab(self, now_ms: int | None = None) -> CleaningJob | None:
        """The filthiest log's cleaning job (it is in progress until finished or aborted), or None."""
        if not self.config.enable:
            return None
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        candidates = self.candidates(now_ms)
        if not candidates:
            return None
        chosen = max(candidates, key=lambda c: (c.forced, c.ratio))
        budget = self.config.dedupe_buffer_size // max(1, self.config.threads)
        job = CleaningJob(self, chosen, now_ms, OffsetMap(budget))
        self.in_progress.add(chosen.tp)
        return job

    # ------------------------------------------------------------------ bookkeeping

    def _finished(self, job: CleaningJob) -> None:
        self.in_progress.discard(job.tp)
        self.checkpoints[job.tp] = job.end_offset
        horizon = job.ctx.earliest_horizon if job.ctx is not None else -1
        if horizon >= 0:
            self.horizons[job.tp] = horizon
        else:
            self.horizons.pop(job.tp, None)
        self.cleanings += 1

    def _aborted(self, job: CleaningJob, failed: bool) -> None:
        self.in_progress.discard(job.tp)
        if failed:
            self.uncleanable.add(job.tp)

    def write_checkpoint(self) -> None:
        """Write ``cleaner-offset-checkpoint`` (two fsyncs: a worker thread's job, or shutdown's)."""
        offsets, logs = dict(self.checkpoints), set(self.logs)  # snapshots: the serving thread goes on
        checkpoint.write_offset_checkpoint(self.checkpoint_path, {tp: o for tp, o in offsets.items() if tp in logs})

    def forget(self, tp: tuple[str, int]) -> None:
        """A deleted partition: its checkpoint entry goes."""
        self.checkpoints.pop(tp, None)
        self.horizons.pop(tp, None)
        self.uncleanable.discard(tp)


class CleaningJob:
    """One cleaning of one log (module docstring, steps 1-5)."""

    def __init__(self, cleaner: LogCleaner, chosen: LogToClean, now_ms: int, offset_map: OffsetMap):
        self.cleaner = cleaner
        self.tp = chosen.tp
        self.log = chosen.log
        self.chosen = chosen
        self.now_ms = now_ms
        self.started = time.monotonic()
        self.map = offset_map
        self.stopped = False
        log = self.log
        self.config = log.config
        self.log_start = log.log_start_offset
        self.end_offset = chosen.first_uncleanable
        self.sources = [self._source(s) for s in log.segments[:-1] if s.base_offset < chosen.first_uncleanable]
        self.aborted = log.aborted_transactions(log.log_start_offset, chosen.first_uncleanable)
        self.producers = {pid: LastOfProducer(e.batches[-1].last_offset if e.batches else None, e.epoch)
                          for pid, e in log.producer_state.producers.items()}
        self.ctx: FilterContext | None = None
        self.bytes_before = sum(s.size for s in self.sources)
        self.bytes_read = 0
        self.bytes_after = 0
        self._swapped_bytes_before = 0
        self.segments_cleaned = 0

    @staticmethod
    def _source(seg: LogSegment) -> _Source:
        fd = os.open(seg.log_path, os.O_RDONLY)
        return _Source(seg, fd, seg.size, seg.base_offset, seg.next_offset, len(seg.index.offsets),
                       list(seg.txn_index.entries), os.fstat(fd).st_mtime, seg.max_timestamp)

    # ------------------------------------------------------------------ reading

    def _batches(self, src: _Source):
        """(header, batch bytes) of every whole batch of a source segment, read in chunks."""
        pos = 0
        while pos < src.size:
            if self.stopped:
                raise CleaningAborted("stopped")
            chunk = os.pread(src.fd, min(_READ_CHUNK, src.size - pos), pos)
            self.cleaner.throttler.throttle(len(chunk))
            self.bytes_read += len(chunk)
            rel = 0
            while rel + rec.HEADER_SIZE <= len(chunk):
                h = BatchHeader(*rec._HEADER.unpack_from(chunk, rel), 0)
                if h.size < rec.HEADER_SIZE:
                    raise CleaningAborted(f"invalid batch at {pos + rel} of {src.segment.log_path}")
                if rel + h.size > len(chunk):
                    break
                yield h, chunk[rel:rel + h.size]
                rel += h.size
            if rel == 0:  # one batch larger than the chunk
                h = BatchHeader(*rec._HEADER.unpack_from(chunk, 0), 0)
                if pos + h.size > src.size:
                    raise CleaningAborted(f"partial batch at {pos} of {src.segment.log_path}")
                yield h, os.pread(src.fd, h.size, pos)
                rel = h.size
            pos += rel

    # ------------------------------------------------------------------ 1. the offset map (worker)

    def build_map(self) -> None:
        first_dirty, upper = self.chosen.first_dirty, self.chosen.first_uncleanable
        txns = CleanedTransactions(self.aborted)
        self.end_offset = upper
        for src in self.sources:
            if src.next_offset <= first_dirty:
                continue
            for h, batch in self._batches(src):
                if h.last_offset < first_dirty:
                    continue
                if h.base_offset >= upper:
                    break
                if h.is_control:
                    txns.on_control_batch(h, batch)
                    continue
                if txns.on_data_batch(h):
                    continue
                keys = [(r.key, h.base_offset + r.offset_delta) for r in _records(batch, h) if r.key is not None]
                if not self.map.fits(len(keys), sum(len(k) for k, _ in keys)):
                    self.end_offset = h.base_offset  # the map is full: this cleaning stops here
                    self.map.latest_offset = self.end_offset - 1
                    return
                for key, offset in keys:
                    self.map.put(key, offset)
        self.map.latest_offset = self.end_offset - 1

    # ------------------------------------------------------------------ 2. groups

    def groups(self) -> list[list[_Source]]:
        """Runs of adjacent segments below the end of the mapped range, each within segment.bytes,
        segment.index.bytes and an int32 offset range (Kafka's groupSegmentsBySize)."""
        cfg = self.config
        todo = [s for s in self.sources if s.base_offset < self.end_offset]
        max_entries = cfg.segment_index_bytes // 8
        out: list[list[_Source]] = []
        for src in todo:
            group = out[-1] if out else None
            if (group is not None and sum(s.size for s in group) + src.size <= cfg.segment_bytes
                    and sum(s.index_entries for s in group) + src.index_entries < max_entries
                    and src.next_offset - 1 - group[0].base_offset <= rec.INT32_MAX):
                group.append(src)
            else:
                out.append([src])
        return out

    # ------------------------------------------------------------------ 3. cleaning a group (worker)

    def clean_group(self, group: list[_Source]) -> CleanedSegment:
        cfg = self.config
        if self.ctx is None:
            self.ctx = FilterContext(self.map, CleanedTransactions(self.aborted), self.producers, self.end_offset,
                                     self.now_ms, cfg.delete_retention_ms)
        ctx = self.ctx
        ctx.transactions.cleaned_index = []
        writer = CleanedSegmentWriter(self.log.directory, group[0].base_offset, index_bytes=cfg.segment_index_bytes,
                                      index_interval=cfg.index_interval_bytes)
        try:
            kept_entries = []
            for src in group:
                kept_entries += [e for e in src.txn_entries if e.last_offset >= self.end_offset]
                for h, batch in self._batches(src):
                    out = batch if h.base_offset >= self.end_offset else filter_batch(batch, h, ctx)
                    if out is not None:
                        writer.append(out, h if out is batch else rec.parse_header(out))
                        self.cleaner.throttler.throttle(len(out))
            entries = sorted(set(ctx.transactions.cleaned_index + kept_entries), key=lambda e: e.last_offset)
            # the cleaned file's mtime is its sources' newest record time (their mtime if they had none),
            # so time retention sees a segment left empty by cleaning as old as what it replaced
            newest = max(s.max_timestamp for s in group)
            cleaned = writer.finish(entries, newest / 1000 if newest >= 0 else group[-1].mtime)
        except BaseException:
            writer.discard()
            raise
        segment_swap.crash_point("cleaned")
        segment_swap.commit_cleaned(self.log.directory, cleaned.base_offset)
        return cleaned

    # ------------------------------------------------------------------ 4. swap (serving thread)

    def swap(self, group: list[_Source], cleaned: CleanedSegment, now_ms: int | None = None) -> None:
        """Put the committed cleaned segment in place of ``group`` (a few unlinks and renames), or
        abort if the log changed; either way ``make_durable`` should follow, in a worker thread."""
        log = self.log
        if not self._unchanged(group):
            segment_swap.discard_swap(log.directory, cleaned.base_offset)
            raise CleaningAborted(f"{log.topic}-{log.partition} changed during cleaning")
        try:
            segment_swap.swap_in(log, [s.segment for s in group], cleaned,
                                 int(time.time() * 1000) if now_ms is None else now_ms)
        except OSError as exc:
            log.offline = f"{log.topic}-{log.partition} is offline after a failed segment swap (a restart " \
                          f"completes it): {exc}"
            raise
        self._swapped_bytes_before += sum(s.size for s in group)
        self.segments_cleaned += len(group)
        self.bytes_after += cleaned.size

    def make_durable(self) -> None:
        """fsync the log's directory after swaps (worker thread)."""
        if os.path.isdir(self.log.directory):
            segment_swap.fsync_directory(self.log.directory)

    def _unchanged(self, group: list[_Source]) -> bool:
        log = self.log
        if log.offline is not None or self.cleaner.logs.get(self.tp) is not log:
            return False
        try:
            i = next(i for i, s in enumerate(log.segments) if s is group[0].segment)
        except StopIteration:
            return False
        here = log.segments[i:i + len(group)]
        return (len(here) == len(group) and i + len(group) < len(log.segments)
                and all(a is b.segment and a.size == b.size for a, b in zip(here, group)))

    # ------------------------------------------------------------------ 5. end

    def finish(self) -> None:
        self._close_sources()
        self.cleaner._finished(self)
        ctx = self.ctx
        took = time.monotonic() - self.started
        logger.info(
            "Cleaned log %s-%d offsets [%d, %d): %d bytes -> %d bytes (%.1f%% smaller) in %d segment(s), "
            "%d of %d records kept, %.1f MB/s, in %.3f s", self.tp[0], self.tp[1], self.log_start, self.end_offset,
            self._swapped_bytes_before, self.bytes_after,
            100 * (1 - self.bytes_after / self._swapped_bytes_before) if self._swapped_bytes_before else 0.0,
            self.segments_cleaned, ctx.records_kept if ctx else 0, ctx.records_read if ctx else 0,
            self.bytes_read / took / 1e6 if took > 0 else 0.0, took)

    def abort(self, failed: bool = False) -> None:
        self.stopped = True
        self._close_sources()
        self.cleaner._aborted(self, failed)

    def stop(self) -> None:
        """Ask the worker thread to give up at its next batch (broker shutdown)."""
        self.stopped = True

    def _close_sources(self) -> None:
        for src in self.sources:
            if src.fd >= 0:
                os.close(src.fd)
                src.fd = -1

    def run_here(self, now_ms: int | None = None) -> None:
        """Every step on this thread (tests, and the single-threaded callers)."""
        try:
            self.build_map()
            for group in self.groups():
                try:
                    self.swap(group, self.clean_group(group), now_ms)
                finally:
                    self.make_durable()
        except CleaningAborted:
            self.abort()
            raise
        except BaseException:
            self.abort(failed=True)
            raise
        self.finish()
        self.cleaner.write_checkpoint()


def _records(batch: bytes, h: BatchHeader):
    payload = rec.batch_payload(batch, h) if h.compression != compression.NONE else memoryview(batch)[rec.HEADER_SIZE:]
    return iter_records(payload, h.record_count)
