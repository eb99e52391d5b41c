"""The handlers' ClusterInfo (kbroker.metadata.cluster_info) for a broker in a cluster: the live
brokers, the controller and each partition's leader, epoch, replicas, ISR and offline replicas,
as this broker's ClusterView has them."""

from __future__ import annotations

from ..coordination.view import ClusterView
from ..metadata import Topic
from ..metadata.cluster_info import BrokerInfo, PartitionInfo


class ClusterViewInfo:
    def __init__(self, view: ClusterView, listener_name: str | None = None):
        self._view = view
        self._listener_name = listener_name

    def brokers(self) -> list[BrokerInfo]:
        out = []
        for node_id, registration in sorted(self._view.brokers.items()):
            for name, host, port in registration.endpoints:
                if self._listener_name is None or name == self._listener_name:
                    out.append(BrokerInfo(node_id, host, port, registration.rack))
                    break
        return out

    def controller_id(self) -> int:
        controller = self._view.controller_id
        return -1 if controller is None else controller

    def partition(self, topic: Topic, index: int) -> PartitionInfo | None:
        state = self._view.state(topic.name, index)
        assignment = self._view.topics.get(topic.name)
        if state is None or assignment is None or index not in assignment.replicas:
            return None
        replicas = assignment.replicas[index]
        live = self._view.brokers
        return PartitionInfo(state.leader if state.leader in live else -1, state.leader_epoch, replicas, state.isr,
                             tuple(r for r in replicas if r not in live))
