"""The cleaner's offset map: key -> offset of the key's last record in the dirty section of a log.

Kafka's SkimpyOffsetMap holds MD5 digests in a fixed buffer (``log.cleaner.dedupe.buffer.size``
shared by the cleaner threads). Here a dict of the keys themselves (no collisions to fear) is
bounded by the same budget, each entry charged what it costs in memory (the key's bytes plus a
dict slot, an int and a bytes object's overhead), so a cleaning builds its map from as much of the
dirty section as fits and the next cleaning goes on from there.
"""

from __future__ import annotations

ENTRY_OVERHEAD = 120  # bytes a dict entry with a bytes key and an int value costs beyond the key


class OffsetMap:
    def __init__(self, budget_bytes: int):
        self.budget_bytes = max(budget_bytes, ENTRY_OVERHEAD)
        self._offsets: dict[bytes, int] = {}
        self._used = 0
        self.latest_offset = -1  # the last offset the map has seen (keys or not)

    def __len__(self) -> int:
        return len(self._offsets)

    def fits(self, keys: int, key_bytes: int) -> bool:
        """Whether ``keys`` more keys of ``key_bytes`` in all would fit (a first batch always does)."""
        return not self._offsets or self._used + keys * ENTRY_OVERHEAD + key_bytes <= self.budget_bytes

    def put(self, key: bytes, offset: int) -> None:
        if key not in self._offsets:
            self._used += ENTRY_OVERHEAD + len(key)
        self._offsets[key] = offset

    def get(self, key: bytes) -> int | None:
        return self._offsets.get(key)

    @property
    def utilization(self) -> float:
        return self._used / self.budget_bytes
