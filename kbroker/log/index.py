"""Kafka's sparse segment indexes, in Kafka's on-disk formats.

- ``.index``: 8-byte entries, int32 offset relative to the segment's base offset, int32 byte
  position of a batch in the ``.log`` file; the entry's offset is the batch's *last* offset.
- ``.timeindex``: 12-byte entries, int64 timestamp, int32 relative offset; timestamps strictly
  increase (an entry is only added for a new maximum).

All big-endian. Files hold exactly their entries (Kafka preallocates and trims on close; it reads
ours fine). The entries live in memory as arrays for bisecting; new entries are buffered and written
out in 4 KiB chunks, on fsync, truncation and close (Kafka's mmap is similarly lazy -- an index is
derived data that recovery checks and rebuilds).

Buffering never writes: the segment calls ``write_if_full`` before it writes its next batch, so an index
write that fails (a full disk) fails the append before any of its bytes are in the log. A failed
write of entries leaves the file as it was (kbroker.log.files) and the entries buffered, to go out
with the next write.
"""

from __future__ import annotations

import array
import bisect
import os
import struct
import sys

from kbroker.log.files import append_fully

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


_PENDING_LIMIT = 4096


def _open_append(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)


class _IndexFile:
    """The file side both indexes share: lazy open, buffered appends, truncation, fsync, close."""

    ENTRY_SIZE = 0

    def __init__(self, path: str, base_offset: int, max_index_bytes: int):
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_bytes // self.ENTRY_SIZE)
        self._fd = -1
        self._pending = bytearray()

    offsets: array.array  # absolute offsets, one per entry

    @property
    def is_full(self) -> bool:
        return len(self.offsets) >= self.max_entries

    def truncate_entries(self, n: int) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        self.truncate_entries(0)

    def _read_entries(self) -> bytes | None:
        """The file's bytes, or None when it is missing or not a whole number of entries."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return None if len(data) % self.ENTRY_SIZE else data

    def _writer(self) -> int:
        if self._fd < 0:
            self._fd = _open_append(self.path)
        return self._fd

    def create(self) -> None:
        self._writer()

    def write_pending(self) -> None:
        if self._pending:
            fd = self._writer()
            append_fully(fd, self._pending, os.fstat(fd).st_size)
            self._pending.clear()

    @property
    def chunk_full(self) -> bool:
        """Enough entries are buffered to be written out."""
        return len(self._pending) >= _PENDING_LIMIT

    def write_if_full(self) -> None:
        if self.chunk_full:
            self.write_pending()

    def _buffer(self, entry: bytes) -> None:
        self._pending += entry

    def _truncate_file(self, entries: int) -> None:
        self.write_pending()
        os.ftruncate(self._writer(), entries * self.ENTRY_SIZE)

    def fsync(self) -> None:
        """fsync what is written; buffered entries are left to the owning thread (recovery rebuilds
        any index entries a crash loses)."""
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        self.write_pending()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        self._pending.clear()
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class OffsetIndex(_IndexFile):
    ENTRY_SIZE = 8

    def __init__(self, path: str, base_offset: int, max_index_bytes: int):
        super().__init__(path, base_offset, max_index_bytes)
        self.offsets = array.array("q")  # absolute offsets
        self.positions = array.array("q")

    # -- load / check

    def load(self) -> bool:
        """Read the file if present. Returns False if it is missing or not well formed (caller rebuilds)."""
        data = self._read_entries()
        if data is None:
            return False
        raw = array.array("i")
        raw.frombytes(data)
        if sys.byteorder == "little":
            raw.byteswap()
        rel = raw[0::2]
        pos = raw[1::2]
        self.offsets = array.array("q", (self.base_offset + r for r in rel))
        self.positions = array.array("q", pos)
        return self._well_formed()

    def _well_formed(self) -> bool:
        offs, poss = self.offsets, self.positions
        for i in range(1, len(offs)):
            if offs[i] <= offs[i - 1] or poss[i] <= poss[i - 1]:
                return False
        return not offs or (offs[0] >= self.base_offset and poss[0] >= 0)

    def consistent_with(self, log_size: int, next_offset: int | None) -> bool:
        if not self.positions:
            return True
        if self.positions[-1] >= log_size:
            return False
        return next_offset is None or self.offsets[-1] < next_offset

    # -- write

    def append(self, offset: int, position: int) -> None:
        if self.offsets and (offset <= self.offsets[-1] or position <= self.positions[-1]):
            return
        self._buffer(_OFFSET_ENTRY.pack(offset - self.base_offset, position))
        self.offsets.append(offset)
        self.positions.append(position)

    def truncate_entries(self, n: int) -> None:
        """Keep the first ``n`` entries."""
        del self.offsets[n:]
        del self.positions[n:]
        self._truncate_file(n)

    def truncate_to_position(self, position: int) -> None:
        """Drop entries pointing at ``position`` or beyond."""
        self.truncate_entries(bisect.bisect_left(self.positions, position))

    def rewrite(self) -> None:
        """Write the whole file from memory (after a rebuild)."""
        self._pending.clear()
        os.ftruncate(self._writer(), 0)
        buf = bytearray()
        for o, p in zip(self.offsets, self.positions):
            buf += _OFFSET_ENTRY.pack(o - self.base_offset, p)
        os.write(self._writer(), buf)

    # -- lookup

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry whose offset <= ``offset``; (base, 0) if none."""
        i = bisect.bisect_right(self.offsets, offset)
        if i == 0:
            return self.base_offset, 0
        return self.offsets[i - 1], self.positions[i - 1]

    def floor_position(self, position: int) -> int:
        """The largest indexed position <= ``position`` (0 if none)."""
        i = bisect.bisect_right(self.positions, position)
        return self.positions[i - 1] if i else 0


class TimeIndex(_IndexFile):
    ENTRY_SIZE = 12

    def __init__(self, path: str, base_offset: int, max_index_bytes: int):
        super().__init__(path, base_offset, max_index_bytes)
        self.timestamps = array.array("q")
        self.offsets = array.array("q")

    def load(self) -> bool:
        data = self._read_entries()
        if data is None:
            return False
        ts = array.array("q")
        offs = array.array("q")
        for t, r in _TIME_ENTRY.iter_unpack(data):
            ts.append(t)
            offs.append(self.base_offset + r)
        self.timestamps, self.offsets = ts, offs
        for i in range(1, len(ts)):
            if ts[i] <= ts[i - 1] or offs[i] < offs[i - 1]:
                return False
        return not offs or offs[0] >= self.base_offset

    def consistent_with(self, next_offset: int | None) -> bool:
        return not self.offsets or next_offset is None or self.offsets[-1] < next_offset

    @property
    def last_entry(self) -> tuple[int, int]:
        if not self.timestamps:
            return -1, self.base_offset
        return self.timestamps[-1], self.offsets[-1]

    def maybe_append(self, timestamp: int, offset: int) -> None:
        if self.timestamps and (timestamp <= self.timestamps[-1] or offset < self.offsets[-1]):
            return
        if timestamp < 0:
            return
        self._buffer(_TIME_ENTRY.pack(timestamp, offset - self.base_offset))
        self.timestamps.append(timestamp)
        self.offsets.append(offset)

    def truncate_entries(self, n: int) -> None:
        del self.timestamps[n:]
        del self.offsets[n:]
        self._truncate_file(n)

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries for offsets >= ``offset``."""
        self.truncate_entries(bisect.bisect_left(self.offsets, offset))

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset) of the last entry with timestamp <= ``timestamp``; (-1, base) if none."""
        i = bisect.bisect_right(self.timestamps, timestamp)
        if i == 0:
            return -1, self.base_offset
        return self.timestamps[i - 1], self.offsets[i - 1]
