"""PartitionService: finds the partition a request names, and keeps the partitions' logs in step
with the catalogue.

Lookups answer with Kafka's errors on the way: an unknown topic name or partition index is
UNKNOWN_TOPIC_OR_PARTITION (a topic named by id: UNKNOWN_TOPIC_ID), a stale or future current leader
epoch FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH, a log that cannot be opened KAFKA_STORAGE_ERROR.
A Partition is made at its first lookup (opening or creating its log) and kept in one dict, so a
lookup costs one dict get, as the log lookup did before.

Also here: each topic's effective log config (its overrides over the live broker defaults),
recomputed when either changes, and a deleted topic's partitions and logs dropped. The coordinators'
replay at load and a few admin handlers (DescribeLogDirs, DescribeProducers) read the logs
themselves (``partition_log``, ``logs``).
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from ..config import effective_topic_config
from ..config.live import LiveConfig
from ..log import LogConfig, LogManager, PartitionLog
from ..metadata import MetadataStore, Topic
from ..protocol.errors import ApiError, ErrorCode
from . import hw_checkpoint
from .partition import NO_EPOCH, Partition, storage_error

log = logging.getLogger("kbroker.partitions")


def topic_log_config(broker_config, topic: Topic) -> LogConfig:
    """The topic's effective log settings: its overrides over the broker's defaults."""
    return LogConfig.from_dict(effective_topic_config(broker_config, topic.configs))


class PartitionService:
    def __init__(self, logs: LogManager, live_config: LiveConfig, metadata: MetadataStore, *,
                 local_id: int = -1, notifier=None):
        self.logs = logs
        self._live_config = live_config
        self._metadata = metadata
        self._log_configs: dict[str, LogConfig] = {}
        self._partitions: dict[tuple[str, int], Partition] = {}
        self.local_id = local_id
        self.notifier = notifier  # woken when a high watermark moves (long-polling fetches)
        # in a cluster only the replicas the cluster assigns here exist (``replica``); alone, every
        # partition of the catalogue is this broker's and is made at its first lookup
        self.hosted_only = False
        self._restored_hws: dict[tuple[str, int], int] = {}
        live_config.subscribe(self._broker_config_changed)

    # ------------------------------------------------------------------------------ lookups

    def find_topic(self, name: str | None, topic_id: uuid.UUID | None = None) -> Topic:
        """The topic by name, or by id when no name is given (Fetch v13+)."""
        if not name:
            topic = self._metadata.get_by_id(topic_id) if topic_id is not None else None
            if topic is None:
                raise ApiError(ErrorCode.UNKNOWN_TOPIC_ID)
            return topic
        topic = self._metadata.get(name)
        if topic is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        return topic

    def partition(self, topic: Topic, index: int, current_leader_epoch: int = NO_EPOCH) -> Partition:
        """The topic's partition ``index``, checked against the client's current leader epoch."""
        partition = self._partitions.get((topic.name, index))
        if partition is None:
            partition = self._first_lookup(topic, index)
        if current_leader_epoch != NO_EPOCH:
            partition.check_leader_epoch(current_leader_epoch)
        return partition

    def _first_lookup(self, topic: Topic, index: int) -> Partition:
        if not 0 <= index < topic.partitions:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        if self.hosted_only:
            raise ApiError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                           f"broker {self.local_id} holds no replica of {topic.name}-{index}")
        return self.replica(topic, index)

    def replica(self, topic: Topic, index: int) -> Partition:
        """The partition's replica here, its log opened or created (the cluster assigned it here)."""
        partition = self._partitions.get((topic.name, index))
        if partition is not None:
            return partition
        try:
            partition_log = self.partition_log(topic, index)
        except OSError as exc:
            raise storage_error(topic.name, index, exc) from exc
        partition = self._partitions[(topic.name, index)] = Partition(
            topic.name, index, partition_log, topic.leader_epoch, local_id=self.local_id, notifier=self.notifier)
        if self.hosted_only:  # a replica in a cluster: what was committed when this broker last knew
            partition.restore_high_watermark(self._restored_hws.get((topic.name, index), 0))
        return partition

    def hosted(self) -> list[Partition]:
        """The replicas this broker holds (opened so far)."""
        return list(self._partitions.values())

    def held(self, topic: str, index: int) -> Partition | None:
        """The replica here if it is open (never opens one)."""
        return self._partitions.get((topic, index))

    def drop_replica(self, topic: str, index: int) -> bool:
        """The cluster moved the replica away: forget it and delete its log -- also one found on
        disk and not opened since (moved away while this broker was down). False: none was here."""
        partition = self._partitions.pop((topic, index), None)
        self._restored_hws.pop((topic, index), None)
        if partition is not None:
            partition.forget(moved_away=True)
        elif self.logs.get(topic, index) is None:
            return False
        self.logs.delete_partition(topic, index)
        return True

    def partition_log(self, topic: Topic, index: int) -> PartitionLog:
        """The partition's log, opened or created (a new one's leader epoch starts at its end)."""
        partition_log = self.logs.get(topic.name, index)
        if partition_log is None:
            partition_log = self.logs.get_or_create(topic.name, index, topic.topic_id, self.log_config(topic))
            # becoming leader: the leader epoch starts at the log end, as in Kafka
            partition_log.assign_leader_epoch(topic.leader_epoch)
        return partition_log

    def write_checkpoints(self) -> None:
        """Make every log's recovery point and log start offset survive a crash (after DeleteRecords),
        and in a cluster every replica's high watermark (kbroker.partitions.hw_checkpoint)."""
        self.logs.write_checkpoints()
        if self.hosted_only:
            hws = {**self._restored_hws, **{(p.topic, p.index): p.high_watermark for p in self._partitions.values()}}
            try:
                hw_checkpoint.write(Path(self.logs.log_dir), hws)
            except OSError as exc:
                log.warning("could not write the high-watermark checkpoint: %s", exc)

    def use_cluster(self) -> None:
        """In a cluster: only the replicas the cluster assigns here exist, and their high watermarks
        start from the checkpoint."""
        self.hosted_only = True
        self._restored_hws = hw_checkpoint.read(Path(self.logs.log_dir))

    # ------------------------------------------------------------------------------ catalogue changes

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
        for index in range(topic.partitions):
            partition = self._partitions.pop((topic.name, index), None)
            if partition is not None:
                partition.forget()
            self.logs.delete_partition(topic.name, index)
        self._log_configs.pop(topic.name, None)

    def _broker_config_changed(self, config) -> None:
        for topic in self._metadata.topics():
            self.topic_configs_changed(topic)
