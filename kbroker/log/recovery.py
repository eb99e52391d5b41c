"""Loading a segment at startup: walk its batch headers, re-validate what may be torn, fix indexes.

Every batch header of every segment is walked once (that is how producer state and leader epochs
are rebuilt). Batches at or after the recovery point -- the offset below which everything is known
to be fsynced -- are also CRC-checked in full. The first invalid batch ends the log: the file is
truncated there. Indexes are kept when they agree with the walk, otherwise rebuilt from it.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Callable

from kbroker.log.segment import InvalidBatch, LogSegment
from kbroker.protocol.records import BatchHeader


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
