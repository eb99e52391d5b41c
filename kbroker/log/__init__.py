"""The durable segmented partition log (sync file I/O, no trio). See partition.PartitionLog."""

from kbroker.log.config import LogConfig
from kbroker.log.manager import LogManager
from kbroker.log.partition import (
    ORIGIN_CLIENT,
    ORIGIN_COORDINATOR,
    AppendResult,
    FileSlice,
    PartitionLog,
    ReadResult,
    TimestampOffset,
)

__all__ = [
    "AppendResult",
    "FileSlice",
    "LogConfig",
    "LogManager",
    "ORIGIN_CLIENT",
    "ORIGIN_COORDINATOR",
    "PartitionLog",
    "ReadResult",
    "TimestampOffset",
]
