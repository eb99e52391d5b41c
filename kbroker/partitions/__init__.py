"""The partition layer: between the handlers and the log, per partition.

Handlers and coordinators reach a partition's log only through here. Today it finds (or opens) the
log of a topic partition, keeps each topic's effective log config (its overrides over the live broker
defaults), and wakes long-polling fetches on appends. This is the seam where leadership, leader
epochs, the high watermark and the ISR of replication live.
"""

from __future__ import annotations

import trio

from ..config import effective_topic_config
from ..config.live import LiveConfig
from ..log import LogConfig, LogManager, PartitionLog
from ..metadata import MetadataStore, Topic


def topic_log_config(broker_config, topic: Topic) -> LogConfig:
    """The topic's effective log settings: its overrides over the broker's defaults."""
    return LogConfig.from_dict(effective_topic_config(broker_config, topic.configs))


class PartitionService:
    def __init__(self, logs: LogManager, live_config: LiveConfig, metadata: MetadataStore):
        self.logs = logs
        self._live_config = live_config
        self._metadata = metadata
        self._log_configs: dict[str, LogConfig] = {}
        live_config.subscribe(self._broker_config_changed)

    def log_config(self, topic: Topic) -> LogConfig:
        """The topic's effective log settings: its overrides over the broker's defaults."""
        config = self._log_configs.get(topic.name)
        if config is None:
            config = topic_log_config(self._live_config.current, topic)
            self._log_configs[topic.name] = config
        return config

    def topic_configs_changed(self, topic: Topic) -> None:
        self._log_configs.pop(topic.name, None)
        self.logs.update_config(topic.name, self.log_config(topic))

    def topic_deleted(self, topic: Topic) -> None:
        for partition in range(topic.partitions):
            self.logs.delete_partition(topic.name, partition)
        self._log_configs.pop(topic.name, None)

    def _broker_config_changed(self, config) -> None:
        for topic in self._metadata.topics():
            self.topic_configs_changed(topic)

    def partition_log(self, topic: Topic, partition: int) -> PartitionLog:
        partition_log = self.logs.get(topic.name, partition)
        if partition_log is None:
            partition_log = self.logs.get_or_create(topic.name, partition, topic.topic_id, self.log_config(topic))
            # becoming leader: the leader epoch starts at the log end, as in Kafka
            partition_log.assign_leader_epoch(topic.leader_epoch)
        return partition_log


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


__all__ = ["AppendNotifier", "PartitionService", "topic_log_config"]
