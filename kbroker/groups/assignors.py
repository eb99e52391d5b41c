"""The server-side assignors of KIP-848 consumer groups: `uniform` (Kafka's default) and `range`.

An assignor maps the group's members (their subscribed topic ids and their current target
assignment) and the subscribed topics' partition counts to a new target assignment, {member id:
{topic id: partitions}}. It is a pure function: the group epoch that asked for it and the records
that persist its answer are the consumer group protocol's (kbroker.groups.consumer_protocol).

- uniform: every partition of every subscribed topic goes to one member that subscribes to it, as
  evenly as the subscriptions allow, and sticky: a partition stays with its current owner unless
  that owner has more than its share (its count exceeds another eligible member's by two or more).
  Kafka's UniformAssignor has the same contract (balanced, sticky); the exact choice of which
  partition moves where may differ from Kafka's, which clients do not depend on.
- range: per topic, the members subscribed to it sorted by member id get consecutive ranges of
  partitions, the first (count % members) one more. Members subscribing to the same
  co-partitioned topics get the same partition numbers of each (what joins rely on).

The broker config `group.consumer.assignors` lists the enabled ones; the first is the default, and a
member picks another with the ServerAssignor field of its heartbeat.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable

Partitions = dict[uuid.UUID, frozenset[int]]
TopicPartition = tuple[uuid.UUID, int]


@dataclass(frozen=True, slots=True)
class MemberSpec:
    subscribed: frozenset[uuid.UUID]
    current: Partitions = field(default_factory=dict)


Assignor = Callable[[dict[str, MemberSpec], dict[uuid.UUID, int]], dict[str, Partitions]]


def _as_partitions(owned: set[TopicPartition]) -> Partitions:
    out: dict[uuid.UUID, set[int]] = {}
    for topic_id, index in owned:
        out.setdefault(topic_id, set()).add(index)
    return {topic_id: frozenset(indexes) for topic_id, indexes in out.items()}


def uniform(members: dict[str, MemberSpec], topics: dict[uuid.UUID, int]) -> dict[str, Partitions]:
    order = sorted(members)
    eligible: dict[TopicPartition, list[str]] = {}
    for topic_id in sorted(topics, key=str):
        subscribers = [m for m in order if topic_id in members[m].subscribed]
        if subscribers:
            for index in range(topics[topic_id]):
                eligible[(topic_id, index)] = subscribers
    owned: dict[str, set[TopicPartition]] = {m: set() for m in order}
    owner: dict[TopicPartition, str] = {}
    # keep what members have, where they still may
    for member_id in order:
        for topic_id, indexes in members[member_id].current.items():
            for index in indexes:
                tp = (topic_id, index)
                if tp in eligible and tp not in owner and member_id in eligible[tp]:
                    owner[tp] = member_id
                    owned[member_id].add(tp)
    # hand out the rest, each to the least loaded member that may take it
    for tp, subscribers in eligible.items():
        if tp not in owner:
            chosen = min(subscribers, key=lambda m: len(owned[m]))
            owner[tp] = chosen
            owned[chosen].add(tp)
    # then move partitions from the most to the least loaded until no move narrows the gap
    moved = True
    while moved:
        moved = False
        for tp in sorted(owner, key=lambda tp: (str(tp[0]), tp[1])):
            current = owner[tp]
            target = min(eligible[tp], key=lambda m: len(owned[m]))
            if len(owned[current]) - len(owned[target]) >= 2:
                owned[current].discard(tp)
                owned[target].add(tp)
                owner[tp] = target
                moved = True
    return {m: _as_partitions(owned[m]) for m in order}


def range_assignor(members: dict[str, MemberSpec], topics: dict[uuid.UUID, int]) -> dict[str, Partitions]:
    owned: dict[str, set[TopicPartition]] = {m: set() for m in sorted(members)}
    for topic_id, count in topics.items():
        subscribers = sorted(m for m, spec in members.items() if topic_id in spec.subscribed)
        if not subscribers:
            continue
        per, extra = divmod(count, len(subscribers))
        start = 0
        for i, member_id in enumerate(subscribers):
            size = per + (1 if i < extra else 0)
            owned[member_id].update((topic_id, index) for index in range(start, start + size))
            start += size
    return {m: _as_partitions(tps) for m, tps in owned.items()}


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform, "range": range_assignor}
