"""A partition's log (sync, no trio): the ``Log`` protocol the broker uses (api), the durable
segmented ``PartitionLog`` (partition) with its ``LogManager`` (manager), and the in-memory
``MemoryLog`` (memory), which share their semantics (base)."""

from kbroker.log.api import (
    EARLIEST_LOCAL_TIMESTAMP,
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    ORIGIN_CLIENT,
    ORIGIN_COORDINATOR,
    AppendResult,
    FileSlice,
    Log,
    ReadResult,
    TimestampOffset,
)
from kbroker.log.config import LogConfig
from kbroker.log.errors import StorageError
from kbroker.log.manager import LogManager
from kbroker.log.memory import MemoryLog
from kbroker.log.partition import PartitionLog

__all__ = [
    "EARLIEST_LOCAL_TIMESTAMP",
    "EARLIEST_TIMESTAMP",
    "LATEST_TIMESTAMP",
    "AppendResult",
    "FileSlice",
    "Log",
    "LogConfig",
    "LogManager",
    "MemoryLog",
    "ORIGIN_CLIENT",
    "ORIGIN_COORDINATOR",
    "PartitionLog",
    "ReadResult",
    "StorageError",
    "TimestampOffset",
]
