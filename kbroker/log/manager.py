"""LogManager: every partition log in one log directory, plus the log-dir level checkpoint files
Kafka keeps there (``recovery-point-offset-checkpoint``, ``log-start-offset-checkpoint``, and the
cleaner's ``cleaner-offset-checkpoint``, kbroker.log.cleaner).

Creating many partitions at once (a new topic) is ``open_new``: one durability batch, so the
partitions' files and directories are made durable together at its end, in two rounds of concurrent
fsyncs, instead of a few fsyncs in turn per partition (kbroker.log.durability). It touches nothing
the manager shares, so the broker runs it in a worker thread while the event loop goes on serving the
logs already registered, and registers the new logs (``add``) once they are durable.

Opening the logs at start can be lazy (``open(..., lazily=True)``, as the broker does): the
directories are listed and the checkpoints read, and a partition's log is opened — recovered, if a
crash left it so — at its first ``get``, or by ``open_some``, which the broker calls in small steps
from a background task until every log is open. A broker with 5,000 partitions then serves at once
instead of after seconds of recovery, and no request waits for more than a few partitions' opening.
Until a log is open, the checkpoints keep its recovery point and log start offset as read, so a
crash before then changes nothing; retention, flushes and shutdown concern open logs only (an
unopened log has nothing unflushed and is past nothing since start that the background opening
will not reach within seconds)."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any, Mapping

from kbroker.log import checkpoint, durability
from kbroker.log.cleaner import LogCleaner
from kbroker.log.config import LogConfig
from kbroker.log.partition import PartitionLog, parse_partition_dir

logger = logging.getLogger("kbroker.log")

RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_FILE = "log-start-offset-checkpoint"


@dataclass(slots=True)
class _Unopened:
    """A partition directory found at start whose log is not open yet, with its checkpointed offsets."""
    path: str
    recovery_point: int
    log_start_offset: int


class LogManager:
    def __init__(self, log_dir: str, configs: Mapping[str, LogConfig | Mapping[str, Any]] | None = None,
                 default_config: LogConfig | Mapping[str, Any] | None = None):
        self.log_dir = log_dir
        self.logs: dict[tuple[str, int], PartitionLog] = {}
        self._unopened: dict[tuple[str, int], _Unopened] = {}
        self._configs: dict[str, LogConfig | Mapping[str, Any]] = dict(configs or {})
        self._default_config = default_config
        self.cleaner = LogCleaner(log_dir, self.logs)  # compaction (kbroker.log.cleaner); the broker runs it

    @classmethod
    def open(
        cls,
        log_dir: str,
        configs: Mapping[str, LogConfig | Mapping[str, Any]] | None = None,
        default_config: LogConfig | Mapping[str, Any] | None = None,
        *,
        lazily: bool = False,
    ) -> "LogManager":
        """Find every ``<topic>-<partition>`` directory under ``log_dir`` and open (recover) its log,
        now or, ``lazily``, at first use (module docstring). ``configs`` maps topic name to its
        effective config; topics not in it get ``default_config``."""
        started = time.monotonic()
        os.makedirs(log_dir, exist_ok=True)
        mgr = cls(log_dir, configs, default_config)
        recovery = checkpoint.read_offset_checkpoint(os.path.join(log_dir, RECOVERY_POINT_FILE))
        starts = checkpoint.read_offset_checkpoint(os.path.join(log_dir, LOG_START_FILE))
        for name in sorted(os.listdir(log_dir)):
            tp = parse_partition_dir(name)
            if tp is None or name.endswith("-delete") or ".delete" in name:
                continue
            path = os.path.join(log_dir, name)
            if os.path.isdir(path):
                mgr._unopened[tp] = _Unopened(path, recovery.get(tp, 0), starts.get(tp, 0))
        if not lazily:
            mgr.open_some(len(mgr._unopened))
        logger.info("Found %d partition log(s) in %s in %.1f ms%s", len(mgr._unopened) + len(mgr.logs), log_dir,
                    (time.monotonic() - started) * 1000, ", opened as they are used" if lazily else "")
        return mgr

    @property
    def unopened(self) -> int:
        """How many logs found at start are not open yet."""
        return len(self._unopened)

    def open_some(self, count: int) -> int:
        """Open (recover) up to ``count`` of the logs not open yet; how many remain."""
        with durability.batch():  # whatever recovery rewrites is made durable together
            for tp in list(itertools.islice(self._unopened, count)):
                self._open_found(tp)
        return len(self._unopened)

    def _open_found(self, tp: tuple[str, int]) -> PartitionLog:
        """Open a log found at start; if that fails (OSError), it stays unopened, for a later try."""
        found = self._unopened[tp]
        log = PartitionLog.open(found.path, self._configs.get(tp[0], self._default_config),
                                recovery_point=found.recovery_point, log_start_offset=found.log_start_offset)
        del self._unopened[tp]
        self.logs[tp] = log
        return log

    def open_new(self, topic: str, partitions: list[int], topic_id, config: LogConfig,
                 leader_epoch: int) -> dict[tuple[str, int], PartitionLog]:
        """Create (or open, if their directories exist) these partitions' logs, their leader epoch
        starting at the log end as in Kafka, every file and directory durable when this returns. Safe
        in a worker thread: reads and writes only these partitions' directories; nothing is registered."""
        opened: dict[tuple[str, int], PartitionLog] = {}
        made = [p for p in partitions if not os.path.exists(self._partition_path(topic, p))]
        try:
            with durability.batch():
                for partition in partitions:
                    log = self._open_partition(topic, partition, topic_id, config)
                    opened[(topic, partition)] = log
                    log.assign_leader_epoch(leader_epoch)
        except BaseException:
            # nothing of a failed creation stays: what this call made is removed (as best it can)
            for log in opened.values():
                try:
                    log.close()
                except OSError:
                    pass
            for partition in made:
                shutil.rmtree(self._partition_path(topic, partition), ignore_errors=True)
            raise
        return opened

    def add(self, logs: Mapping[tuple[str, int], PartitionLog]) -> None:
        """Register logs opened by open_new (on the thread that serves the others)."""
        self.logs.update(logs)

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        log = self.logs.get((topic, partition))
        if log is None and (topic, partition) in self._unopened:
            with durability.batch():
                log = self._open_found((topic, partition))
        return log

    def get_or_create(
        self, topic: str, partition: int, topic_id=None, config: LogConfig | Mapping[str, Any] | None = None
    ) -> PartitionLog:
        log = self.get(topic, partition)
        if log is None:
            with durability.batch():
                log = self._open_partition(topic, partition, topic_id, config)
            self.logs[(topic, partition)] = log
        return log

    def _open_partition(self, topic: str, partition: int, topic_id, config) -> PartitionLog:
        """Open (or create) one partition's log in its ``<topic>-<partition>`` directory; callers hold a
        durability batch, so a new log's files and directory are durable when it ends."""
        return PartitionLog.open(self._partition_path(topic, partition), config, topic_id=topic_id)

    def _partition_path(self, topic: str, partition: int) -> str:
        return os.path.join(self.log_dir, f"{topic}-{partition}")

    def update_config(self, topic: str, config: LogConfig | Mapping[str, Any]) -> None:
        """Apply a changed topic config (e.g. after AlterConfigs) to the topic's open logs."""
        if not isinstance(config, LogConfig):
            config = LogConfig.from_dict(config)
        self._configs[topic] = config  # for its logs opened later
        for (t, _), log in self.logs.items():
            if t == topic:
                log.config = config

    def delete_partition(self, topic: str, partition: int) -> None:
        self.get(topic, partition)  # an unopened one is opened, to be deleted like the others
        log = self.logs.pop((topic, partition), None)
        if log is not None:
            log.delete()
        self.cleaner.forget((topic, partition))
        self.write_checkpoints()

    def enforce_retention(self, now_ms: int | None = None, reap: bool = True) -> int:
        """Run retention on every log (the server calls this every log.retention.check.interval.ms):
        a few unlinks per expired segment. Closing their files, which frees their blocks, is
        ``close_deleted_segments`` with ``reap=False``, which the server runs in a worker thread. Compaction is the
        cleaner's (``self.cleaner``, kbroker.log.cleaner), run by the server's cleaner tasks."""
        return sum(log.enforce_retention(now_ms, reap) for log in list(self.logs.values()))

    def close_deleted_segments(self, now_ms: int | None = None) -> None:
        """Close the files of deleted segments past file.delete.delay.ms (safe in a worker thread)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        for log in list(self.logs.values()):
            log.graveyard.reap(now_ms)

    def flush_due_logs(self, now_ms: int | None = None) -> list[PartitionLog]:
        """Logs whose flush policy (or a roll) asks for an fsync now; the server flushes them, e.g.
        in a worker thread, then calls write_checkpoints()."""
        return [log for log in self.logs.values() if log.flush_due(now_ms)]

    def write_checkpoints(self) -> None:
        """Write recovery points and log start offsets of all logs (periodically and at shutdown)."""
        recovery = {tp: found.recovery_point for tp, found in self._unopened.items()}
        starts = {tp: found.log_start_offset for tp, found in self._unopened.items()}
        recovery.update((tp, log.recovery_point) for tp, log in self.logs.items())
        starts.update((tp, log.log_start_offset) for tp, log in self.logs.items())
        with durability.batch():
            checkpoint.write_offset_checkpoint(os.path.join(self.log_dir, RECOVERY_POINT_FILE), recovery)
            checkpoint.write_offset_checkpoint(os.path.join(self.log_dir, LOG_START_FILE), starts)

    def close(self) -> None:
        """Clean shutdown: flush and close every log, then checkpoint (recovery point = log end)."""
        started = time.monotonic()
        with durability.batch():
            for log in self.logs.values():
                log.close()
        self.write_checkpoints()
        self.cleaner.write_checkpoint()
        logger.info("Closed %d log(s) in %s in %.1f ms", len(self.logs), self.log_dir, (time.monotonic() - started) * 1000)
