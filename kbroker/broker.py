"""The broker: the composition root. It builds each component from the config, hands each one the
small interfaces it uses, and serves the listeners.

Broker.serve() binds every PLAINTEXT listener, reports the broker as started (with the real ports
when port 0 was asked for), and accepts connections until cancelled. A trio nursery owns every
connection task; cancelling serve() closes them all. The components: the live config
(kbroker.config.live), the catalogue (kbroker.metadata), the logs (kbroker.log) and the partition
layer over them (kbroker.partitions), topic administration (kbroker.topics), the group and
transaction coordinators (kbroker.groups, kbroker.txn), and the handlers' Services
(kbroker.handlers.context) that the server (kbroker.server) puts in every request's context.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import Awaitable, Callable

import trio

from .config.listeners import Endpoint
from .config.live import LiveConfig
from .config.persisted import with_persisted_dynamic_configs
from .coordination import Store
from .features import FeatureStore
from .groups import OFFSETS_TOPIC, GroupConfig, GroupCoordinator
from .handlers import Registry, default_registry
from .handlers.context import NodeInfo, Services
from .log import LogManager
from .log.cleaner import CleanerConfig, CleaningAborted, run_cleaning, worker_process_started
from .metadata import FileMetadataStore
from .metadata.cluster_info import SingleBroker
from .metadata.node_identity import load_or_format
from .partitions import AppendNotifier, PartitionService, topic_log_config
from .replication import ClusterMembership, FetcherConfig
from .replication.peers import PeerRequests
from .replication.txn_markers import ClusterMarkerSender
from .replication.txn_verifier import ClusterVerifier
from .server.connection import Connection
from .server.listener import ConnectionQuotas, parse_overrides, serve_listener
from .server.socket_transport import SocketTransport
from .topics import TopicManager
from .txn import ProducerIdManager, TransactionConfig, TransactionCoordinator
from .txn.markers import LocalMarkers, MarkerWriter
from .txn.verification import LocalVerifier

log = logging.getLogger("kbroker")
OPEN_LOGS_PER_STEP = 20  # ~5 ms of the event loop at a time


def _zookeeper_sessions(config) -> Callable[[], Awaitable[Store]]:
    """Sessions on the ZooKeeper ensemble of ``zookeeper.connect`` (kazoo)."""
    from .coordination.zookeeper import ZooKeeperStore

    session_timeout = config.get("zookeeper.session.timeout.ms") / 1000
    connect_timeout = (config.get("zookeeper.connection.timeout.ms") or config.get("zookeeper.session.timeout.ms")) / 1000
    return partial(ZooKeeperStore.connect, config.get("zookeeper.connect"), timeout=connect_timeout,
                   session_timeout=session_timeout)


class Broker:
    def __init__(self, config, registry: Registry | None = None,
                 coordination: Callable[[], Awaitable[Store]] | None = None):
        """``coordination`` opens sessions on a cluster's coordination store (an in-process
        cluster's tree); with ``zookeeper.connect`` set they are ZooKeeper sessions; with neither the
        broker runs alone."""
        data_dir = Path(config.log_dirs[0])
        # dynamic broker configs (AlterConfigs on the BROKER resource) persisted in the data dir
        config = with_persisted_dynamic_configs(config, data_dir)
        self.live_config = LiveConfig(config)
        self.node = NodeInfo(config.node_id, load_or_format(data_dir, config.node_id), config.get("broker.rack"),
                             data_dir)
        self.bound_endpoints: list[tuple[str, int]] = []
        self.metadata = FileMetadataStore(data_dir)
        # opened as they are used, and by _open_logs in the background (kbroker.log.manager)
        logs = LogManager.open(str(data_dir), configs={t.name: topic_log_config(config, t)
                                                       for t in self.metadata.topics()}, lazily=True)
        self.appends = AppendNotifier()
        self.producer_ids = ProducerIdManager(data_dir)
        self.partitions = PartitionService(logs, self.live_config, self.metadata, local_id=config.node_id,
                                           notifier=self.appends)
        self.topics = TopicManager(self.metadata, self.partitions, self.live_config)
        self.features = FeatureStore(data_dir)
        if coordination is None and config.get("zookeeper.connect"):
            coordination = _zookeeper_sessions(config)
        self.membership: ClusterMembership | None = None
        if coordination is not None:
            self.partitions.use_cluster()  # only the replicas the cluster assigns here
            self.membership = ClusterMembership(
                node=self.node, connect=coordination, partitions=self.partitions, topics=self.topics,
                config=lambda: self.live_config.current, fetcher_config=FetcherConfig.from_broker_config(config),
                endpoints=self._registered_endpoints, producer_ids=self.producer_ids, features=self.features)
        self.group_coordinator = GroupCoordinator(
            GroupConfig.from_broker_config(config), catalogue=self.metadata, ensure_topic=self.topics.ensure_topic,
            partitions=self.partitions, topic_deletion_listeners=self.topics.deletion_listeners)
        # in a cluster, requests to the other brokers: transaction markers, KIP-890 checks
        self.peers = PeerRequests(config.node_id, self.membership.info) if self.membership else None
        self.marker_sender: ClusterMarkerSender | None = None
        self.txn_coordinator = TransactionCoordinator(
            TransactionConfig.from_broker_config(config), catalogue=self.metadata,
            ensure_topic=self.topics.ensure_topic, partitions=self.partitions, producer_ids=self.producer_ids,
            appends=self.appends,
            # a marker on __consumer_offsets commits or drops the transaction's pending offsets there
            marker_listeners={OFFSETS_TOPIC: self.group_coordinator.complete_transaction},
            marker_sender=self._cluster_marker_sender if self.membership else LocalMarkers)
        txn_verifier = LocalVerifier(self.txn_coordinator) if self.peers is None else ClusterVerifier(
            self.txn_coordinator, local_id=config.node_id, cluster=self.membership.info, peers=self.peers,
            catalogue=self.metadata)
        if self.membership is not None:
            # coordinators live on the leaders of their internal partitions and move with them
            for coordinator in (self.group_coordinator, self.txn_coordinator):
                coordinator.runtime.follow_leadership(coordinator.load_partition, coordinator.unload_partition)
            self.membership.leadership_listeners.append(self._internal_partition_leadership)
        self.services = Services(node=self.node, live_config=self.live_config, metadata=self.metadata,
                                 topics=self.topics, partitions=self.partitions, appends=self.appends,
                                 groups=self.group_coordinator, txns=self.txn_coordinator,
                                 producer_ids=self.producer_ids, registry=registry or default_registry(),
                                 features=self.features,
                                 cluster=self.membership.info if self.membership else SingleBroker(self.node),
                                 txn_verifier=txn_verifier)

    def _cluster_marker_sender(self, writer: MarkerWriter) -> ClusterMarkerSender:
        self.marker_sender = ClusterMarkerSender(writer, local_id=self.node.node_id, cluster=self.membership.info,
                                                 peers=self.peers, catalogue=self.metadata)
        return self.marker_sender

    @property
    def config(self):
        return self.live_config.current

    @property
    def node_id(self) -> int:
        return self.node.node_id

    @property
    def cluster_id(self) -> str:
        return self.node.cluster_id

    @property
    def data_dir(self) -> Path:
        return self.node.data_dir

    @property
    def advertised_endpoints(self) -> list[tuple[str, int]]:
        return self.node.advertised_endpoints

    @property
    def logs(self) -> LogManager:
        return self.partitions.logs

    @property
    def registry(self) -> Registry:
        return self.services.registry

    # -- serving -----------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        host, port = self.node.advertised_endpoints[0]
        return f"{host}:{port}"

    async def _open_listeners(self) -> list[tuple[Endpoint, list[trio.SocketListener]]]:
        served: list[tuple[Endpoint, list[trio.SocketListener]]] = []
        for listener in self.config.listeners:
            host = listener.host  # None: every interface
            opened = await trio.open_tcp_listeners(listener.port, host=host)
            if listener.port == 0:
                opened = opened[:1]  # each address family would get its own random port
            served.append((listener, opened))
            port = opened[0].socket.getsockname()[1]
            self.bound_endpoints.append((listener.host, port))
        self.node.advertised_endpoints[:] = self._advertised()
        return served

    def _advertised(self) -> list[tuple[str, int]]:
        advertised = self.config.advertised_listeners or self.config.listeners
        endpoints = []
        for i, listener in enumerate(advertised):
            port = listener.port or self.bound_endpoints[min(i, len(self.bound_endpoints) - 1)][1]
            endpoints.append((listener.host or socket.getfqdn(), port))
        return endpoints

    def _internal_partition_leadership(self, topic: str, index: int, leader: bool) -> None:
        for coordinator in (self.group_coordinator, self.txn_coordinator):
            if coordinator.runtime.name == topic:
                coordinator.runtime.partition_led(index, leader)

    def _registered_endpoints(self) -> list[tuple[str, str, int]]:
        """(listener, host, port) of each advertised listener, as the cluster registration records."""
        advertised = self.config.advertised_listeners or self.config.listeners
        return [(listener.listener, host, port)
                for listener, (host, port) in zip(advertised, self.node.advertised_endpoints)]

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        served = await self._open_listeners()
        log.info("kbroker node %d of cluster %s serving on %s (data in %s)", self.node_id, self.cluster_id,
                 ", ".join(f"{h}:{p}" for h, p in self.advertised_endpoints), self.data_dir)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._maintain_logs)
                nursery.start_soon(self._clean_logs)
                nursery.start_soon(self._open_logs)
                if self.marker_sender is not None:  # markers handed over while joining wait in it
                    await nursery.start(self.marker_sender.run)
                if self.membership is not None:  # joined, and the cluster's state applied, first
                    await nursery.start(self.membership.run)
                await nursery.start(self.group_coordinator.run)  # loads groups and offsets first
                # then transactions: one left half-ended gets its markers, which may commit pending offsets
                await nursery.start(self.txn_coordinator.run)
                task_status.started(self)
                quotas = ConnectionQuotas(self._connection_limits)
                for endpoint, listeners in served:
                    for listener in listeners:
                        nursery.start_soon(serve_listener, listener, partial(self._serve_connection, endpoint),
                                           quotas, nursery)
        finally:
            if self.peers is not None:
                await self.peers.aclose()
                self.partitions.write_checkpoints()  # the replicas' high watermarks too
            self.logs.close()

    async def shut_down_gracefully(self, timeout: float = 30.0) -> None:
        """Before stopping (SIGTERM): in a cluster, move leadership away first (controlled shutdown)."""
        if self.membership is not None and self.config.get("controlled.shutdown.enable"):
            await self.membership.shut_down_gracefully(timeout)

    async def _open_logs(self) -> None:
        """Open (recover) the logs found at start that no request has opened yet, a few at a time, so
        the broker serves from the first moment and no request waits behind more than a few."""
        started, count = trio.current_time(), self.logs.unopened
        try:
            while self.logs.open_some(OPEN_LOGS_PER_STEP):
                await trio.sleep(0)
        except OSError as exc:  # out of file descriptors, a failing disk: the rest open at first use
            log.error("stopped opening logs in the background, %d not open (they open at first use): %s",
                      self.logs.unopened, exc)
            return
        if count:
            log.info("opened the %d remaining log(s) in the background in %.0f ms", count,
                     (trio.current_time() - started) * 1000)

    async def _maintain_logs(self) -> None:
        """Kafka's log manager schedules: flush by flush.ms, retention, recovery-point checkpoints."""
        config = self.config
        intervals = {
            "flush": config.log_flush_scheduler_interval_ms,
            "retention": config.log_retention_check_interval_ms,
            "checkpoint": config.get("log.flush.offset.checkpoint.interval.ms"),
        }
        due = {name: trio.current_time() + ms / 1000 for name, ms in intervals.items()}
        while True:
            name = min(due, key=due.get)
            await trio.sleep_until(due[name])
            due[name] += intervals[name] / 1000
            if name == "flush":
                for partition_log in self.logs.flush_due_logs():
                    await trio.to_thread.run_sync(partition_log.flush)
            elif name == "retention":
                self.logs.enforce_retention(reap=False)  # unlinks; closing the files frees blocks:
                await trio.to_thread.run_sync(self.logs.close_deleted_segments)  # off the event loop
            else:
                self.partitions.write_checkpoints()

    async def _clean_logs(self) -> None:
        """The log cleaner (kbroker.log.cleaner): log.cleaner.threads tasks, each cleaning the
        filthiest compacted log at a time. The reading and writing run in a pool of as many worker
        processes (in threads they held the GIL the event loop needs at each system call: requests
        waited behind them); the commit renames and fsyncs in worker threads; the segment swaps
        here, on the event loop, between the appends and reads of the logs they change."""
        cleaner = self.logs.cleaner
        cleaner.configure(CleanerConfig.from_broker_config(self.config))
        if not cleaner.config.enable or cleaner.config.threads < 1:
            return
        pools = [self._cleaner_pool(cleaner.config.threads)]  # replaced if a worker process dies
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(cleaner.config.threads):
                    nursery.start_soon(self._cleaner_task, cleaner, pools)
        finally:
            pools[0].shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _cleaner_pool(workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=worker_process_started)

    async def _cleaner_task(self, cleaner, pools: list[ProcessPoolExecutor]) -> None:
        while True:
            job = cleaner.grab()
            if job is None:
                await trio.sleep(cleaner.config.backoff_ms / 1000)
                continue
            pool = pools[0]
            try:
                future = pool.submit(run_cleaning, job.work)
                result = await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)
                for old, cleaned in job.accept(result):
                    await trio.to_thread.run_sync(job.commit, cleaned, abandon_on_cancel=True)
                    try:
                        job.swap(old, cleaned)
                    finally:
                        await trio.to_thread.run_sync(job.make_durable, abandon_on_cancel=True)
                job.finish()
                await trio.to_thread.run_sync(cleaner.write_checkpoint, abandon_on_cancel=True)
            except trio.Cancelled:
                job.abort()
                raise
            except CleaningAborted as exc:
                log.info("cleaning of %s-%d aborted: %s", *job.tp, exc)
                job.abort()
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory): a new pool, a later try
                log.error("the cleaner's worker process died cleaning %s-%d: %s", *job.tp, exc)
                job.abort(worker_died=True)
                if pools[0] is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    pools[0] = self._cleaner_pool(cleaner.config.threads)
                await trio.sleep(cleaner.config.backoff_ms / 1000)
            except Exception:  # a bug or a failing disk: this log is not cleaned again until restart
                log.exception("cleaning of %s-%d failed; the log is marked uncleanable", *job.tp)
                job.abort(failed=True)

    def _connection_limits(self) -> tuple[int, int, dict[str, int]]:
        config = self.config
        return (config.get("max.connections"), config.get("max.connections.per.ip"),
                parse_overrides(config.get("max.connections.per.ip.overrides") or ""))

    async def _serve_connection(self, endpoint: Endpoint, stream: trio.SocketStream) -> None:
        config = self.config  # the live config as this connection opens
        transport = SocketTransport(stream, idle_seconds=config.connections_max_idle_ms / 1000)
        await Connection(self.services, transport, listener_name=endpoint.listener,
                         max_frame_bytes=config.socket_request_max_bytes).serve()
