"""What the handlers are told about the cluster: its brokers, its controller, and each partition's
leader, leader epoch, replicas, in-sync and offline replicas (Metadata, DescribeCluster,
DescribeTopicPartitions, FindCoordinator, the checks of replica assignments), the leader elections
and the partition reassignments asked of it.

``ClusterInfo`` is the interface; ``SingleBroker`` is the answer of a broker alone (it is every
partition's only replica and the controller). A broker in a cluster answers from its view of the
coordination store (kbroker.replication.cluster_info).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .store import Topic


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    leader: int  # -1: none now (offline)
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class OngoingReassignment:
    replicas: tuple[int, ...]  # the target's, then those being removed
    adding: tuple[int, ...]
    removing: tuple[int, ...]


ELECTION_NOT_NEEDED_MESSAGE = "Leader election not needed for topic partition."


class ClusterInfo(Protocol):
    def brokers(self) -> list[BrokerInfo]: ...
    def controller_id(self) -> int: ...
    def partition(self, topic: Topic, index: int) -> PartitionInfo | None: ...

    async def elect_leaders(self, election_type: int, partitions: list[tuple[str, int]]
                            ) -> dict[tuple[str, int], tuple[int, str | None]]:
        """ElectLeaders (0 preferred, 1 unclean) of existing partitions: (error code, message) each."""

    def reassignments(self) -> dict[tuple[str, int], OngoingReassignment]:
        """The partitions being reassigned now."""

    async def alter_reassignments(self, changes: dict[tuple[str, int], list[int] | None],
                                  allow_replication_factor_change: bool
                                  ) -> dict[tuple[str, int], tuple[int, str | None]]:
        """Start (a replica list, already checked against the registered brokers) or cancel (None)
        existing partitions' reassignments: (error code, message) each."""


class SingleBroker:
    """A broker alone: it leads every partition, at the topic's leader epoch."""

    def __init__(self, node):
        self._node = node  # NodeInfo: id, rack, advertised endpoints (known once listening)

    def brokers(self) -> list[BrokerInfo]:
        return [BrokerInfo(self._node.node_id, host, port, self._node.rack)
                for host, port in self._node.advertised_endpoints[:1]]

    def controller_id(self) -> int:
        return self._node.node_id

    def partition(self, topic: Topic, index: int) -> PartitionInfo | None:
        node = self._node.node_id
        return PartitionInfo(node, topic.leader_epoch, (node,), (node,))

    async def elect_leaders(self, election_type: int, partitions: list[tuple[str, int]]
                            ) -> dict[tuple[str, int], tuple[int, str | None]]:
        return {tp: (84, ELECTION_NOT_NEEDED_MESSAGE) for tp in partitions}  # the only replica leads

    def reassignments(self) -> dict[tuple[str, int], OngoingReassignment]:
        return {}

    async def alter_reassignments(self, changes: dict[tuple[str, int], list[int] | None],
                                  allow_replication_factor_change: bool
                                  ) -> dict[tuple[str, int], tuple[int, str | None]]:
        # a checked list here is this broker alone: already so; nothing is ever in progress
        return {tp: (0, None) if replicas is not None else (85, None)  # NO_REASSIGNMENT_IN_PROGRESS
                for tp, replicas in changes.items()}
