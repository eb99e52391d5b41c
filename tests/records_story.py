"""The records a user story produces: keys, values, headers, null keys and values, explicit timestamps.
Record i always goes to partition i % partitions, so per-partition order can be checked exactly."""

from __future__ import annotations

from dataclasses import dataclass

BASE_TIMESTAMP = 1_700_000_000_000


@dataclass(frozen=True)
class StoryRecord:
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


def story_records(count: int, partitions: int) -> list[StoryRecord]:
    records = []
    for i in range(count):
        key = None if i % 7 == 0 else f"key-{i}".encode()
        value = None if i % 7 == 3 else (f"value-{i}-".encode() + bytes(range(i % 50)))
        headers = () if i % 3 else (("trace", f"t{i}".encode()), ("empty", b""))
        records.append(StoryRecord(i % partitions, key, value, headers, BASE_TIMESTAMP + i))
    return records


def by_partition(records) -> dict[int, list]:
    result: dict[int, list] = {}
    for r in records:
        result.setdefault(r.partition, []).append(r)
    return result
