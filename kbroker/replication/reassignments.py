"""ClusterReassignments: AlterPartitionReassignments and ListPartitionReassignments on a broker in a
cluster (any broker: the controller does the moving).

Altering reads the topic's node afresh, works out each partition's reassignment
(kbroker.coordination.reassignment: start, or cancel back to the original replicas) and writes the
topic's node once, conditional on the version read -- a concurrent change (another reassignment,
the controller completing one) makes it read again and retry. The answer comes once this broker's
own view has the write, so a ListPartitionReassignments to the same broker right after lists it.
Errors as Kafka 4.4's controller gives them: a cancel with nothing in progress is
NO_REASSIGNMENT_IN_PROGRESS, a cancel that would need an unclean election on a topic that does not
allow one INVALID_REPLICA_ASSIGNMENT, a changed replication factor with
AllowReplicationFactorChange false INVALID_REPLICATION_FACTOR (the replica list itself -- known
brokers, no duplicates -- is checked by the handler, as CreateTopics checks one).

Listing reads this broker's view: every partition with replicas being added or removed.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

import trio

from ..coordination import reassignment
from ..coordination.cluster import TopicAssignment
from ..coordination.reassignment import Reassignment
from ..coordination.store import BadVersion, NoNode
from ..coordination.view import ClusterView
from ..metadata.cluster_info import OngoingReassignment
from ..protocol.errors import ErrorCode

log = logging.getLogger("kbroker.replication")

WRITE_ATTEMPTS = 20
SEEN_TIMEOUT_S = 10.0

Results = dict[tuple[str, int], tuple[int, str | None]]


class ClusterReassignments:
    def __init__(self, view: ClusterView, unclean_election: Callable[[str], bool]):
        self._view = view
        self._unclean_election = unclean_election  # the topic's unclean.leader.election.enable

    def ongoing(self) -> dict[tuple[str, int], OngoingReassignment]:
        out = {}
        for name, assignment in sorted(self._view.topics.items()):
            for partition in sorted(set(assignment.adding) | set(assignment.removing)):
                out[(name, partition)] = OngoingReassignment(assignment.replicas[partition],
                                                             assignment.adding.get(partition, ()),
                                                             assignment.removing.get(partition, ()))
        return out

    async def alter(self, changes: dict[tuple[str, int], list[int] | None], allow_replication_factor_change: bool
                    ) -> Results:
        by_topic: dict[str, dict[int, list[int] | None]] = {}
        for (name, partition), target in changes.items():
            by_topic.setdefault(name, {})[partition] = target
        results: Results = {}
        for name, wanted in by_topic.items():
            results.update(await self._alter_topic(name, wanted, allow_replication_factor_change))
        return results

    async def _alter_topic(self, name: str, wanted: dict[int, list[int] | None], allow_factor_change: bool) -> Results:
        coordination = self._view.coordination
        for _ in range(WRITE_ATTEMPTS):
            before = await coordination.topic(name)
            if before is None:
                return {(name, p): (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {name}.")
                        for p in wanted}
            results, after = self._apply(before, wanted, allow_factor_change)
            if after == before:
                return results
            try:
                version = await coordination.reassign(None, after)
            except BadVersion:
                continue  # changed since read: again, from what it is now
            except NoNode:
                continue  # deleted meanwhile: the next read says so
            for partition in sorted(wanted):
                if results[(name, partition)][0] == ErrorCode.NONE:
                    log.info("partition %s-%d: reassignment %s (replicas %s, adding %s, removing %s)", name,
                             partition, "started" if wanted[partition] is not None else "cancelled",
                             list(after.replicas[partition]), list(after.adding.get(partition, ())),
                             list(after.removing.get(partition, ())))
            await self._seen(name, version)
            return results
        return {(name, p): (ErrorCode.REQUEST_TIMED_OUT, f"topic {name} kept changing; retry") for p in wanted}

    def _apply(self, topic: TopicAssignment, wanted: dict[int, list[int] | None], allow_factor_change: bool
               ) -> tuple[Results, TopicAssignment]:
        replicas, adding, removing = dict(topic.replicas), dict(topic.adding), dict(topic.removing)
        results: Results = {}
        for partition, target in wanted.items():
            if partition not in topic.replicas:
                results[(topic.name, partition)] = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                    f"Unable to find partition {topic.name}:{partition}.")
                continue
            current = Reassignment(topic.replicas[partition], topic.adding.get(partition, ()),
                                   topic.removing.get(partition, ()))
            refused = (self._refused_cancel(topic.name, partition, current) if target is None
                       else _refused_factor(current, target, allow_factor_change))
            results[(topic.name, partition)] = refused or (ErrorCode.NONE, None)
            if refused is None:
                new = reassignment.revert(current) if target is None else reassignment.start(current, target)
                replicas[partition] = new.replicas
                for ongoing, value in ((adding, new.adding), (removing, new.removing)):
                    ongoing.pop(partition, None)
                    if value:
                        ongoing[partition] = value
        return results, replace(topic, replicas=replicas, adding=adding, removing=removing)

    def _refused_cancel(self, name: str, partition: int, current: Reassignment) -> tuple[int, str] | None:
        if not (current.adding or current.removing):
            return ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, None  # Kafka leaves the generic message out
        state = self._view.state(name, partition)
        if state is not None and reassignment.revert_is_unclean(current, state) and not self._unclean_election(name):
            return (ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Unable to revert partition assignment for {name}:"
                    f"{partition} because it would require an unclean leader election.")
        return None

    async def _seen(self, name: str, version: int) -> None:
        with trio.move_on_after(SEEN_TIMEOUT_S):
            while (seen := self._view.topics.get(name)) is None or seen.version < version:
                await self._view.wait_changed()


def _refused_factor(current: Reassignment, target: list[int], allow_factor_change: bool) -> tuple[int, str] | None:
    """KIP-860: with AllowReplicationFactorChange false the target keeps the factor the partition
    has (or is being reassigned to)."""
    if allow_factor_change or len(current.target) == len(target):
        return None
    return (ErrorCode.INVALID_REPLICATION_FACTOR,
            f"The replication factor is changed from {len(current.target)} to {len(target)}")
