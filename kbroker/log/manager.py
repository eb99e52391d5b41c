"""LogManager: every partition log in one log directory, plus the log-dir level checkpoint files
Kafka keeps there (``recovery-point-offset-checkpoint``, ``log-start-offset-checkpoint``).

Creating many partitions at once (a new topic) is ``open_new``: one durability batch, so the
partitions' files and directories are made durable together at its end, in two rounds of concurrent
fsyncs, instead of a few fsyncs in turn per partition (kbroker.log.durability). It touches nothing
the manager shares, so the broker runs it in a worker thread while the event loop goes on serving the
logs already registered, and registers the new logs (``add``) once they are durable."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Mapping

from kbroker.log import checkpoint, durability
from kbroker.log.config import LogConfig
from kbroker.log.partition import PartitionLog, parse_partition_dir

logger = logging.getLogger("kbroker.log")

RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_FILE = "log-start-offset-checkpoint"


class LogManager:
    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.logs: dict[tuple[str, int], PartitionLog] = {}

    @classmethod
    def open(
        cls,
        log_dir: str,
        configs: Mapping[str, LogConfig | Mapping[str, Any]] | None = None,
        default_config: LogConfig | Mapping[str, Any] | None = None,
    ) -> "LogManager":
        """Open every ``<topic>-<partition>`` directory under ``log_dir``. ``configs`` maps topic
        name to its effective config; topics not in it get ``default_config``."""
        os.makedirs(log_dir, exist_ok=True)
        mgr = cls(log_dir)
        recovery = checkpoint.read_offset_checkpoint(os.path.join(log_dir, RECOVERY_POINT_FILE))
        starts = checkpoint.read_offset_checkpoint(os.path.join(log_dir, LOG_START_FILE))
        with durability.batch():  # whatever recovery rewrites is made durable together
            for name in sorted(os.listdir(log_dir)):
                path = os.path.join(log_dir, name)
                tp = parse_partition_dir(name)
                if tp is None or not os.path.isdir(path):
                    continue
                if name.endswith("-delete") or ".delete" in name:
                    continue
                config = (configs or {}).get(tp[0], default_config)
                mgr.logs[tp] = PartitionLog.open(
                    path, config, recovery_point=recovery.get(tp, 0), log_start_offset=starts.get(tp, 0)
                )
        return mgr

    def open_new(self, topic: str, partitions: list[int], topic_id, config: LogConfig,
                 leader_epoch: int) -> dict[tuple[str, int], PartitionLog]:
        """Create (or open, if their directories exist) these partitions' logs, their leader epoch
        starting at the log end as in Kafka, every file and directory durable when this returns. Safe
        in a worker thread: reads and writes only these partitions' directories; nothing is registered."""
        opened: dict[tuple[str, int], PartitionLog] = {}
        try:
            with durability.batch():
                for partition in partitions:
                    log = self._open_partition(topic, partition, topic_id, config)
                    opened[(topic, partition)] = log
                    log.assign_leader_epoch(leader_epoch)
        except BaseException:
            for log in opened.values():
                log.close()
            raise
        return opened

    def add(self, logs: Mapping[tuple[str, int], PartitionLog]) -> None:
        """Register logs opened by open_new (on the thread that serves the others)."""
        self.logs.update(logs)

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.get((topic, partition))

    def get_or_create(
        self, topic: str, partition: int, topic_id=None, config: LogConfig | Mapping[str, Any] | None = None
    ) -> PartitionLog:
        log = self.logs.get((topic, partition))
        if log is None:
            with durability.batch():
                log = self._open_partition(topic, partition, topic_id, config)
            self.logs[(topic, partition)] = log
        return log

    def _open_partition(self, topic: str, partition: int, topic_id, config) -> PartitionLog:
        """Open (or create) one partition's log in its ``<topic>-<partition>`` directory; callers hold a
        durability batch, so a new log's files and directory are durable when it ends."""
        return PartitionLog.open(os.path.join(self.log_dir, f"{topic}-{partition}"), config, topic_id=topic_id)

    def update_config(self, topic: str, config: LogConfig | Mapping[str, Any]) -> None:
        """Apply a changed topic config (e.g. after AlterConfigs) to the topic's open logs."""
        if not isinstance(config, LogConfig):
            config = LogConfig.from_dict(config)
        for (t, _), log in self.logs.items():
            if t == topic:
                log.config = config

    def delete_partition(self, topic: str, partition: int) -> None:
        log = self.logs.pop((topic, partition), None)
        if log is not None:
            log.delete()
        self.write_checkpoints()

    def enforce_retention(self, now_ms: int | None = None) -> int:
        """Run retention on every log (the server calls this every log.retention.check.interval.ms;
        compaction's log cleaner will run from here too, see kbroker.log.retention)."""
        return sum(log.enforce_retention(now_ms) for log in self.logs.values())

    def flush_due_logs(self, now_ms: int | None = None) -> list[PartitionLog]:
        """Logs whose flush policy (or a roll) asks for an fsync now; the server flushes them, e.g.
        in a worker thread, then calls write_checkpoints()."""
        return [log for log in self.logs.values() if log.flush_due(now_ms)]

    def write_checkpoints(self) -> None:
        """Write recovery points and log start offsets of all logs (periodically and at shutdown)."""
        with durability.batch():
            checkpoint.write_offset_checkpoint(
                os.path.join(self.log_dir, RECOVERY_POINT_FILE),
                {tp: log.recovery_point for tp, log in self.logs.items()},
            )
            checkpoint.write_offset_checkpoint(
                os.path.join(self.log_dir, LOG_START_FILE), {tp: log.log_start_offset for tp, log in self.logs.items()}
            )

    def close(self) -> None:
        """Clean shutdown: flush and close every log, then checkpoint (recovery point = log end)."""
        started = time.monotonic()
        with durability.batch():
            for log in self.logs.values():
                log.close()
        self.write_checkpoints()
        logger.info("Closed %d log(s) in %s in %.1f ms", len(self.logs), self.log_dir, (time.monotonic() - started) * 1000)
