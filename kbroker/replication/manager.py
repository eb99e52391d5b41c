"""ReplicaManager: makes this broker's replicas do what the cluster's partition states say (Kafka's
ReplicaManager on a broker, fed by the cluster view instead of LeaderAndIsr requests).

It listens to the ClusterView (kbroker.coordination.view):
- a topic seen in the cluster is adopted into the local catalogue, with the cluster's topic id,
  partition count and configs (the handlers keep reading the catalogue); a topic gone from the
  cluster is deleted here too;
- a partition state naming this broker among the replicas: the replica is opened (its log created
  if new), then **leads** (state.leader is us: ``become_leader`` with the state's epoch and ISR; no
  fetcher) or **follows** (``become_follower``, and the fetcher of that leader takes it, which first
  truncates a divergent tail). A partition not assigned here any more is dropped.
- the ISR changes a leader proposes (a follower caught up, or lagging) are written to the store,
  conditional on the state version the proposal was made from, and adopted by the partition only
  once written; a refused write (the controller moved leadership, or changed the ISR) is dropped:
  the state's watch brings what happened instead. A broker that is not alive or is in controlled
  shutdown is never taken into an ISR (KIP-841: its last fetches must not bring it back, or the high
  watermark would wait for it until ``replica.lag.time.max.ms``).
- in controlled shutdown this broker stops following at once (``stop_following``; Kafka's
  controller sends StopReplica to a shutting-down broker's followers).
- every ``replica.lag.time.max.ms / 2`` the led partitions look for lagging followers;
- ``leadership_listeners`` hear when a replica here starts or stops leading (the coordinators load
  and unload their internal partitions on that).

Everything runs on the trio thread; the writes and the fetchers are tasks of ``run``'s nursery.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

import trio

from ..coordination.cluster import BrokerRegistration, ClusterCoordination, PartitionState, TopicAssignment
from ..coordination.store import CoordinationError
from ..coordination.view import ClusterView
from ..partitions import Partition, PartitionService
from ..topics import TopicManager
from .fetcher import FetcherConfig, LeaderFetcher

log = logging.getLogger("kbroker.replication")


class ReplicaManager:
    def __init__(self, local_id: int, coordination: ClusterCoordination, partitions: PartitionService,
                 topics: TopicManager, fetcher_config: FetcherConfig, lag_time_max_ms: int,
                 listener_name: str | None = None):
        self.local_id = local_id
        self.coordination = coordination
        self.view = ClusterView(coordination, self)
        self.partitions = partitions
        self.topics = topics
        self.fetcher_config = fetcher_config
        self.lag_time_max_ms = lag_time_max_ms
        self.listener_name = listener_name  # the inter-broker listener; None: each broker's first
        self.fetchers: dict[int, LeaderFetcher] = {}
        self.following = True  # False once in controlled shutdown
        # called with (topic, partition, leads here) when a replica here starts or stops leading
        self.leadership_listeners: list[Callable[[str, int, bool], None]] = []
        self._nursery: trio.Nursery | None = None
        self._pending: list = []  # changes seen before run() has a nursery

    # ------------------------------------------------------------------------------ running

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.view.run)
            self._forget_topics_gone()
            nursery.start_soon(self._shrink_lagging_isrs)
            task_status.started()

    def stop_leading(self) -> None:
        """The session is lost: nothing may be acknowledged on its authority any more."""
        for partition in self.partitions.hosted():
            if partition.is_leader:
                partition.become_follower(-1, partition.leader_epoch, partition.replicas, partition.isr)
                self._leadership(partition.topic, partition.index, False)

    def stop_following(self) -> None:
        """Controlled shutdown: no replica here fetches any more."""
        self.following = False
        for fetcher in self.fetchers.values():
            fetcher.stop()

    def address_of(self, node_id: int) -> tuple[str, int] | None:
        registration = self.view.brokers.get(node_id)
        if registration is None:
            return None
        for name, host, port in registration.endpoints:
            if self.listener_name is None or name == self.listener_name:
                return host, port
        return None

    # ------------------------------------------------------------------------------ ClusterListener

    def brokers_changed(self, brokers: dict[int, BrokerRegistration]) -> None:
        pass  # fetchers look addresses up when they connect

    def topic_changed(self, assignment: TopicAssignment) -> None:
        self.topics.adopt(assignment.name, assignment.topic_id, len(assignment.replicas),
                          len(next(iter(assignment.replicas.values()), ())), dict(assignment.configs))
        for index, replicas in assignment.replicas.items():
            if self.local_id not in replicas:
                self._drop(assignment.name, index)

    def topic_deleted(self, name: str) -> None:
        for fetcher in self.fetchers.values():
            for key in [k for k in fetcher.followed if k[0] == name]:
                fetcher.unfollow(*key)
        self.topics.forget(name)

    def partition_changed(self, topic: str, index: int, state: PartitionState) -> None:
        assignment = self.view.topics.get(topic)
        catalogued = self.topics.metadata.get(topic)
        if assignment is None or catalogued is None or index not in assignment.replicas:
            return
        replicas = assignment.replicas[index]
        if self.local_id not in replicas:
            self._drop(topic, index)
            return
        partition = self.partitions.replica(catalogued, index)
        partition.isr_changes = self
        if state.leader == self.local_id:
            self._unfollow(partition)
            partition.become_leader(state.leader_epoch, replicas, state.isr)
            self._leadership(topic, index, True)
        else:
            was_leader = partition.is_leader
            partition.become_follower(state.leader, state.leader_epoch, replicas, state.isr)
            self._unfollow(partition, keep=state.leader)  # an ISR change keeps the fetch going as it is
            if state.leader >= 0 and self.following:
                self._fetcher(state.leader).follow(partition)
            if was_leader:
                self._leadership(topic, index, False)

    def _forget_topics_gone(self) -> None:
        """Topics the catalogue has from before that the cluster no longer has (deleted meanwhile)."""
        for topic in list(self.topics.metadata.topics()):
            if topic.name not in self.view.topics:
                log.info("topic %s was deleted from the cluster while this broker was away", topic.name)
                self.topics.forget(topic.name)

    def _leadership(self, topic: str, index: int, leader: bool) -> None:
        for listener in self.leadership_listeners:
            listener(topic, index, leader)

    def _drop(self, topic: str, index: int) -> None:
        self._leadership(topic, index, False)
        for fetcher in self.fetchers.values():
            fetcher.unfollow(topic, index)
        self.partitions.drop_replica(topic, index)

    def _unfollow(self, partition: Partition, keep: int | None = None) -> None:
        """Stop fetching the partition from every leader but ``keep``."""
        for leader, fetcher in self.fetchers.items():
            if leader != keep:
                fetcher.unfollow(partition.topic, partition.index)

    def _fetcher(self, leader: int) -> LeaderFetcher:
        fetcher = self.fetchers.get(leader)
        if fetcher is None:
            fetcher = self.fetchers[leader] = LeaderFetcher(self.local_id, leader, self.address_of,
                                                            self.fetcher_config)
            self._nursery.start_soon(fetcher.run)
        return fetcher

    # ------------------------------------------------------------------------------ the ISR

    def propose(self, partition: Partition, isr: tuple[int, ...]) -> None:
        ineligible = [r for r in isr if r not in partition.isr and not self.view.eligible_for_isr(r)]
        if ineligible:
            log.debug("partition %s-%d: broker(s) %s not taken into the ISR: gone or shutting down",
                      partition.topic, partition.index, ineligible)
            partition.isr_recorded(None)
            return
        self._nursery.start_soon(self._write_isr, partition, isr, self.view.state(partition.topic, partition.index))

    async def _write_isr(self, partition: Partition, isr: tuple[int, ...], state: PartitionState | None) -> None:
        """Write the ISR proposed from ``state`` (the state when proposed: a proposal made before a
        change the controller wrote meanwhile is refused by the version check)."""
        if state is None or state.leader != self.local_id or state.leader_epoch != partition.leader_epoch:
            partition.isr_recorded(None)
            return
        try:
            recorded = await self.coordination.update_isr(partition.topic, partition.index, replace(state, isr=isr))
        except CoordinationError as exc:  # BadVersion: the state moved under us; a lost session
            log.info("partition %s-%d: ISR %s not recorded (%s)", partition.topic, partition.index, list(isr),
                     type(exc).__name__)
            partition.isr_recorded(None)
            return
        log.info("partition %s-%d: ISR %s -> %s", partition.topic, partition.index, list(state.isr), list(isr))
        key = (partition.topic, partition.index)
        seen = self.view.states.get(key)
        if seen is not None and seen.version > recorded.version:
            partition.isr_recorded(None)  # a later state already came through the watch: it holds
            return
        self.view.states[key] = recorded
        partition.isr_recorded(isr)

    async def _shrink_lagging_isrs(self) -> None:
        while True:
            await trio.sleep(self.lag_time_max_ms / 2000)
            for partition in self.partitions.hosted():
                lagging = partition.shrink_lagging(self.lag_time_max_ms)
                if lagging:
                    log.info("partition %s-%d: followers %s lag more than %d ms", partition.topic,
                             partition.index, list(lagging), self.lag_time_max_ms)
