"""ClusterMembership: a broker's life in a cluster, one coordination session at a time.

For each session (``connect`` opens one: ZooKeeper through kazoo, or a session on the in-process
tree):
1. the cluster id is agreed (the first broker's proposal wins) and the broker registers itself,
   ephemerally, with its advertised endpoints and rack (BrokerIdTaken while an earlier session of
   the same id is still alive: retried until ZooKeeper expires it);
2. the ReplicaManager follows the cluster's state and makes this broker's replicas lead or follow;
3. the broker campaigns for controller and controls while elected.

When the session is lost (expired after a pause longer than ``zookeeper.session.timeout.ms``, a
network partition, a closed tree) everything of it stops at once: every partition stops leading
(nothing more is acknowledged on the authority of a session the cluster has given up), the
session is closed, and the broker joins again with a new one, re-reading the state -- by then
another broker leads what this one led, and this one follows and truncates as needed.

Controlled shutdown (``shut_down_gracefully``): the broker stops fetching, announces it (an ephemeral
``/admin/controlled_shutdown/<id>``), the controller moves its leaderships away, and it returns
once this broker leads nothing that another in-sync replica could lead, or after the deadline.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

import trio

from ..coordination.cluster import BrokerIdTaken, BrokerRegistration, ClusterCoordination
from ..coordination.controller import SHUTDOWN_PATH, Controller
from ..coordination.store import CoordinationError, NodeExists, Store
from ..topics import TopicManager
from .cluster_info import ClusterViewInfo
from .manager import ReplicaManager
from .topics import ClusterTopics

log = logging.getLogger("kbroker.replication")

RETRY_SECONDS = 1.0


class ClusterMembership:
    def __init__(self, *, node, connect: Callable[[], Awaitable[Store]], partitions, topics: TopicManager,
                 config, fetcher_config, endpoints: Callable[[], list[tuple[str, str, int]]], producer_ids=None,
                 features=None):
        self.node = node  # NodeInfo: id, rack; its cluster id is the cluster's once agreed
        self._connect = connect
        self._partitions = partitions
        self._topics = topics
        self._config = config  # () -> live broker config
        self._fetcher_config = fetcher_config
        self._endpoints = endpoints  # (listener, host, port) advertised
        self._producer_ids = producer_ids  # takes its id blocks from the cluster (kbroker.txn.producer_ids)
        self._features = features  # follows and sets the cluster's feature levels (kbroker.features)
        self.manager: ReplicaManager | None = None
        self.controller: Controller | None = None
        self.info = _Delegating()
        self.leadership_listeners: list = []  # (topic, partition, leads here), for every session's manager
        self.joined = trio.Event()  # set once the first session is registered and its view loaded
        self._shutting_down = False

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            try:
                store = await self._connect()
            except CoordinationError as exc:
                log.warning("broker %d cannot reach the coordination store: %s", self.node.node_id, exc)
                await trio.sleep(RETRY_SECONDS)
                continue
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self._session, store)
                    if not started:
                        started = True
                        task_status.started()
                    await store.lost.wait()
                    log.warning("broker %d lost its coordination session; joining again", self.node.node_id)
                    nursery.cancel_scope.cancel()
            except* (CoordinationError, OSError) as failed:  # its tasks' calls on a session that ended
                log.warning("broker %d: cluster session failed (%r); joining again", self.node.node_id,
                            failed.exceptions[0])
            finally:
                if self.manager is not None:
                    self.manager.stop_leading()
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(5):
                        await store.close()
            await trio.sleep(RETRY_SECONDS)

    async def _session(self, store: Store, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        coordination = ClusterCoordination(store, self.node.node_id)
        await coordination.ensure_layout()
        cluster_id = await coordination.cluster_id(self.node.cluster_id)
        if cluster_id != self.node.cluster_id:
            log.info("broker %d joins cluster %s", self.node.node_id, cluster_id)
            self.node.cluster_id = cluster_id
        registration = BrokerRegistration(self.node.node_id, tuple(self._endpoints()), self.node.rack)
        while True:
            try:
                await coordination.register(registration)
                break
            except BrokerIdTaken:
                log.warning("broker id %d is still registered by an earlier session; waiting for it to expire",
                            self.node.node_id)
                await trio.sleep(RETRY_SECONDS)
        config = self._config()
        manager = ReplicaManager(self.node.node_id, coordination, self._partitions, self._topics,
                                 self._fetcher_config, config.get("replica.lag.time.max.ms"))
        manager.leadership_listeners.extend(self.leadership_listeners)
        rebalance = (config.get("leader.imbalance.check.interval.seconds")
                     if config.get("auto.leader.rebalance.enable") else None)
        controller = Controller(coordination, manager.view, self._unclean_election, rebalance)
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            self.manager, self.controller = manager, controller
            self.info.target = ClusterViewInfo(manager.view)
            self._topics.directory = ClusterTopics(coordination, manager.view, self._config, nursery.start_soon)
            if self._producer_ids is not None:
                self._producer_ids.use_cluster_blocks(coordination.allocate_producer_ids, nursery.start_soon)
            if self._features is not None:
                self._features.use_cluster(coordination.watch_features, coordination.update_features,
                                           nursery.start_soon)
            if self._shutting_down:
                await self._announce_shutdown(store)
            nursery.start_soon(controller.run)
            self.joined.set()
            log.info("broker %d joined cluster %s (%d live broker(s))", self.node.node_id, cluster_id,
                     len(manager.view.brokers))
            task_status.started()

    def _unclean_election(self, topic: str) -> bool:
        catalogued = self._topics.metadata.get(topic)
        configs = catalogued.configs if catalogued is not None else {}
        value = configs.get("unclean.leader.election.enable")
        if value is None:
            return bool(self._config().get("unclean.leader.election.enable"))
        return str(value).lower() == "true"

    # ------------------------------------------------------------------------------ controlled shutdown

    async def _announce_shutdown(self, store: Store) -> None:
        try:
            await store.create(f"{SHUTDOWN_PATH}/{self.node.node_id}", ephemeral=True, make_parents=True)
        except NodeExists:
            pass

    async def shut_down_gracefully(self, timeout: float) -> None:
        """Move leadership away before stopping (Kafka's controlled shutdown)."""
        self._shutting_down = True
        manager = self.manager
        if manager is None:
            return
        started = trio.current_time()
        manager.stop_following()  # before the announcement: no fetch of ours can bring us back into an ISR
        with trio.move_on_after(timeout):
            try:
                await self._announce_shutdown(manager.coordination.store)
            except CoordinationError:
                return
            while any(self._could_move(p) for p in self._partitions.hosted()):
                await manager.view.wait_changed()
        led = [f"{p.topic}-{p.index}" for p in self._partitions.hosted() if p.is_leader]
        log.info("broker %d: controlled shutdown in %.0f ms%s", self.node.node_id,
                 (trio.current_time() - started) * 1000, f"; still leading {led}" if led else "")

    def _could_move(self, partition) -> bool:
        """Led here while another live in-sync replica could lead it."""
        if not partition.is_leader:
            return False
        live = self.manager.view.brokers
        return any(r != self.node.node_id and r in live for r in partition.isr)


class _Delegating:
    """The handlers' ClusterInfo: the current session's view (none before the first join)."""

    def __init__(self) -> None:
        self.target = None

    def brokers(self):
        return self.target.brokers() if self.target is not None else []

    def controller_id(self) -> int:
        return self.target.controller_id() if self.target is not None else -1

    def partition(self, topic, index):
        return self.target.partition(topic, index) if self.target is not None else None

    async def elect_leaders(self, election_type, partitions):
        if self.target is None:
            return {tp: (15, "The cluster is not reachable yet") for tp in partitions}  # COORDINATOR_NOT_AVAILABLE
        return await self.target.elect_leaders(election_type, partitions)
