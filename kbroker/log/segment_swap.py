"""Replacing segments with a cleaned one, atomically, and finishing a replacement a crash interrupted.

The cleaner writes the new segment as ``<base>.log.cleaned`` (+ ``.index.cleaned``,
``.timeindex.cleaned``, ``.txnindex.cleaned``), ``<base>`` being the first replaced segment's base
offset, and fsyncs it (``CleanedSegmentWriter``, in the cleaner's worker process). Then:

1. ``commit_cleaned`` (a worker thread of the broker) renames every ``.cleaned`` file to ``.swap``, the
   ``.log`` last, and fsyncs the directory: the ``<base>.log.swap`` file is the commit point;
2. ``swap_in`` (on the thread that serves the log: a few unlinks and renames, no fsync, so requests
   do not wait behind a journal commit) unlinks the replaced segments' files -- their descriptors
   stay open in the log's graveyard, so a Fetch answer being sent from them with sendfile completes
   (unlink-after-open) --
3. renames the ``.swap`` files to their final names, the ``.log`` last, and puts the new segment in
   the log's list in place of the replaced ones; the directory is fsynced afterwards, in a worker
   thread again.

``complete_swaps`` (run by recovery before anything else) finishes step 2 and 3 for every
``<base>.log.swap`` it finds: the old segments whose base offsets fall in the swap's offsets
[base, its last offset] go, the swap files take their names. Before the commit point, recovery
just removes ``.cleaned`` and ``.swap`` leftovers, and the old segments are the log. Either way the
log after a kill -9 holds, for every offset, the cleaned or the uncleaned version of its segment,
never both and never neither.

``KBROKER_CLEANER_CRASH_AT`` (tests only) kills the process with SIGKILL at a named step:
``cleaned`` (files written, before step 1), ``swap`` (after 1), ``deleted`` (after 2); and
``worker`` kills the cleaner's worker process instead, as it starts a segment.
If the log changed before step 2 (the cleaner checks), ``discard_swap`` undoes step 1.
"""

from __future__ import annotations

import array
import os
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kbroker.log.index import OffsetIndex, TimeIndex
from kbroker.log.segment import LogSegment, segment_name
from kbroker.log.txn_index import AbortedTxn, TransactionIndex
from kbroker.protocol import records as rec
from kbroker.protocol.records import BatchHeader

if TYPE_CHECKING:
    from kbroker.log.segmented import SegmentedLog

CLEANED = ".cleaned"
SWAP = ".swap"
_INDEX_SUFFIXES = (".index", ".timeindex", ".txnindex")
_ALL_SUFFIXES = _INDEX_SUFFIXES + (".log",)  # the .log last: its rename is the step
_WRITE_CHUNK = 1 << 20
CRASH_ENV = "KBROKER_CLEANER_CRASH_AT"


def crash_point(name: str) -> None:
    """The test hook: die here like kill -9 when KBROKER_CLEANER_CRASH_AT names this step."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _path(directory: str, base: int, suffix: str) -> str:
    return os.path.join(directory, segment_name(base, suffix))


# ---------------------------------------------------------------------------- writing (worker thread)


@dataclass
class CleanedSegment:
    """A written, fsynced ``.cleaned`` segment and what its LogSegment object needs to know."""
    directory: str
    base_offset: int
    size: int
    next_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    rolling_timestamp: int | None
    bytes_since_last_index_entry: int
    index: OffsetIndex
    time_index: TimeIndex
    txn_entries: list[AbortedTxn] = field(default_factory=list)


class CleanedSegmentWriter:
    """Writes the batches the cleaner keeps into ``<base>.log.cleaned``, with indexes built by the
    append path's rule (an entry every index.interval.bytes)."""

    def __init__(self, directory: str, base_offset: int, *, index_bytes: int, index_interval: int):
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval = index_interval
        for suffix in _ALL_SUFFIXES:  # a previous, abandoned attempt
            _unlink(_path(directory, base_offset, suffix) + CLEANED)
        self.fd = os.open(_path(directory, base_offset, ".log") + CLEANED, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.index = OffsetIndex(_path(directory, base_offset, ".index") + CLEANED, base_offset, index_bytes)
        self.time_index = TimeIndex(_path(directory, base_offset, ".timeindex") + CLEANED, base_offset, index_bytes)
        self.index.create()
        self.time_index.create()
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.rolling_timestamp: int | None = None
        self.since_entry = 0
        self._buffer = bytearray()

    def append(self, batch: bytes, h: BatchHeader) -> None:
        """One whole batch (``h`` its header, positions ignored)."""
        position = self.size
        if h.max_timestamp > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = h.max_timestamp, h.last_offset
        if self.rolling_timestamp is None:
            self.rolling_timestamp = h.max_timestamp
        if self.since_entry > self.index_interval:
            self.index.append(h.last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.since_entry = 0
        self.since_entry += len(batch)
        self._buffer += batch
        self.size += len(batch)
        self.next_offset = h.next_offset
        if len(self._buffer) >= _WRITE_CHUNK:
            self._write_out()

    def _write_out(self) -> None:
        with memoryview(self._buffer) as view:
            done = 0
            while done < len(view):
                done += os.write(self.fd, view[done:])
        self._buffer.clear()

    def finish(self, txn_entries: list[AbortedTxn], mtime: float | None) -> CleanedSegment:
        """Write everything out and fsync it; the files stay ``.cleaned`` until swap_in."""
        self._write_out()
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self.index.write_pending()
        self.time_index.write_pending()
        txn_path = _path(self.directory, self.base_offset, ".txnindex") + CLEANED
        TransactionIndex(txn_path).rewrite(txn_entries)
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        if mtime is not None:  # as Kafka: the cleaned segment keeps the replaced ones' last modified time
            os.utime(_path(self.directory, self.base_offset, ".log") + CLEANED, (mtime, mtime))
        for index in (self.index, self.time_index):
            index.fsync()
            index.close()
        if txn_entries:
            TransactionIndex(txn_path).fsync()
        last_entry = self.index.positions[-1] if self.index.positions else 0
        return CleanedSegment(self.directory, self.base_offset, self.size, self.next_offset, self.max_timestamp,
                              self.offset_of_max_timestamp, self.rolling_timestamp, self.size - last_entry,
                              self.index, self.time_index, list(txn_entries))

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.index.close()
        self.time_index.close()
        discard_cleaned(self.directory, self.base_offset)


def discard_cleaned(directory: str, base_offset: int) -> None:
    for suffix in _ALL_SUFFIXES:
        _unlink(_path(directory, base_offset, suffix) + CLEANED)


# ---------------------------------------------------------------------------- swapping (the log's thread)


def commit_cleaned(directory: str, base: int) -> None:
    """Step 1 (worker thread): ``.cleaned`` -> ``.swap``, the ``.log`` last, and the directory fsynced;
    from here a crash completes the swap. On OSError the swap files are removed."""
    try:
        for suffix in _ALL_SUFFIXES:
            src = _path(directory, base, suffix) + CLEANED
            if os.path.exists(src):
                os.rename(src, _path(directory, base, suffix) + SWAP)
        fsync_directory(directory)
    except OSError:
        discard_swap(directory, base)
        discard_cleaned(directory, base)
        raise
    crash_point("swap")


def discard_swap(directory: str, base: int) -> None:
    """Undo step 1 (the log changed before the swap); the caller fsyncs the directory afterwards."""
    for suffix in reversed(_ALL_SUFFIXES):  # the .log first: without it, nothing is to be completed
        _unlink(_path(directory, base, suffix) + SWAP)


def swap_in(log: SegmentedLog, old: list[LogSegment], cleaned: CleanedSegment, now_ms: int) -> LogSegment:
    """Steps 2 and 3 (the log's thread; no fsync here, the caller fsyncs the directory afterwards in
    a worker thread: until then a crash leaves either name, and recovery completes either): replace
    ``old`` (consecutive segments of ``log``, the first at ``cleaned.base_offset``) with the committed
    cleaned segment; returns its LogSegment. An OSError here leaves the log to be completed by
    recovery: the caller takes the log offline."""
    directory, base = log.directory, cleaned.base_offset
    for seg in old:
        seg.unlink()  # its fd stays open for reads in flight, until the graveyard closes it
    crash_point("deleted")
    for suffix in _ALL_SUFFIXES:
        src = _path(directory, base, suffix) + SWAP
        if os.path.exists(src):
            os.replace(src, _path(directory, base, suffix))
    seg = _open_cleaned(log, cleaned, now_ms)
    i = next(i for i, s in enumerate(log.segments) if s is old[0])
    log.segments[i:i + len(old)] = [seg]
    log._bases[i:i + len(old)] = [base]
    for gone in old:
        log.graveyard.bury(gone, now_ms + log.config.file_delete_delay_ms)
    return seg


def _open_cleaned(log: SegmentedLog, cleaned: CleanedSegment, now_ms: int) -> LogSegment:
    seg = log._new_segment(cleaned.base_offset, now_ms)
    seg.next_offset = cleaned.next_offset
    seg.max_timestamp, seg.offset_of_max_timestamp = cleaned.max_timestamp, cleaned.offset_of_max_timestamp
    seg.rolling_timestamp = cleaned.rolling_timestamp
    seg.bytes_since_last_index_entry = cleaned.bytes_since_last_index_entry
    seg.index.offsets = array.array("q", cleaned.index.offsets)
    seg.index.positions = array.array("q", cleaned.index.positions)
    seg.time_index.timestamps = array.array("q", cleaned.time_index.timestamps)
    seg.time_index.offsets = array.array("q", cleaned.time_index.offsets)
    seg.txn_index.entries = list(cleaned.txn_entries)
    return seg


# ---------------------------------------------------------------------------- recovery


def complete_swaps(directory: str) -> list[str]:
    """Finish every replacement that reached its commit point (``<base>.log.swap`` exists); returns
    notes for recovery's log line. Other ``.cleaned``/``.swap`` leftovers are recovery's to remove."""
    notes = []
    for name in sorted(os.listdir(directory)):
        if not (name.endswith(".log" + SWAP) and name[:20].isdigit()):
            continue
        base = int(name[:20])
        swap_path = os.path.join(directory, name)
        last = _last_offset(swap_path, base)
        replaced = 0
        for other in os.listdir(directory):
            if other.endswith(".log") and other[:-4].isdigit() and base < int(other[:-4]) <= last:
                for suffix in _ALL_SUFFIXES:
                    _unlink(_path(directory, int(other[:-4]), suffix))
                replaced += 1
        for suffix in _ALL_SUFFIXES:
            src = _path(directory, base, suffix) + SWAP
            if os.path.exists(src):
                os.replace(src, _path(directory, base, suffix))
            elif suffix != ".txnindex":  # a stale index of the replaced segment: rebuilt from the log
                _unlink(_path(directory, base, suffix))
        fsync_directory(directory)
        notes.append(f"completed the swap of cleaned segment {base} for {replaced + 1} segment(s)")
    return notes


def _last_offset(path: str, base: int) -> int:
    """The last offset of the whole batches of a segment file (headers only)."""
    last = base - 1
    fd = os.open(path, os.O_RDONLY)
    try:
        size, pos = os.fstat(fd).st_size, 0
        while pos + rec.HEADER_SIZE <= size:
            h = rec.parse_header(os.pread(fd, rec.HEADER_SIZE, pos), 0)
            if h.size < rec.HEADER_SIZE or pos + h.size > size:
                break
            last = h.last_offset
            pos += h.size
    finally:
        os.close(fd)
    return last


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
