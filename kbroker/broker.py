"""The broker: configuration, identity, stores and handlers wired together, and its listeners served.

Broker.serve() binds every PLAINTEXT listener, reports the broker as started (with the real ports
when port 0 was asked for), and accepts connections until cancelled. A trio nursery owns every
connection task; cancelling serve() closes them all.

Creating a topic (CreateTopics, auto-creation by Metadata, the coordinators' internal topics) or
growing one (CreatePartitions) never blocks the event loop on disk:
1. the change is recorded in the catalogue, on disk at once but not visible (pending; ~1 ms of fsync
   on the loop), and the name is marked as changing;
2. the new partitions' logs are created in a worker thread, in one durability batch: when it returns
   every file and directory is durable (kbroker.log.durability), while the loop serves everyone else;
3. back on the loop the logs are registered and the change published, atomically for every other task.
Other requests therefore see a topic only once its partitions exist and are durable, never half made:
a Metadata or Produce meanwhile finds no such topic (UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers
before its controller commits a topic), a second CreateTopics of the name gets TOPIC_ALREADY_EXISTS,
and auto-creation of that name (Metadata, FindCoordinator) waits for the creation in flight instead of
creating twice (ensure_topic). Kept visible-at-once instead, a request could open a partition on the
loop while the worker thread creates the same directory. Steps 2-3 are shielded from cancellation: a
request cancelled mid-creation (client gone, broker stopping) still completes it, so nothing is left
pending in memory; a crash mid-creation leaves a recorded topic whose partitions are opened or created
on use, exactly as before (a failed step 2 is published too, and left to the same path).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Callable

import trio

from .config import effective_topic_config
from .config.persisted import with_persisted_dynamic_configs
from .groups import GroupCoordinator
from .handlers import Registry, default_registry
from .log import LogConfig, LogManager, PartitionLog
from .metadata import FileMetadataStore, Topic
from .metadata.node_identity import load_or_format
from .server.connection import Connection
from .txn import ProducerIdManager, TransactionCoordinator

log = logging.getLogger("kbroker")


class Broker:
    def __init__(self, config, registry: Registry | None = None):
        self.config = config
        self.node_id: int = config.node_id
        self.rack: str | None = config.get("broker.rack")
        self.data_dir = Path(config.log_dirs[0])
        # dynamic broker configs (AlterConfigs on the BROKER resource) persisted in the data dir
        self.config = config = with_persisted_dynamic_configs(config, self.data_dir)
        # called with the Topic after a topic is deleted (e.g. the group coordinator drops its offsets)
        self.topic_deletion_listeners: list[Callable[[Topic], None]] = []
        self.cluster_id = load_or_format(self.data_dir, self.node_id)
        self.metadata = FileMetadataStore(self.data_dir)
        self.registry = registry or default_registry()
        self.socket_request_max_bytes: int = config.socket_request_max_bytes
        self.connections_max_idle_ms: int = config.connections_max_idle_ms
        self.advertised_endpoints: list[tuple[str, int]] = []
        self.bound_endpoints: list[tuple[str, int]] = []
        self._log_configs: dict[str, LogConfig] = {}
        self._changing_topics: dict[str, trio.Event] = {}  # names being created or grown, set when done
        self.logs = LogManager.open(str(self.data_dir),
                                    configs={t.name: self.log_config(t) for t in self.metadata.topics()})
        self.appends = AppendNotifier()
        self.producer_ids = ProducerIdManager(self.data_dir)
        self.group_coordinator = GroupCoordinator(self)
        self.txn_coordinator = TransactionCoordinator(self)

    # -- topics ------------------------------------------------------------------------------
    @property
    def auto_create_topics(self) -> bool:
        return self.config.auto_create_topics_enable

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> Topic:
        """Record the topic and create its partitions' logs, as Kafka does at creation time; returns
        once all is durable and visible. KeyError if the name is taken, by a topic being created too."""
        started = trio.current_time()
        topic = self.metadata.create_topic(name, partitions, 1, configs, pending=True)
        await self._carry_out(topic, range(partitions))
        log.info("created topic %s with %d partitions in %.1f ms", name, partitions,
                 (trio.current_time() - started) * 1000)
        return topic

    async def ensure_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> Topic:
        """The topic, created first if it does not exist; a creation in flight is waited for, not repeated."""
        await self.topic_settled(name)
        topic = self.metadata.get(name)  # no checkpoint between the check and the creation
        return topic if topic is not None else await self.create_topic(name, partitions, configs)

    async def topic_settled(self, name: str) -> None:
        """Wait until no creation or partition increase of the topic is in flight."""
        while (changing := self._changing_topics.get(name)) is not None:
            await changing.wait()

    async def _carry_out(self, topic: Topic, partitions: range) -> None:
        """Create the partitions' logs in a worker thread, then register them and publish the topic's
        recorded change. Shielded: once recorded, a change is always completed (module docstring)."""
        changing = self._changing_topics[topic.name] = trio.Event()
        try:
            with trio.CancelScope(shield=True):
                missing = [p for p in partitions if self.logs.get(topic.name, p) is None]
                opened = await trio.to_thread.run_sync(self.logs.open_new, topic.name, missing, topic.topic_id,
                                                       self.log_config(topic), topic.leader_epoch)
            for partition_log in opened.values():  # the topic's configs may have changed meanwhile
                partition_log.config = self.log_config(topic)
            self.logs.add(opened)
        finally:
            self.metadata.publish(topic)
            del self._changing_topics[topic.name]
            changing.set()

    async def delete_topic(self, name: str) -> Topic | None:
        """Remove the topic from the catalogue and delete its partitions' logs (DeleteTopics), after
        any partition increase in flight (whose new logs would otherwise outlive the topic)."""
        await self.topic_settled(name)
        topic = self.metadata.delete_topic(name)
        if topic is None:
            return None
        for partition in range(topic.partitions):
            self.logs.delete_partition(name, partition)
        self._log_configs.pop(name, None)
        for listener in list(self.topic_deletion_listeners):
            listener(topic)
        log.info("deleted topic %s (%s)", name, topic.topic_id)
        return topic

    async def add_partitions(self, name: str, count: int) -> Topic:
        """Grow the topic to `count` partitions and create the new partitions' logs (CreatePartitions);
        returns once they are durable and visible. Callers wait for topic_settled(name) first."""
        assert name not in self._changing_topics, "one change of a topic at a time"
        topic = self.metadata.set_partitions(name, count, pending=True)
        await self._carry_out(topic, range(count))
        return topic

    def broker_configs_changed(self, config) -> None:
        """A new BrokerConfig after a dynamic change: every topic's effective log config may differ."""
        self.config = config
        for topic in self.metadata.topics():
            self.topic_configs_changed(topic)

    def log_config(self, topic: Topic) -> LogConfig:
        """The topic's effective log settings: its overrides over the broker's defaults."""
        config = self._log_configs.get(topic.name)
        if config is None:
            config = LogConfig.from_dict(effective_topic_config(self.config, topic.configs))
            self._log_configs[topic.name] = config
        return config

    def topic_configs_changed(self, topic: Topic) -> None:
        self._log_configs.pop(topic.name, None)
        self.logs.update_config(topic.name, self.log_config(topic))

    def partition_log(self, topic: Topic, partition: int) -> PartitionLog:
        partition_log = self.logs.get(topic.name, partition)
        if partition_log is None:
            partition_log = self.logs.get_or_create(topic.name, partition, topic.topic_id, self.log_config(topic))
            # becoming leader: the leader epoch starts at the log end, as in Kafka
            partition_log.assign_leader_epoch(topic.leader_epoch)
        return partition_log

    # -- serving -----------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        host, port = self.advertised_endpoints[0]
        return f"{host}:{port}"

    async def _open_listeners(self) -> list[trio.SocketListener]:
        listeners: list[trio.SocketListener] = []
        for listener in self.config.listeners:
            host = listener.host  # None: every interface
            opened = await trio.open_tcp_listeners(listener.port, host=host)
            if listener.port == 0:
                opened = opened[:1]  # each address family would get its own random port
            listeners.extend(opened)
            port = opened[0].socket.getsockname()[1]
            self.bound_endpoints.append((listener.host, port))
        self.advertised_endpoints = self._advertised()
        return listeners

    def _advertised(self) -> list[tuple[str, int]]:
        advertised = self.config.advertised_listeners or self.config.listeners
        endpoints = []
        for i, listener in enumerate(advertised):
            port = listener.port or self.bound_endpoints[min(i, len(self.bound_endpoints) - 1)][1]
            endpoints.append((listener.host or socket.getfqdn(), port))
        return endpoints

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await self._open_listeners()
        log.info("kbroker node %d of cluster %s serving on %s (data in %s)", self.node_id, self.cluster_id,
                 ", ".join(f"{h}:{p}" for h, p in self.advertised_endpoints), self.data_dir)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._maintain_logs)
                await nursery.start(self.group_coordinator.run)  # loads groups and offsets first
                # then transactions: one left half-ended gets its markers, which may commit pending offsets
                await nursery.start(self.txn_coordinator.run)
                task_status.started(self)
                await trio.serve_listeners(self._serve_connection, listeners, handler_nursery=nursery)
        finally:
            self.logs.close()

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
                self.logs.enforce_retention()
            else:
                self.logs.write_checkpoints()

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        await Connection(self, stream).serve()


class AppendNotifier:
    """Wakes long-polling fetches when any partition gets new data (an event, never a sleep loop)."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait_until(self, deadline: float) -> None:
        """Return on the next append or at the deadline, whichever comes first."""
        with trio.move_on_at(deadline):
            await self._event.wait()
