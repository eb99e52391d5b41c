"""Small text files Kafka keeps next to its logs, in Kafka's formats.

- ``leader-epoch-checkpoint`` (per partition): ``0`` (version), entry count, then ``epoch startOffset``
  lines.
- ``partition.metadata`` (per partition): ``version: 0`` and ``topic_id: <base64url uuid, no padding>``.
- ``recovery-point-offset-checkpoint`` / ``log-start-offset-checkpoint`` (per log dir): ``0``, entry
  count, then ``topic partition offset`` lines.

Every write goes to ``<file>.tmp``, is fsynced, then renamed over the file (and the dir fsynced): at
once, or with the other writes of a durability batch (kbroker.log.durability).
"""

from __future__ import annotations

import base64
import bisect
import os
import uuid
from typing import Iterable

from kbroker.log import durability


def write_atomically(path: str, text: str) -> None:
    durability.write_atomically(path, text.encode())


def _read_versioned(path: str, fields: int) -> list[list[str]] | None:
    """Parse ``0 / count / rows``; None if missing or malformed."""
    text = durability.read_text(path)
    if text is None:
        return None
    lines = text.splitlines()
    try:
        if lines[0].strip() != "0":
            return None
        count = int(lines[1])
        rows = [line.split() for line in lines[2 : 2 + count]]
    except (IndexError, ValueError):
        return None
    if len(rows) != count or any(len(r) != fields for r in rows):
        return None
    return rows


def _format_versioned(rows: Iterable[Iterable[object]]) -> str:
    rows = [" ".join(str(x) for x in r) for r in rows]
    return "0\n%d\n%s" % (len(rows), "".join(r + "\n" for r in rows))


# ---------------------------------------------------------------- offsets per partition (log dir level)


def read_offset_checkpoint(path: str) -> dict[tuple[str, int], int]:
    rows = _read_versioned(path, 3) or []
    out = {}
    for topic, partition, offset in rows:
        try:
            out[(topic, int(partition))] = int(offset)
        except ValueError:
            continue
    return out


def write_offset_checkpoint(path: str, offsets: dict[tuple[str, int], int]) -> None:
    write_atomically(path, _format_versioned((t, p, o) for (t, p), o in sorted(offsets.items())))


# ---------------------------------------------------------------- topic id


def topic_id_to_str(topic_id: uuid.UUID | bytes | str) -> str:
    """Kafka's Uuid text form: URL-safe base64 of the 16 bytes without padding."""
    if isinstance(topic_id, str):
        return topic_id
    raw = topic_id.bytes if isinstance(topic_id, uuid.UUID) else bytes(topic_id)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def topic_id_from_str(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write_partition_metadata(directory: str, topic_id: uuid.UUID | bytes | str) -> None:
    write_atomically(
        os.path.join(directory, "partition.metadata"), f"version: 0\ntopic_id: {topic_id_to_str(topic_id)}\n"
    )


def read_partition_metadata(directory: str) -> str | None:
    """The topic id (Kafka text form) recorded for a partition directory, or None."""
    text = durability.read_text(os.path.join(directory, "partition.metadata"))
    if text is None:
        return None
    lines = text.splitlines()
    fields = dict(line.split(": ", 1) for line in lines if ": " in line)
    return fields.get("topic_id")


# ---------------------------------------------------------------- leader epochs


class LeaderEpochCache:
    """(epoch, start offset) pairs in increasing order, mirrored to ``leader-epoch-checkpoint`` in
    ``directory`` (kept in memory only when there is none: the memory log's)."""

    FILE = "leader-epoch-checkpoint"

    def __init__(self, directory: str | None):
        self.path = os.path.join(directory, self.FILE) if directory is not None else None
        self.epochs: list[int] = []
        self.starts: list[int] = []
        self._written: list[tuple[int, int]] | None = None  # what the file holds, when known

    def load(self) -> bool:
        if self.path is None:
            return False
        rows = _read_versioned(self.path, 2)
        if rows is None:
            return False
        self.epochs = [int(e) for e, _ in rows]
        self.starts = [int(o) for _, o in rows]
        self._written = self.entries
        return True

    def save(self) -> None:
        """Write the checkpoint, unless it already holds these entries (a clean shutdown of many
        partitions rewrote every unchanged file)."""
        if self.path is None:
            return
        entries = self.entries
        if entries == self._written:
            return
        write_atomically(self.path, _format_versioned(entries))
        self._written = entries

    @property
    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self.epochs, self.starts))

    @property
    def latest_epoch(self) -> int | None:
        return self.epochs[-1] if self.epochs else None

    def assign(self, epoch: int, start_offset: int, *, save: bool = True) -> bool:
        """Record that ``epoch`` starts at ``start_offset``; True if anything changed."""
        if epoch < 0 or start_offset < 0:
            return False
        if self.epochs and self.epochs[-1] == epoch and self.starts[-1] <= start_offset:
            return False
        # a new epoch supersedes entries at or after its start, and older epochs cannot follow newer ones
        while self.epochs and (self.epochs[-1] >= epoch or self.starts[-1] >= start_offset):
            self.epochs.pop()
            self.starts.pop()
        self.epochs.append(epoch)
        self.starts.append(start_offset)
        if save:
            self.save()
        return True

    def truncate_from_start(self, start_offset: int) -> None:
        """Forget epochs wholly below ``start_offset``; the epoch covering it now starts there."""
        i = bisect.bisect_right(self.starts, start_offset)
        if i == 0:
            return
        del self.epochs[: i - 1]
        del self.starts[: i - 1]
        if self.starts[0] != start_offset:
            self.starts[0] = start_offset
        self.save()

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs starting at or after ``end_offset``."""
        i = bisect.bisect_left(self.starts, end_offset)
        if i < len(self.starts):
            del self.epochs[i:]
            del self.starts[i:]
            self.save()

    def epoch_for_offset(self, offset: int) -> int | None:
        i = bisect.bisect_right(self.starts, offset)
        return self.epochs[i - 1] if i else None

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (epoch, end offset) as Kafka's LeaderEpochFileCache answers it."""
        if requested_epoch == -1:
            return -1, -1
        if self.epochs and self.epochs[-1] == requested_epoch:
            return requested_epoch, log_end_offset
        hi = bisect.bisect_right(self.epochs, requested_epoch)
        if hi == len(self.epochs):
            return -1, -1
        if hi == 0:
            return requested_epoch, self.starts[0]
        return self.epochs[hi - 1], self.starts[hi]
