"""The handlers' ClusterInfo (kbroker.metadata.cluster_info) for a broker in a cluster: the live
brokers, the controller and each partition's leader, epoch, replicas, ISR and offline replicas,
as this broker's ClusterView has them; and ElectLeaders, asked of the controller through the
coordination store (kbroker.coordination.controller) and answered once the new leaders are seen;
and partition reassignments (kbroker.replication.reassignments)."""

from __future__ import annotations

import json
from typing import Callable

import trio

from ..coordination.controller import ELECTION_PATH, PREFERRED
from ..coordination.store import NodeExists
from ..coordination.view import ClusterView
from ..metadata import Topic
from ..metadata.cluster_info import ELECTION_NOT_NEEDED_MESSAGE, BrokerInfo, OngoingReassignment, PartitionInfo
from ..protocol.errors import ErrorCode
from .reassignments import ClusterReassignments

ELECTION_TIMEOUT_S = 30.0


class ClusterViewInfo:
    def __init__(self, view: ClusterView, listener_name: str | None = None,
                 unclean_election: Callable[[str], bool] = lambda _topic: False):
        self._view = view
        self._listener_name = listener_name
        self._reassignments = ClusterReassignments(view, unclean_election)

    def reassignments(self) -> dict[tuple[str, int], OngoingReassignment]:
        return self._reassignments.ongoing()

    async def alter_reassignments(self, changes: dict[tuple[str, int], list[int] | None],
                                  allow_replication_factor_change: bool
                                  ) -> dict[tuple[str, int], tuple[int, str | None]]:
        return await self._reassignments.alter(changes, allow_replication_factor_change)

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

    async def elect_leaders(self, election_type: int, partitions: list[tuple[str, int]]
                            ) -> dict[tuple[str, int], tuple[int, str | None]]:
        results: dict[tuple[str, int], tuple[int, str | None]] = {}
        asked: dict[tuple[str, int], int] = {}  # -> the leader epoch to see passed
        live = self._view.brokers
        for topic, index in partitions:
            state, assignment = self._view.state(topic, index), self._view.topics.get(topic)
            replicas = assignment.replicas.get(index) if assignment is not None else None
            if state is None or not replicas:
                results[(topic, index)] = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {topic}-{index}")
            elif election_type == PREFERRED:
                if state.leader == replicas[0]:
                    results[(topic, index)] = (ErrorCode.ELECTION_NOT_NEEDED, ELECTION_NOT_NEEDED_MESSAGE)
                elif replicas[0] not in live or replicas[0] not in state.isr:
                    results[(topic, index)] = (ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
                                               f"Failed to elect leader for partition {topic}-{index} under strategy "
                                               "PreferredReplicaPartitionLeaderElectionStrategy")
                else:
                    asked[(topic, index)] = state.leader_epoch
            elif state.leader in live or any(r in live for r in state.isr):
                results[(topic, index)] = (ErrorCode.ELECTION_NOT_NEEDED, ELECTION_NOT_NEEDED_MESSAGE)
            elif not any(r in live for r in replicas):
                results[(topic, index)] = (ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
                                           f"Failed to elect leader for partition {topic}-{index} under strategy "
                                           "OfflinePartitionLeaderElectionStrategy(true)")
            else:
                asked[(topic, index)] = state.leader_epoch
        if asked:
            await self._ask(election_type, asked)
            for tp, epoch in asked.items():
                state = self._view.state(*tp)
                results[tp] = ((ErrorCode.NONE, None) if state is not None and state.leader_epoch > epoch
                               else (ErrorCode.REQUEST_TIMED_OUT, "The election did not complete in time"))
        return results

    async def _ask(self, election_type: int, asked: dict[tuple[str, int], int]) -> None:
        """Write the request for the controller (one at a time, as Kafka's node allows), then wait
        until every partition's leader epoch moved past the one seen, or the timeout."""
        store = self._view.coordination.store
        data = json.dumps({"version": 1, "election_type": election_type,
                           "partitions": [{"topic": t, "partition": p} for t, p in sorted(asked)]}).encode()
        with trio.move_on_after(ELECTION_TIMEOUT_S):
            while True:
                try:
                    await store.create(ELECTION_PATH, data, make_parents=True)
                    break
                except NodeExists:  # another election in progress
                    await trio.sleep(0.05)
            while any((s := self._view.state(*tp)) is None or s.leader_epoch <= epoch for tp, epoch in asked.items()):
                await self._view.wait_changed()
