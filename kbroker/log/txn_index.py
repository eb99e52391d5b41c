"""The transaction index of one segment: ``<base offset, 20 digits>.txnindex``, in Kafka's format.

One 34-byte entry per transaction aborted in this segment (the segment that holds the ABORT marker):
version int16 (0), producerId int64, firstOffset int64, lastOffset int64 (the marker's offset),
lastStableOffset int64 (the partition's LSO once the transaction was complete). Entries are in
marker order. A read_committed Fetch answers with the entries overlapping the fetched range, and the
consumer drops those producers' batches between firstOffset and the marker.

The file exists only once a segment has an aborted transaction, as in Kafka. Entries are kept in
memory too (a few per segment), added there before the file is appended (one write per append), so
memory is right even when the write fails; recovery compares the file with the markers it replays
and rewrites it when they differ.
"""

from __future__ import annotations

import os
import struct
from typing import Iterable, NamedTuple

from kbroker.log.files import append_fully

ENTRY = struct.Struct(">hqqqq")
VERSION = 0


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    def __init__(self, path: str):
        self.path = path
        self.entries: list[AbortedTxn] = []

    def load(self) -> list[AbortedTxn]:
        """Entries read from the file (whole entries only); they become this index's entries."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        entries = []
        for pos in range(0, len(data) - ENTRY.size + 1, ENTRY.size):
            version, pid, first, last, lso = ENTRY.unpack_from(data, pos)
            if version != VERSION:
                break
            entries.append(AbortedTxn(pid, first, last, lso))
        self.entries = entries
        return entries

    def append(self, entry: AbortedTxn) -> None:
        self.extend([entry])

    def extend(self, entries: list[AbortedTxn]) -> None:
        self.entries.extend(entries)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            append_fully(fd, b"".join(ENTRY.pack(VERSION, *e) for e in entries), os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def rewrite(self, entries: Iterable[AbortedTxn]) -> None:
        self.entries = list(entries)
        if not self.entries:
            self.delete()
            return
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b"".join(ENTRY.pack(VERSION, *e) for e in self.entries))
        os.replace(tmp, self.path)

    def fsync(self) -> None:
        if self.entries and os.path.exists(self.path):
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def delete(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def collect(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """Entries overlapping [fetch_offset, upper_bound)."""
        return overlapping(self.entries, fetch_offset, upper_bound)


def overlapping(entries: Iterable[AbortedTxn], fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
    """The aborted transactions overlapping [fetch_offset, upper_bound)."""
    return [e for e in entries if e.last_offset >= fetch_offset and e.first_offset < upper_bound]
