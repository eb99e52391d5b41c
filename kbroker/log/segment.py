"""One log segment: ``<base offset, 20 digits>.log`` plus its ``.index`` and ``.timeindex``.

The .log file is opened once, O_APPEND for writes (one os.write per append) and read with pread /
sendfile at positions. Batch boundaries are found from the sparse offset index plus a short walk of
batch headers; records are never looked at here.

An append is all or nothing: buffered index entries are written out first (if they fill a chunk),
then the batches with one write; a write that fails part way is truncated back
(kbroker.log.files), so ``size`` and ``next_offset`` always describe the file's whole batches. Only
then are the in-memory maxima and index entries updated, without I/O.
"""

from __future__ import annotations

import os
from typing import Iterator

from kbroker.log.files import append_fully
from kbroker.log.index import OffsetIndex, TimeIndex
from kbroker.log.txn_index import TransactionIndex
from kbroker.protocol import records as rec
from kbroker.protocol.records import BatchHeader

_HEADER_READ = 4096  # bytes read at a time when walking headers only


def segment_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class InvalidBatch(Exception):
    """Bytes at ``position`` of a segment are not a valid batch (torn write or corruption)."""

    def __init__(self, position: int, reason: str):
        super().__init__(f"{reason} at position {position}")
        self.position = position
        self.reason = reason


class LogSegment:
    def __init__(self, directory: str, base_offset: int, *, index_bytes: int, index_interval: int, now_ms: int):
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval = index_interval
        self.log_path = os.path.join(directory, segment_name(base_offset, ".log"))
        self.fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        st = os.fstat(self.fd)
        self.size = st.st_size
        self.created_ms = int(st.st_mtime * 1000) if self.size else now_ms
        self.index = OffsetIndex(os.path.join(directory, segment_name(base_offset, ".index")), base_offset, index_bytes)
        self.time_index = TimeIndex(
            os.path.join(directory, segment_name(base_offset, ".timeindex")), base_offset, index_bytes
        )
        self.txn_index = TransactionIndex(os.path.join(directory, segment_name(base_offset, ".txnindex")))
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.rolling_timestamp: int | None = None  # max timestamp of the first batch (for segment.ms)
        self.bytes_since_last_index_entry = 0
        self.dirty = False  # written since the last fsync
        self.index_chunk_due = False  # buffered index entries to write before the next batch
        if self.size == 0:  # a new segment gets its (empty) index files right away, as in Kafka
            try:
                self.index.create()
                self.time_index.create()
            except OSError:  # e.g. no space for a new file: no half-made segment stays behind
                self.close()
                self.unlink()
                raise

    # ---------------------------------------------------------------- writing

    def append(self, data: memoryview, headers: list[BatchHeader]) -> None:
        """Write ``data`` (whole batches, offsets assigned; header positions relative to ``data``).
        Raises OSError with the segment unchanged (TornWrite: the file has garbage after ``size``)."""
        if self.index_chunk_due:
            self.index.write_if_full()
            self.time_index.write_if_full()
            self.index_chunk_due = False
        start = self.size
        append_fully(self.fd, data, start)
        self.size += len(data)
        self.dirty = True
        if self.rolling_timestamp is None:
            self.rolling_timestamp = headers[0].max_timestamp
        for h in headers:
            self.note_batch(h, start + h.position)
        self.next_offset = headers[-1].next_offset

    def note_batch(self, h: BatchHeader, position: int) -> None:
        """Account a batch at ``position`` in the in-memory maxima and the sparse indexes (buffered)."""
        if h.max_timestamp > self.max_timestamp:
            self.max_timestamp = h.max_timestamp
            self.offset_of_max_timestamp = h.last_offset
        if self.bytes_since_last_index_entry > self.index_interval:
            self.index.append(h.last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_last_index_entry = 0
            self.index_chunk_due = self.index.chunk_full or self.time_index.chunk_full
        self.bytes_since_last_index_entry += h.size

    def on_become_inactive(self) -> None:
        """At roll: the time index gets a final entry for the segment's max timestamp."""
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self.index.write_pending()
        self.time_index.write_pending()

    def truncate(self, position: int) -> None:
        os.ftruncate(self.fd, position)
        self.size = position
        self.index.truncate_to_position(position)

    def fsync(self) -> None:
        """fsync the .log (and whatever index entries are written). Safe in a worker thread while
        the event loop appends: the dirty mark is cleared first, so a concurrent append re-marks it."""
        self.dirty = False
        os.fsync(self.fd)
        self.index.fsync()
        self.time_index.fsync()
        self.txn_index.fsync()

    # ---------------------------------------------------------------- reading

    def pread(self, position: int, length: int) -> bytes:
        return os.pread(self.fd, length, position)

    def iter_headers(
        self, start: int = 0, end: int | None = None, *, crc_from_offset: int | None = None
    ) -> Iterator[BatchHeader]:
        """Headers (positions absolute in the file) of the batches from ``start`` to ``end``.

        Raises InvalidBatch at the first position that does not hold a whole, valid batch. Batches
        whose last offset >= ``crc_from_offset`` are read in full and their CRC-32C checked.
        """
        end = self.size if end is None else end
        pos = start
        buf = b""
        buf_start = 0
        chunk = _HEADER_READ if crc_from_offset is None else (1 << 20)
        while pos < end:
            if pos + rec.HEADER_SIZE > buf_start + len(buf) or pos < buf_start:
                buf = os.pread(self.fd, min(chunk, end - pos), pos)
                buf_start = pos
            rel = pos - buf_start
            if len(buf) - rel < rec.HEADER_SIZE:
                raise InvalidBatch(pos, "partial batch header")
            h = rec.BatchHeader(*rec._HEADER.unpack_from(buf, rel), pos)
            if h.magic != 2:
                raise InvalidBatch(pos, f"magic {h.magic}")
            if h.size < rec.HEADER_SIZE:
                raise InvalidBatch(pos, f"batch length {h.batch_length}")
            if pos + h.size > end:
                raise InvalidBatch(pos, "partial batch")
            if h.last_offset_delta < -1 or h.record_count < 0:
                raise InvalidBatch(pos, "impossible header")
            if crc_from_offset is not None and h.last_offset >= crc_from_offset:
                if rel + h.size > len(buf):
                    buf = os.pread(self.fd, max(chunk, h.size), pos)
                    buf_start = pos
                    rel = 0
                if rec.compute_crc(buf, rel, h.size) != h.crc:
                    raise InvalidBatch(pos, "CRC mismatch")
            yield h
            pos += h.size

    def find_batch(self, offset: int) -> BatchHeader | None:
        """Header of the first batch whose last offset >= ``offset``, or None if beyond this segment."""
        _, position = self.index.lookup(offset)
        try:
            for h in self.iter_headers(position):
                if h.last_offset >= offset:
                    return h
        except InvalidBatch:
            return None
        return None

    def batches_end(self, start: int, max_bytes: int) -> int:
        """End position of the whole batches from ``start`` that fit in ``max_bytes`` (at least one)."""
        limit = start + max_bytes
        if limit >= self.size:
            return self.size
        pos = max(start, self.index.floor_position(limit))
        end = pos
        try:
            for h in self.iter_headers(pos):
                if h.position + h.size > limit:
                    break
                end = h.position + h.size
        except InvalidBatch:
            pass
        if end == start:  # the first batch alone is larger than max_bytes (KIP-74)
            h = self._header_at(start)
            end = start + h.size
        return end

    def _header_at(self, position: int) -> BatchHeader:
        return rec.BatchHeader(*rec._HEADER.unpack_from(os.pread(self.fd, rec.HEADER_SIZE, position)), position)

    def find_offset_by_timestamp(self, timestamp: int, starting_offset: int) -> tuple[int, int, int] | None:
        """(timestamp, offset, leader epoch) of the first record with timestamp >= ``timestamp`` and
        offset >= ``starting_offset``; None if there is none in this segment."""
        _, ts_offset = self.time_index.lookup(timestamp)
        _, position = self.index.lookup(max(ts_offset, starting_offset))
        for h in self.iter_headers(position):
            if h.max_timestamp < timestamp or h.last_offset < starting_offset:
                continue
            for r in rec.decode_batch_records(self.pread(h.position, h.size)):
                if r.timestamp >= timestamp and r.offset >= starting_offset:
                    return r.timestamp, r.offset, h.partition_leader_epoch
        return None

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self.index.close()
        self.time_index.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def unlink(self) -> None:
        """Remove the files; the .log fd stays open (for readers mid-sendfile) until close()."""
        try:
            os.unlink(self.log_path)
        except FileNotFoundError:
            pass
        self.index.delete()
        self.time_index.delete()
        self.txn_index.delete()
