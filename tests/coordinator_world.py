"""The services a coordinator is built from, real and without sockets, for its scenario tests: a
disk log in a temporary directory, an in-memory catalogue, the partition layer and topic
administration over them. `reopen()` is a broker restart as the coordinators see it: the same data
directory and catalogue, new logs and new coordinators, which then load what the old ones wrote."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import trio

from kbroker.config.broker import BrokerConfig
from kbroker.config.live import LiveConfig
from kbroker.groups import OFFSETS_TOPIC, GroupConfig, GroupCoordinator
from kbroker.log import LogManager
from kbroker.metadata import MemoryMetadataStore
from kbroker.partitions import AppendNotifier, PartitionService
from kbroker.topics import TopicManager
from kbroker.txn import ProducerIdManager, TransactionConfig, TransactionCoordinator
from kbroker.txn.markers import LocalMarkers

DEFAULTS = {
    "node.id": "1",
    "process.roles": "broker",
    "listeners": "PLAINTEXT://127.0.0.1:0",
    # few internal partitions: creating them is quicker, and keys still spread over several
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.num.partitions": "3",
}


class CoordinatorWorld:
    def __init__(self, data_dir: Path, marker_sender=LocalMarkers, **overrides):
        self.data_dir = Path(data_dir)
        self.marker_sender = marker_sender  # how the transaction coordinator's markers are written
        settings = {**DEFAULTS, "log.dirs": str(self.data_dir / "logs"), **{k: str(v) for k, v in overrides.items()}}
        self.config = BrokerConfig(settings)
        self.live_config = LiveConfig(self.config)
        self.metadata = MemoryMetadataStore()
        self.producer_ids = ProducerIdManager(self.data_dir)
        self.appends = AppendNotifier()
        self._open()

    def _open(self) -> None:
        self.logs = LogManager.open(str(self.data_dir / "logs"))
        self.partitions = PartitionService(self.logs, self.live_config, self.metadata)
        self.topics = TopicManager(self.metadata, self.partitions, self.live_config)
        self.groups = GroupCoordinator(
            GroupConfig.from_broker_config(self.config), catalogue=self.metadata,
            ensure_topic=self.topics.ensure_topic, partitions=self.partitions,
            topic_deletion_listeners=self.topics.deletion_listeners)
        self.txns = TransactionCoordinator(
            TransactionConfig.from_broker_config(self.config), catalogue=self.metadata,
            ensure_topic=self.topics.ensure_topic, partitions=self.partitions, producer_ids=self.producer_ids,
            appends=self.appends, marker_listeners={OFFSETS_TOPIC: self.groups.complete_transaction},
            marker_sender=self.marker_sender)

    def reopen(self) -> None:
        """Close the logs and build everything above the catalogue again from the same directory."""
        self.logs.close()
        self._open()

    def partition_log(self, topic: str, partition: int):
        return self.partitions.partition_log(self.metadata.get(topic), partition)

    @asynccontextmanager
    async def running(self):
        """Both coordinators loaded and serving their timers, as Broker.serve() runs them."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.groups.run)
            await nursery.start(self.txns.run)
            yield self
            nursery.cancel_scope.cancel()

    def close(self) -> None:
        self.logs.close()
