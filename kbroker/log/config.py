"""Per-topic log configuration, keyed by Kafka's topic config names, with Kafka 4's defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

LONG_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class LogConfig:
    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * 24 * 60 * 60 * 1000
    segment_jitter_ms: int = 0
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * 24 * 60 * 60 * 1000  # -1: no time limit
    retention_bytes: int = -1  # -1: no size limit
    max_message_bytes: int = 1024 * 1024 + 12
    message_timestamp_type: str = "CreateTime"  # or "LogAppendTime"
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_after_max_ms: int = 60 * 60 * 1000  # Kafka 4.0 default (KIP-1030)
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    cleanup_policy: str = "delete"
    file_delete_delay_ms: int = 60_000
    min_insync_replicas: int = 1  # read by the partition layer for acks=-1

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None) -> "LogConfig":
        """Build from Kafka names ("segment.bytes": "1048576", ...). Unknown names are ignored, so the
        server may pass a topic's whole effective config; values may be strings as in CreateTopics."""
        if not values:
            return cls()
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            name = f.name.replace("_", ".")
            if name in values and values[name] is not None:
                v = values[name]
                kwargs[f.name] = v if f.type == "str" else int(v)
        return cls(**kwargs)

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy
