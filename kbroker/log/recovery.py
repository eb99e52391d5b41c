"""Recovery: opening a partition directory after a clean shutdown or a crash.

``recover`` brings a new, empty PartitionLog to the state its directory describes:

1. A cleaner's segment swap that reached its commit point is completed
   (kbroker.log.segment_swap); leftovers of interrupted writes, deletions and cleanings (``.tmp``,
   ``.deleted``, ``.cleaned``, ``.swap``) and indexes whose ``.log`` is gone are removed; the topic
   id is read from (or written to) ``partition.metadata``.
2. Every segment is loaded in offset order (``load_segment``): every batch header is walked once --
   that is how producer state, open and aborted transactions and leader epochs are rebuilt, there
   are no snapshots -- and batches at or after the recovery point (the offset below which
   everything is known to be fsynced) are also CRC-checked in full. The first invalid batch ends
   the log: the file is truncated there and any later segment, now unreachable, is deleted.
   Indexes are kept when they agree with the walk, otherwise rebuilt from it; a segment's
   ``.txnindex`` is kept when the replayed markers agree with it, otherwise rewritten.
3. The log start offset (from the log-dir checkpoint) is clamped into the log; the leader-epoch
   checkpoint is cut back to the log end and completed with the epochs the batches carry, and
   written only when that changed it.

It logs one line saying what it found and did (a warning when it truncated or rebuilt anything).
A log that went offline after a storage failure (kbroker.log.base) comes back through here.
"""

from __future__ import annotations

import array
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from kbroker.log import checkpoint, segment_swap
from kbroker.log.checkpoint import LeaderEpochCache
from kbroker.log.segment import InvalidBatch, LogSegment
from kbroker.log.txn_index import AbortedTxn
from kbroker.protocol.records import BatchHeader

if TYPE_CHECKING:
    from kbroker.log.segmented import SegmentedLog

logger = logging.getLogger("kbroker.log")

_LEFTOVER_SUFFIXES = (".tmp", ".deleted", ".cleaned", ".swap")
_INDEX_SUFFIXES = (".index", ".timeindex", ".txnindex")


def recover(log: SegmentedLog, *, recovery_point: int, log_start_offset: int, topic_id, now_ms: int) -> None:
    """Load ``log``'s directory into ``log`` (new and empty), repairing what a crash left."""
    started = time.monotonic()
    directory = log.directory
    _recover_topic_id(log, topic_id)
    notes: list[str] = segment_swap.complete_swaps(directory)  # a cleaning's swap a crash interrupted
    bases = _segment_bases(directory)
    validated = truncated = rebuilt = 0
    epochs_seen = LeaderEpochCache(directory)

    for i, base in enumerate(bases):
        seg = log._new_segment(base, now_ms)
        nxt = bases[i + 1] if i + 1 < len(bases) else None
        aborted: list[AbortedTxn] = []
        report = load_segment(seg, recovery_point, _replayer(log, seg, aborted, epochs_seen), expected_next_offset=nxt)
        if _recover_txn_index(seg, aborted):
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
                truncated += _delete_segments(log, bases[i + 1:], now_ms)
                notes.append(f"deleted {len(bases) - i - 1} later segment(s)")
                break
    if not log.segments:
        log._add_segment(log._new_segment(log_start_offset, now_ms))

    leo = log.log_end_offset
    log.log_start_offset = min(max(log_start_offset, log.segments[0].base_offset), leo)
    log.recovery_point = min(recovery_point, leo)
    if _recover_epochs(log, epochs_seen):
        notes.append("rebuilt leader-epoch-checkpoint")
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


def _recover_topic_id(log: SegmentedLog, topic_id) -> None:
    log.topic_id = checkpoint.read_partition_metadata(log.directory)
    if topic_id is not None:
        tid = checkpoint.topic_id_to_str(topic_id)
        if tid != log.topic_id:
            checkpoint.write_partition_metadata(log.directory, tid)
            log.topic_id = tid


def _segment_bases(directory: str) -> list[int]:
    """The segments' base offsets, in order, once leftovers and orphaned indexes are removed."""
    names = os.listdir(directory)
    for n in names:  # leftovers of interrupted writes and deletions
        if n.endswith(_LEFTOVER_SUFFIXES):
            os.unlink(os.path.join(directory, n))
    bases = sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())
    present = set(bases)
    for n in names:  # indexes whose .log is gone
        stem, ext = os.path.splitext(n)
        if ext in _INDEX_SUFFIXES and stem.isdigit() and int(stem) not in present:
            os.unlink(os.path.join(directory, n))
    return bases


def _replayer(log: SegmentedLog, seg: LogSegment, aborted: list[AbortedTxn],
              epochs_seen: LeaderEpochCache) -> Callable[[BatchHeader], None]:
    """What each valid batch header of ``seg`` does to the log's state during the walk."""

    def on_batch(h: BatchHeader) -> None:
        if h.has_producer_id:
            if h.is_control:
                entry = log._close_transaction(h, seg.pread(h.position, h.size))
                if entry is not None:
                    aborted.append(entry)
            else:
                log.producer_state.update(h)
        if h.partition_leader_epoch >= 0:
            epochs_seen.assign(h.partition_leader_epoch, h.base_offset, save=False)

    return on_batch


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


def _delete_segments(log: SegmentedLog, bases: list[int], now_ms: int) -> int:
    """Delete the segments at ``bases`` (unreachable after a truncation); returns their bytes."""
    size = 0
    for base in bases:
        gone = log._new_segment(base, now_ms)
        gone.txn_index.delete()
        size += gone.size
        gone.unlink()
        gone.close()
    return size


def _recover_epochs(log: SegmentedLog, seen: LeaderEpochCache) -> bool:
    """The leader-epoch cache from its checkpoint, cut back to the log end and completed with the
    epochs the batches carry. True when the checkpoint was missing for a non-empty log."""
    leo = log.log_end_offset
    epochs = log.epochs
    loaded = epochs.load()
    # epochs that start past the log end have no data left; one starting at it is the epoch this
    # log became leader in without a write since, still true (dropping it only to assign it again
    # on becoming leader rewrote every idle partition's checkpoint at every start)
    epochs.truncate_from_end(leo + 1)
    for epoch, start in seen.entries:
        if epochs.latest_epoch is None or epoch > epochs.latest_epoch:
            epochs.assign(epoch, start, save=False)
    # save() writes only entries that differ from the file's; no file is made for a log without
    # epochs (a new partition's first epoch comes with becoming leader, as in Kafka)
    if epochs.entries or loaded or os.path.exists(epochs.path):
        epochs.save()
    return not loaded and leo > log.segments[0].base_offset


@dataclass(slots=True)
class SegmentLoad:
    batches: int = 0
    validated_batches: int = 0
    truncated_bytes: int = 0
    truncated_at: int = -1
    truncate_reason: str = ""
    rebuilt_index: bool = False
    rebuilt_time_index: bool = False


def load_segment(
    seg: LogSegment,
    recovery_point: int,
    on_batch: Callable[[BatchHeader], None],
    *,
    expected_next_offset: int | None = None,
) -> SegmentLoad:
    """Walk ``seg``; CRC-check batches whose last offset >= ``recovery_point``; truncate at the first
    invalid batch; rebuild indexes that disagree. ``on_batch`` sees every valid header in order.
    ``expected_next_offset`` (the next segment's base offset) bounds this segment's offsets."""
    report = SegmentLoad()
    index_ok = seg.index.load()
    time_ok = seg.time_index.load()

    # Rebuilt versions of both indexes, computed during the walk with the append path's rule.
    offsets: list[int] = []
    positions: list[int] = []
    time_entries: list[tuple[int, int]] = []
    positions_seen: dict[int, int] = {}  # batch position -> last offset, to check a loaded index
    since_entry = 0
    max_ts, max_ts_offset = -1, -1
    first_max_ts: int | None = None
    next_offset = seg.base_offset
    valid_end = 0

    try:
        for h in seg.iter_headers(0, crc_from_offset=recovery_point):
            if h.last_offset_delta < 0 and h.record_count > 0:
                raise InvalidBatch(h.position, "record count without offsets")
            if h.base_offset < next_offset or (
                expected_next_offset is not None and h.last_offset >= expected_next_offset
            ):
                raise InvalidBatch(h.position, f"offset {h.base_offset} out of order")
            if h.last_offset >= recovery_point:
                report.validated_batches += 1
            report.batches += 1
            if first_max_ts is None:
                first_max_ts = h.max_timestamp
            if h.max_timestamp > max_ts:
                max_ts, max_ts_offset = h.max_timestamp, h.last_offset
            if since_entry > seg.index_interval:
                offsets.append(h.last_offset)
                positions.append(h.position)
                if not time_entries or max_ts > time_entries[-1][0]:
                    time_entries.append((max_ts, max_ts_offset))
                since_entry = 0
            since_entry += h.size
            positions_seen[h.position] = h.last_offset
            next_offset = h.next_offset
            valid_end = h.position + h.size
            on_batch(h)
    except InvalidBatch as e:
        report.truncated_at = e.position
        report.truncate_reason = e.reason
        report.truncated_bytes = seg.size - e.position
        seg.truncate(e.position)

    # offset index: keep if every entry points at a batch start with that last offset
    if not index_ok or any(positions_seen.get(p) != o for o, p in zip(seg.index.offsets, seg.index.positions)):
        seg.index.offsets = array.array("q", offsets)
        seg.index.positions = array.array("q", positions)
        seg.index.rewrite()
        report.rebuilt_index = True
    # time index: keep if well formed and within what the walk saw
    if not time_ok or (
        len(seg.time_index.timestamps)
        and (seg.time_index.timestamps[-1] > max_ts or seg.time_index.offsets[-1] >= next_offset)
    ):
        seg.time_index.reset()
        for ts, off in time_entries:
            seg.time_index.maybe_append(ts, off)
        if expected_next_offset is not None and max_ts >= 0:
            seg.time_index.maybe_append(max_ts, max_ts_offset)
        seg.time_index.write_pending()
        report.rebuilt_time_index = True

    seg.next_offset = next_offset
    seg.max_timestamp, seg.offset_of_max_timestamp = max_ts, max_ts_offset
    seg.rolling_timestamp = first_max_ts
    last_pos = seg.index.positions[-1] if seg.index.positions else 0
    seg.bytes_since_last_index_entry = valid_end - last_pos
    return report
