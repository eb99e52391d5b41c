"""What the rest of the broker uses of a partition's log: the ``Log`` protocol and its values.

Two implementations: ``PartitionLog`` (kbroker.log.partition, durable segment files) and
``MemoryLog`` (kbroker.log.memory, batches in memory, for tests of the layers above and for logs
nothing needs to keep). They share their semantics (kbroker.log.base) and pass the same scenario
tests. Callers (the partition layer, the Produce/Fetch/ListOffsets/DeleteRecords handlers, the group
and transaction coordinators) type against ``Log``, never against an implementation.

A read returns whole batches as ``ReadResult.slices``: a ``FileSlice`` (fd, position, length) of a
segment file, which the Fetch handler sends with sendfile without reading it, or a memoryview of
bytes already in memory. Lifecycle (opening, flushing, closing, retention runs, checkpoints) belongs
to whoever owns the logs (kbroker.log.manager for the disk), not to this protocol.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple, Protocol, Union, runtime_checkable

from kbroker.log.config import LogConfig
from kbroker.log.producer_state import ProducerStateManager
from kbroker.log.txn_index import AbortedTxn

# ListOffsets special timestamps
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5
EARLIEST_PENDING_UPLOAD_TIMESTAMP = -6  # KIP-1023; none without tiered storage

# who is appending: a client's Produce, or the broker itself (group/txn coordinators, markers)
ORIGIN_CLIENT = "client"
ORIGIN_COORDINATOR = "coordinator"


@dataclass(slots=True)
class AppendResult:
    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int
    record_count: int
    max_timestamp: int
    duplicate: bool = False  # an idempotent retry: nothing written, offsets are the original ones


class FileSlice(NamedTuple):
    fd: int
    position: int
    length: int


# whole batches: a range of a segment file (for sendfile), or bytes in memory
ReadSlice = Union[FileSlice, memoryview]


@dataclass(slots=True)
class ReadResult:
    slices: list[ReadSlice]
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    # the offset just past the returned batches (the fetch's upper bound for aborted transactions)
    next_offset: int = -1

    @property
    def size(self) -> int:
        return sum(s.length if type(s) is FileSlice else len(s) for s in self.slices)

    def to_bytes(self) -> bytes:
        return b"".join(os.pread(s.fd, s.length, s.position) if type(s) is FileSlice else bytes(s)
                        for s in self.slices)


class TimestampOffset(NamedTuple):
    timestamp: int
    offset: int
    leader_epoch: int  # -1 when unknown


@runtime_checkable
class Log(Protocol):
    """One partition's log, as the broker above it uses it. Offsets: ``log_start_offset`` <=
    ``last_stable_offset`` <= ``high_watermark`` <= ``log_end_offset``. Refusals are ApiError
    (StorageError, KAFKA_STORAGE_ERROR, when the storage fails)."""

    config: LogConfig  # the topic's effective settings; replaced when they change
    producer_state: ProducerStateManager  # idempotent/transactional producers (DescribeProducers)

    @property
    def log_start_offset(self) -> int: ...
    @property
    def log_end_offset(self) -> int: ...
    @property
    def high_watermark(self) -> int: ...
    @property
    def last_stable_offset(self) -> int: ...
    @property
    def size_in_bytes(self) -> int: ...

    def append(self, records, now_ms: int | None = None, *, leader_epoch: int = 0,
               origin: str = ORIGIN_CLIENT) -> AppendResult:
        """Validate and append a Produce request's batch (or the broker's own batches)."""

    def append_end_txn_marker(self, producer_id: int, producer_epoch: int, commit: bool, *,
                              coordinator_epoch: int = 0, leader_epoch: int = 0,
                              now_ms: int | None = None) -> AppendResult:
        """Write a transaction's COMMIT or ABORT marker."""

    def read(self, offset: int, max_bytes: int, *, min_one_batch: bool = True,
             max_offset: int | None = None) -> ReadResult:
        """Whole batches from the one holding ``offset``, below the high watermark (and ``max_offset``)."""

    def read_bytes(self, offset: int, max_bytes: int, **kw) -> bytes:
        """``read`` as one bytes object (the coordinators' replay)."""

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool: ...

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """The aborted transactions overlapping [fetch_offset, upper_bound) (read_committed Fetch)."""

    def list_offsets(self, timestamp: int, read_committed: bool = False) -> TimestampOffset: ...

    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]: ...

    def assign_leader_epoch(self, epoch: int) -> None: ...

    @property
    def latest_epoch(self) -> int | None: ...

    def append_replicated(self, records, now_ms: int | None = None) -> int:
        """A follower's append of the leader's batches, offsets and epochs kept; the new log end."""

    def truncate_to(self, offset: int) -> int:
        """Cut the batch holding ``offset`` and all after it (a follower's divergent tail)."""

    def delete_records_before(self, offset: int, now_ms: int | None = None) -> int:
        """DeleteRecords: move the log start offset; returns the new one (the low watermark)."""
