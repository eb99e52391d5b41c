"""Replica placement for new partitions, as Kafka's AdminUtils assigns them.

Without racks: partition p's first replica is broker (start + p) in the sorted broker list, and its
followers follow at a shift that grows every full round of brokers, so leaders and followers spread
evenly. With racks (`broker.rack` on every broker): brokers are interleaved rack by rack first, so
consecutive brokers sit in different racks; then each partition's replicas go to distinct racks
until every rack has one, and to distinct brokers in all cases.
The start index and shift are random in Kafka; callers pass them, so placement is reproducible.
"""

from __future__ import annotations

from typing import Mapping


class PlacementError(ValueError):
    """More replicas asked for than brokers exist (Kafka: INVALID_REPLICATION_FACTOR)."""


def _rack_alternated(racks: Mapping[int, str]) -> list[int]:
    """Brokers ordered so that consecutive ones are in different racks: r1b1, r2b1, r3b1, r1b2, ..."""
    by_rack: dict[str, list[int]] = {}
    for broker in sorted(racks):
        by_rack.setdefault(racks[broker], []).append(broker)
    ordered_racks = sorted(by_rack)
    out: list[int] = []
    for round_ in range(max(len(b) for b in by_rack.values())):
        for rack in ordered_racks:
            if round_ < len(by_rack[rack]):
                out.append(by_rack[rack][round_])
    return out


def _replica_index(first: int, shift: int, replica: int, count: int) -> int:
    return (first + 1 + (shift + replica) % (count - 1)) % count


def assign_replicas(brokers: Mapping[int, str | None], partitions: int, replication_factor: int, *,
                    start_index: int = 0, start_partition: int = 0) -> dict[int, list[int]]:
    """partition -> replicas (the first is the preferred leader), for partitions
    start_partition .. start_partition + partitions - 1. `brokers` maps broker id -> rack (or None)."""
    if replication_factor <= 0 or replication_factor > len(brokers):
        raise PlacementError(f"replication factor {replication_factor} with {len(brokers)} broker(s) available")
    racked = all(rack is not None for rack in brokers.values())
    ids = _rack_alternated(brokers) if racked else sorted(brokers)  # type: ignore[arg-type]
    count = len(ids)
    assignment: dict[int, list[int]] = {}
    shift = start_index % count
    for offset in range(partitions):
        partition = start_partition + offset
        if offset > 0 and offset % count == 0:
            shift += 1
        first = (offset + start_index) % count
        replicas = [ids[first]]
        if racked:
            replicas += _rack_aware_followers(brokers, ids, first, shift, replication_factor)
        else:
            replicas += [ids[_replica_index(first, shift, j, count)] for j in range(replication_factor - 1)]
        assignment[partition] = replicas
    return assignment


def _rack_aware_followers(racks: Mapping[int, str | None], ids: list[int], first: int, shift: int,
                          replication_factor: int) -> list[int]:
    count, rack_count = len(ids), len(set(racks.values()))
    chosen = [ids[first]]
    racks_with_replica = {racks[ids[first]]}
    k = 0
    while len(chosen) < replication_factor:
        broker = ids[_replica_index(first, shift, k, count)]
        k += 1
        rack = racks[broker]
        if broker in chosen:
            continue
        if rack in racks_with_replica and len(racks_with_replica) < rack_count:
            continue  # racks without a replica of this partition come first; once all have one, any
        chosen.append(broker)
        racks_with_replica.add(rack)
    return chosen[1:]
