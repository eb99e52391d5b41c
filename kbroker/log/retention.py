"""Deleting old data: retention (cleanup.policy ``delete``), DeleteRecords' segment deletion, and the
graveyard of deleted segments.

Retention deletes whole units from the oldest on -- segments on disk, batches in memory -- while the
oldest is past ``retention.ms`` (by its newest timestamp) or the log without it is still at least
``retention.bytes`` over the limit; ``expired_count`` is that rule, shared by both logs. The log
start offset then moves to the first unit kept; offsets go on from the log end even when everything
was deleted.

On disk (``enforce_retention``, ``delete_segments_below_start``, run by PartitionLog): a segment
wholly below the log start offset (after DeleteRecords or retention) is unlinked at once but its
files stay open in the ``Graveyard`` for ``file.delete.delay.ms``, so a Fetch answer being sent with
sendfile from it completes; the graveyard is reaped (the files closed, which is when a big
file's blocks are freed: slow) at the next retention run, in a worker thread when the broker runs
it (LogManager.close_deleted_segments). The active segment is
rolled first when everything is to go, so the log always has an active segment at its end.

Compaction (cleanup.policy ``compact``) is the log cleaner (kbroker.log.cleaner); the cleaned
segments it swaps in replace old ones the same way (their files go to the graveyard).
``enforce_retention`` here does nothing for a compact-only log.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Iterable

from kbroker.log.config import LogConfig

if TYPE_CHECKING:
    from kbroker.log.segmented import SegmentedLog
    from kbroker.log.segment import LogSegment


def expired_count(units: Iterable[tuple[int, int]], total_size: int, config: LogConfig, now_ms: int) -> int:
    """How many of the oldest ``units`` -- (size in bytes, newest timestamp) each, oldest first --
    retention deletes, by ``retention.ms`` and ``retention.bytes``."""
    excess = total_size - config.retention_bytes if config.retention_bytes >= 0 else 0
    count = 0
    for size, newest in units:
        by_time = config.retention_ms >= 0 and now_ms - newest > config.retention_ms
        by_size = excess > 0 and excess - size >= 0
        if not (by_time or by_size):
            break
        excess -= size
        count += 1
    return count


class Graveyard:
    """Deleted segments whose files stay open until ``file.delete.delay.ms`` has passed."""

    def __init__(self) -> None:
        self._segments: list[tuple[int, LogSegment]] = []  # (close after ms, segment)
        self._lock = threading.Lock()  # reap runs in a worker thread while the log's thread buries

    def bury(self, seg: LogSegment, close_after_ms: int) -> None:
        with self._lock:
            self._segments.append((close_after_ms, seg))

    def reap(self, now_ms: int) -> None:
        with self._lock:
            due = [seg for when, seg in self._segments if when <= now_ms]
            self._segments = [(when, seg) for when, seg in self._segments if when > now_ms]
        for seg in due:
            seg.close()

    def close_all(self) -> None:
        with self._lock:
            due, self._segments = self._segments, []
        for _, seg in due:
            seg.close()


def enforce_retention(log: SegmentedLog, now_ms: int, reap: bool = True) -> int:
    """Delete whole segments past ``retention.ms`` / ``retention.bytes`` (cleanup.policy delete)
    and below the log start offset (and, with ``reap``, close the graveyard's due files). Returns
    the number of segments deleted."""
    if reap:
        log.graveyard.reap(now_ms)
    deleted = delete_segments_below_start(log, now_ms)
    if not log.config.delete:
        return deleted
    segments = log.segments
    if segments[-1].size == 0:  # an empty active segment never expires
        segments = segments[:-1]
    count = expired_count(((seg.size, _newest_timestamp(seg)) for seg in segments), log.size_in_bytes,
                          log.config, now_ms)
    if count:
        if count == len(log.segments):
            log.roll(now_ms)
        new_start = log.segments[count].base_offset
        for _ in range(count):
            _delete_oldest(log, now_ms)
        log._advance_log_start(new_start)
    return deleted + count


def _newest_timestamp(seg: LogSegment) -> int:
    return seg.max_timestamp if seg.max_timestamp >= 0 else int(os.path.getmtime(seg.log_path) * 1000)


def delete_segments_below_start(log: SegmentedLog, now_ms: int) -> int:
    """Delete the segments wholly below the log start offset; returns how many."""
    n = 0
    while len(log.segments) > 1 and log.segments[1].base_offset <= log.log_start_offset:
        _delete_oldest(log, now_ms)
        n += 1
    if log.log_start_offset >= log.log_end_offset and log.active_segment.size > 0:
        log.roll(now_ms)
        _delete_oldest(log, now_ms)
        n += 1
    return n


def _delete_oldest(log: SegmentedLog, now_ms: int) -> None:
    seg = log.segments.pop(0)
    log._bases.pop(0)
    seg.unlink()
    log.graveyard.bury(seg, now_ms + log.config.file_delete_delay_ms)
