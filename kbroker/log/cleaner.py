"""The log cleaner: compaction of ``cleanup.policy=compact`` logs, as Kafka's LogCleaner does it.

Choosing (``LogCleaner.grab``, on the thread that serves the logs). A compacted log's dirty section
starts at its first dirty offset (the ``cleaner-offset-checkpoint`` of the log directory, else the
log start) and ends at its first uncleanable offset: the active segment's base, the last stable
offset (nothing of an open transaction is cleaned), and the first segment younger than
``min.compaction.lag.ms``. The log with the highest dirty ratio (dirty bytes / bytes up to the first
uncleanable offset) above ``min.cleanable.dirty.ratio`` is cleaned; a log whose dirty section has
waited longer than ``max.compaction.lag.ms``, or whose tombstones' delete horizon has passed, is
cleaned whatever its ratio.

Cleaning. ``grab`` snapshots the chosen log into a ``CleaningJob`` (serving side) and its
``Cleaning`` (the worker's side: plain, picklable data -- segment paths and sizes, the aborted
transactions, the producers' last batches). The broker runs ``Cleaning.run`` in a pool of
``log.cleaner.threads`` worker *processes* (``run_cleaning``): in threads, its per-record Python work
held the GIL the event loop needs back after every system call, and requests waited behind it.
1. ``build_map``: key -> offset of its last record over the dirty section, skipping data of aborted
   transactions and control batches, bounded by the dedupe buffer (kbroker.log.offset_map); where
   the map is full, this cleaning's range ends and the next one starts.
2. ``groups``: the segments from the log's start up to the end of the mapped range, in runs whose
   sizes add up to at most ``segment.bytes`` (small segments merge into one).
3. ``clean_group``: every batch goes through kbroker.log.compaction's filter into a ``.cleaned``
   segment (kbroker.log.segment_swap), fsynced; reads and writes throttled to
   ``log.cleaner.io.max.bytes.per.second`` (split between the workers). A segment deleted meanwhile
   (retention) aborts the cleaning.
4. Per group, ``commit`` (a worker thread: the rename to ``.swap`` and a directory fsync), then
   ``swap`` (serving thread, a few unlinks and renames): the cleaned segment replaces the group
   atomically, unless the log changed meanwhile (segments deleted or truncated, the log closed):
   then the job is aborted and its files removed; the next pass starts over.
5. ``finish``: the checkpoint moves to the end of the cleaned range (the file is written by
   ``LogCleaner.write_checkpoint``, in a worker thread); one INFO line per cleaning.
``CleaningJob.run_here`` does it all on the calling thread (tests, benchmarks).

The memory log (kbroker.log.memory) is not cleaned: it is for tests of the layers above, and its
compacted topics simply keep every record.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from kbroker.log import checkpoint, compaction, segment_swap
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
WORKER_NICENESS = 10


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
class SourceSegment:
    """A segment as the job found it (read by path, within the size it had; what the worker needs)."""
    path: str
    size: int
    base_offset: int
    next_offset: int
    index_entries: int
    txn_entries: list
    mtime: float
    max_timestamp: int


@dataclass
class CleaningResult:
    """What a cleaning's worker hands back: the end of the cleaned range and the cleaned segments
    (each with the indexes of the sources it replaces), all written and fsynced, not yet committed."""
    end_offset: int
    groups: list[tuple[list[int], CleanedSegment]]
    records_read: int
    records_kept: int
    earliest_horizon: int
    bytes_read: int


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
        job = CleaningJob(self, chosen, now_ms, budget)
        self.in_progress.add(chosen.tp)
        return job

    # ------------------------------------------------------------------ bookkeeping

    def _finished(self, job: CleaningJob, end_offset: int, horizon: int) -> None:
        self.in_progress.discard(job.tp)
        self.checkpoints[job.tp] = end_offset
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


class Cleaning:
    """The worker's side of one cleaning (module docstring, steps 1-3): plain data in, files and a
    CleaningResult out, nothing shared with the serving thread, so it runs in a worker process (the
    broker's) or on any thread (tests)."""

    def __init__(self, directory: str, config, now_ms: int, budget: int, first_dirty: int, upper: int,
                 sources: list[SourceSegment], aborted: list, producers: dict, io_rate: float):
        self.directory = directory
        self.config = config
        self.now_ms = now_ms
        self.budget = budget
        self.first_dirty = first_dirty
        self.upper = upper
        self.sources = sources
        self.aborted = aborted
        self.producers = producers
        self.io_rate = io_rate
        self.end_offset = upper

    def run(self, throttler: Throttler | None = None) -> CleaningResult:
        self.throttler = throttler or Throttler(self.io_rate)
        self.map = OffsetMap(self.budget)
        self.bytes_read = 0
        self._fds: dict[int, int] = {}
        written: list[CleanedSegment] = []
        try:
            self.build_map()
            self.ctx = FilterContext(self.map, CleanedTransactions(self.aborted), self.producers, self.end_offset,
                                     self.now_ms, self.config.delete_retention_ms)
            groups = []
            for group in self.groups():
                cleaned = self.clean_group(group)
                written.append(cleaned)
                groups.append((group, cleaned))
        except BaseException:
            for cleaned in written:
                segment_swap.discard_cleaned(self.directory, cleaned.base_offset)
            raise
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds = {}
        ctx = self.ctx
        return CleaningResult(self.end_offset, groups, ctx.records_read, ctx.records_kept, ctx.earliest_horizon,
                              self.bytes_read)

    # ------------------------------------------------------------------ reading

    def _fd(self, i: int) -> int:
        if i not in self._fds:
            try:
                self._fds[i] = os.open(self.sources[i].path, os.O_RDONLY)
            except FileNotFoundError as exc:  # deleted meanwhile (retention): the swap would not happen
                raise CleaningAborted(f"{self.sources[i].path} was deleted during cleaning") from exc
        return self._fds[i]

    def _batches(self, i: int):
        """(header, batch bytes) of every whole batch of source ``i``, read in chunks."""
        src, fd = self.sources[i], self._fd(i)
        pos = 0
        while pos < src.size:
            chunk = os.pread(fd, min(_READ_CHUNK, src.size - pos), pos)
            if not chunk:
                raise CleaningAborted(f"{src.path} is shorter than {src.size} bytes")
            self.throttler.throttle(len(chunk))
            self.bytes_read += len(chunk)
            rel = 0
            while rel + rec.HEADER_SIZE <= len(chunk):
                h = BatchHeader(*rec._HEADER.unpack_from(chunk, rel), 0)
                if h.size < rec.HEADER_SIZE:
                    raise CleaningAborted(f"invalid batch at {pos + rel} of {src.path}")
                if rel + h.size > len(chunk):
                    break
                yield h, chunk[rel:rel + h.size]
                rel += h.size
            if rel == 0:  # one batch larger than the chunk
                h = BatchHeader(*rec._HEADER.unpack_from(chunk, 0), 0)
                if pos + h.size > src.size:
                    raise CleaningAborted(f"partial batch at {pos} of {src.path}")
                yield h, os.pread(fd, h.size, pos)
                rel = h.size
            pos += rel

    # ------------------------------------------------------------------ 1. the offset map

    def build_map(self) -> None:
        first_dirty, upper = self.first_dirty, self.upper
        txns = CleanedTransactions(self.aborted)
        self.end_offset = upper
        for i, src in enumerate(self.sources):
            if src.next_offset <= first_dirty:
                continue
            for h, batch in self._batches(i):
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

    def groups(self) -> list[list[int]]:
        """Runs of adjacent segments (their indexes) below the end of the mapped range, each within
        segment.bytes, segment.index.bytes and an int32 offset range (Kafka's groupSegmentsBySize)."""
        cfg = self.config
        max_entries = cfg.segment_index_bytes // 8
        out: list[list[int]] = []
        for i, src in enumerate(self.sources):
            if src.base_offset >= self.end_offset:
                break
            group = [self.sources[j] for j in out[-1]] if out else None
            if (group is not None and sum(s.size for s in group) + src.size <= cfg.segment_bytes
                    and sum(s.index_entries for s in group) + src.index_entries < max_entries
                    and src.next_offset - 1 - group[0].base_offset <= rec.INT32_MAX):
                out[-1].append(i)
            else:
                out.append([i])
        return out

    # ------------------------------------------------------------------ 3. cleaning a group

    def clean_group(self, group: list[int]) -> CleanedSegment:
        cfg, ctx = self.config, self.ctx
        sources = [self.sources[i] for i in group]
        ctx.transactions.cleaned_index = []
        segment_swap.crash_point("worker")  # tests: the worker process dies mid-cleaning
        writer = CleanedSegmentWriter(self.directory, sources[0].base_offset, index_bytes=cfg.segment_index_bytes,
                                      index_interval=cfg.index_interval_bytes)
        try:
            kept_entries = []
            for i, src in zip(group, sources):
                kept_entries += [e for e in src.txn_entries if e.last_offset >= self.end_offset]
                for h, batch in self._batches(i):
                    out = batch if h.base_offset >= self.end_offset else filter_batch(batch, h, ctx)
                    if out is not None:
                        writer.append(out, h if out is batch else rec.parse_header(out))
                        self.throttler.throttle(len(out))
            entries = sorted(set(ctx.transactions.cleaned_index + kept_entries), key=lambda e: e.last_offset)
            # the cleaned file's mtime is its sources' newest record time (their mtime if they had none),
            # so time retention sees a segment left empty by cleaning as old as what it replaced
            newest = max(s.max_timestamp for s in sources)
            return writer.finish(entries, newest / 1000 if newest >= 0 else sources[-1].mtime)
        except BaseException:
            writer.discard()
            raise


def worker_process_started() -> None:
    """A worker process's initializer: background priority (the CPU goes to the broker's requests
    first), and it exits when the broker does, even after a kill -9 (it would otherwise wait on its
    task queue forever)."""
    os.nice(WORKER_NICENESS)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="kbroker-cleaner-watchdog", daemon=True).start()


def run_cleaning(cleaning: Cleaning) -> CleaningResult:
    """A worker process's entry point (picklable by name). Alone in its process, the record walk
    need not hand the GIL over (kbroker.log.compaction)."""
    compaction.YIELD_EVERY = 1 << 62
    return cleaning.run()


class CleaningJob:
    """One cleaning of one log, on the serving side (module docstring, steps 4-5): it snapshots the
    log for the worker's ``Cleaning`` and swaps in what the worker wrote."""

    def __init__(self, cleaner: LogCleaner, chosen: LogToClean, now_ms: int, budget: int):
        self.cleaner = cleaner
        self.tp = chosen.tp
        self.log = log = chosen.log
        self.started = time.monotonic()
        self.log_start = log.log_start_offset
        self.truncations = log.truncations  # a truncation (a follower's divergent tail) voids the job:
        # its offset map may hold keys from what was cut, which would remove their older records
        self.segments = [s for s in log.segments[:-1] if s.base_offset < chosen.first_uncleanable]
        sources = [SourceSegment(s.log_path, s.size, s.base_offset, s.next_offset, len(s.index.offsets),
                                 list(s.txn_index.entries), _mtime(s.log_path), s.max_timestamp) for s in self.segments]
        producers = {pid: LastOfProducer(e.batches[-1].last_offset if e.batches else None, e.epoch)
                     for pid, e in log.producer_state.producers.items()}
        self.work = Cleaning(log.directory, log.config, now_ms, budget, chosen.first_dirty, chosen.first_uncleanable,
                             sources, log.aborted_transactions(log.log_start_offset, chosen.first_uncleanable),
                             producers, cleaner.config.io_max_bytes_per_second / max(1, cleaner.config.threads))
        self._pending: list[CleanedSegment] = []  # written, not swapped in yet
        self.bytes_before = 0
        self.bytes_after = 0
        self.segments_cleaned = 0

    def accept(self, result: CleaningResult) -> list[tuple[list[LogSegment], CleanedSegment]]:
        """The worker's result as (segments to replace, cleaned segment) pairs, in offset order."""
        self.result = result
        self._pending = [cleaned for _, cleaned in result.groups]
        return [([self.segments[i] for i in group], cleaned) for group, cleaned in result.groups]

    def commit(self, cleaned: CleanedSegment) -> None:
        """Step 4's commit point (a worker thread: renames and a directory fsync)."""
        segment_swap.crash_point("cleaned")
        segment_swap.commit_cleaned(self.log.directory, cleaned.base_offset)

    def swap(self, old: list[LogSegment], cleaned: CleanedSegment, now_ms: int | None = None) -> None:
        """Put the committed cleaned segment in place of ``old`` (a few unlinks and renames), or abort
        if the log changed; either way ``make_durable`` should follow, in a worker thread."""
        log = self.log
        self._pending = [c for c in self._pending if c is not cleaned]
        if not self._unchanged(old):
            segment_swap.discard_swap(log.directory, cleaned.base_offset)
            raise CleaningAborted(f"{log.topic}-{log.partition} changed during cleaning")
        try:
            segment_swap.swap_in(log, old, cleaned, int(time.time() * 1000) if now_ms is None else now_ms)
        except OSError as exc:
            log.offline = f"{log.topic}-{log.partition} is offline after a failed segment swap (a restart " \
                          f"completes it): {exc}"
            raise
        self.bytes_before += sum(self.work.sources[self.segments.index(s)].size for s in old)
        self.segments_cleaned += len(old)
        self.bytes_after += cleaned.size

    def make_durable(self) -> None:
        """fsync the log's directory after swaps (worker thread)."""
        if os.path.isdir(self.log.directory):
            segment_swap.fsync_directory(self.log.directory)

    def _unchanged(self, old: list[LogSegment]) -> bool:
        log = self.log
        if (log.offline is not None or self.cleaner.logs.get(self.tp) is not log
                or log.truncations != self.truncations):
            return False
        try:
            i = next(i for i, s in enumerate(log.segments) if s is old[0])
        except StopIteration:
            return False
        sizes = {id(s): src.size for s, src in zip(self.segments, self.work.sources)}
        here = log.segments[i:i + len(old)]
        return (len(here) == len(old) and i + len(old) < len(log.segments)
                and all(a is b and a.size == sizes[id(b)] for a, b in zip(here, old)))

    # ------------------------------------------------------------------ 5. end

    def finish(self) -> None:
        result = self.result
        self.cleaner._finished(self, result.end_offset, result.earliest_horizon)
        took = time.monotonic() - self.started
        logger.info(
            "Cleaned log %s-%d offsets [%d, %d): %d bytes -> %d bytes (%.1f%% smaller) in %d segment(s), "
            "%d of %d records kept, %.1f MB/s, in %.3f s", self.tp[0], self.tp[1], self.log_start, result.end_offset,
            self.bytes_before, self.bytes_after,
            100 * (1 - self.bytes_after / self.bytes_before) if self.bytes_before else 0.0,
            self.segments_cleaned, result.records_kept, result.records_read,
            result.bytes_read / took / 1e6 if took > 0 else 0.0, took)

    def abort(self, failed: bool = False, worker_died: bool = False) -> None:
        """Give the job up; its files that were not swapped in go (``worker_died``: whatever the
        worker may have left half-written too)."""
        for cleaned in self._pending:  # written by the worker, never swapped in
            segment_swap.discard_swap(self.log.directory, cleaned.base_offset)
            segment_swap.discard_cleaned(self.log.directory, cleaned.base_offset)
        if worker_died:
            for src in self.work.sources:
                segment_swap.discard_cleaned(self.log.directory, src.base_offset)
        self._pending = []
        self.cleaner._aborted(self, failed)

    def run_here(self, now_ms: int | None = None) -> None:
        """Every step on this thread (tests, benchmarks)."""
        try:
            for old, cleaned in self.accept(self.work.run(self.cleaner.throttler)):
                self.commit(cleaned)
                try:
                    self.swap(old, cleaned, now_ms)
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


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return time.time()


def _records(batch: bytes, h: BatchHeader):
    payload = rec.batch_payload(batch, h) if h.compression != compression.NONE else memoryview(batch)[rec.HEADER_SIZE:]
    return iter_records(payload, h.record_count)
