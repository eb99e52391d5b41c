"""ClusterTopics: topic administration recorded in the cluster (the TopicDirectory of kbroker.topics
for a broker in a cluster).

Any broker may create, grow or delete a topic: each is one transaction on the coordination store
(the assignment, configs and every new partition's first state at once), so two brokers creating
the same name cannot both succeed (the loser gets TOPIC_ALREADY_EXISTS), and the change reaches
every broker's catalogue through its cluster view. Replicas are placed over the live brokers as
Kafka's AdminUtils places them (kbroker.coordination.placement: rack-aware with ``broker.rack``),
at a random start as Kafka's is; the first replica is the preferred leader and leads at epoch 0,
with every replica in the ISR (a new partition is empty everywhere).

Config overrides changed by AlterConfigs on one broker apply there at once and are written to
``/config/topics/<topic>`` in the background; every other broker's view picks them up.

Replication factors: the request's, else ``default.replication.factor`` -- and for the internal
topics ``offsets.topic.replication.factor`` / ``transaction.state.log.replication.factor``; more
than the live brokers is INVALID_REPLICATION_FACTOR, as Kafka answers.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import replace

from ..coordination.cluster import ClusterCoordination, PartitionState, TopicAssignment
from ..coordination.placement import PlacementError, assign_replicas
from ..coordination.store import BadVersion, CoordinationError, NodeExists, NoNode
from ..coordination.view import ClusterView
from ..protocol.errors import ApiError, ErrorCode

log = logging.getLogger("kbroker.replication")

_INTERNAL_REPLICATION = {"__consumer_offsets": "offsets.topic.replication.factor",
                         "__transaction_state": "transaction.state.log.replication.factor",
                         "__share_group_state": "share.coordinator.state.topic.replication.factor"}


class ClusterTopics:
    def __init__(self, coordination: ClusterCoordination, view: ClusterView, config, spawn=None):
        self.coordination = coordination
        self.view = view
        self._config = config  # () -> the live broker config
        self._spawn = spawn  # starts a task in the session's nursery

    def _replication_factor(self, name: str, asked: int | None) -> int:
        if asked is not None and asked > 0:
            return asked
        config = self._config()
        return int(config.get(_INTERNAL_REPLICATION.get(name, "default.replication.factor")))

    def _place(self, partitions: int, replication_factor: int, start_partition: int = 0) -> dict[int, list[int]]:
        brokers = {node_id: registration.rack for node_id, registration in self.view.brokers.items()}
        try:
            return assign_replicas(brokers, partitions, replication_factor, start_index=random.randrange(
                max(len(brokers), 1)), start_partition=start_partition)
        except PlacementError:
            raise ApiError(ErrorCode.INVALID_REPLICATION_FACTOR,
                           f"Unable to replicate the partition {replication_factor} time(s): The target "
                           f"replication factor of {replication_factor} cannot be reached because only "
                           f"{len(brokers)} broker(s) are registered.") from None

    async def _first_states(self, assignment: dict[int, list[int]]) -> dict[int, PartitionState]:
        epoch = await self.coordination.controller_epoch()
        return {p: PartitionState(replicas[0], 0, tuple(replicas), epoch) for p, replicas in assignment.items()}

    async def create_topic(self, name: str, partitions: int, replication_factor: int | None,
                           configs: dict[str, str], assignment: dict[int, list[int]] | None) -> None:
        if assignment is None:
            assignment = self._place(partitions, self._replication_factor(name, replication_factor))
        topic = TopicAssignment(name, uuid.uuid4(), {p: tuple(r) for p, r in assignment.items()}, configs)
        try:
            await self.coordination.create_topic(None, topic, await self._first_states(assignment))
        except NodeExists:
            raise KeyError(f"topic {name!r} already exists") from None

    async def delete_topic(self, name: str) -> None:
        try:
            await self.coordination.delete_topic(None, name)
        except NoNode:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) from None

    async def add_partitions(self, name: str, count: int, assignment: list[list[int]] | None) -> None:
        node = await self.coordination.store.get(f"/brokers/topics/{name}")
        topic = await self.coordination.topic(name)
        if node is None or topic is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        current = len(topic.replicas)
        factor = len(next(iter(topic.replicas.values())))
        added = ({current + i: list(r) for i, r in enumerate(assignment)} if assignment is not None
                 else self._place(count - current, factor, start_partition=current))
        grown = replace(topic, replicas={**topic.replicas, **{p: tuple(r) for p, r in added.items()}})
        try:
            await self.coordination.add_partitions(grown, await self._first_states(added), node.version)
        except (BadVersion, NodeExists):
            raise ApiError(ErrorCode.REASSIGNMENT_IN_PROGRESS, f"topic {name} changed meanwhile; retry") from None

    def record_configs(self, name: str, configs: dict[str, str]) -> None:
        if self._spawn is not None:
            self._spawn(self._write_configs, name, configs)

    async def _write_configs(self, name: str, configs: dict[str, str]) -> None:
        try:
            await self.coordination.set_topic_configs(name, configs)
        except CoordinationError as exc:
            log.warning("could not record the configs of topic %s in the cluster: %s", name, exc)
