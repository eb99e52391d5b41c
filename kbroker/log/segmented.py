"""What recovery (kbroker.log.recovery) and retention (kbroker.log.retention) need of a segmented
log: its directory, segments and offsets, and the few operations they drive on it. PartitionLog is
the one implementation; typing the two modules against this Protocol instead of PartitionLog keeps
the imports one way (partition -> recovery, retention -> this), type-only ones included."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kbroker.log.checkpoint import LeaderEpochCache
    from kbroker.log.config import LogConfig
    from kbroker.log.producer_state import ProducerStateManager
    from kbroker.log.segment import LogSegment
    from kbroker.log.txn_index import AbortedTxn
    from kbroker.protocol.records import BatchHeader


class SegmentedLog(Protocol):
    directory: str
    topic: str
    partition: int
    topic_id: str | None
    config: LogConfig
    segments: list[LogSegment]
    _bases: list[int]
    epochs: LeaderEpochCache
    producer_state: ProducerStateManager
    log_start_offset: int
    recovery_point: int
    graveyard: Any  # kbroker.log.retention.Graveyard

    @property
    def log_end_offset(self) -> int: ...
    @property
    def active_segment(self) -> LogSegment: ...
    @property
    def size_in_bytes(self) -> int: ...

    def _new_segment(self, base: int, now_ms: int) -> LogSegment: ...
    def _add_segment(self, seg: LogSegment) -> None: ...
    def _close_transaction(self, h: BatchHeader, batch) -> AbortedTxn | None: ...
    def _advance_log_start(self, offset: int) -> None: ...
    def roll(self, now_ms: int | None = None) -> LogSegment: ...
