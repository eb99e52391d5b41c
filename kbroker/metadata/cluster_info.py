"""What the handlers are told about the cluster: its brokers, its controller, and each partition's
leader, leader epoch, replicas, in-sync and offline replicas (Metadata, DescribeCluster,
DescribeTopicPartitions, FindCoordinator, the checks of replica assignments).

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


class ClusterInfo(Protocol):
    def brokers(self) -> list[BrokerInfo]: ...
    def controller_id(self) -> int: ...
    def partition(self, topic: Topic, index: int) -> PartitionInfo | None: ...


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
