"""Idempotent-producer state of one partition, from batch headers only.

Per producer id: its current epoch and the metadata of its last 5 batches (first/last sequence,
first/last offset, max timestamp). That is enough to answer a retried batch with the offsets it was
first given, and to reject gaps and zombie epochs the way Kafka 4 does:

- same epoch, same (first, last) sequence as a remembered batch: duplicate, not written again;
- epoch below the current one: INVALID_PRODUCER_EPOCH;
- a new (higher) epoch must start at sequence 0, unless the producer is unknown;
- same epoch: the first sequence must follow the last one (wrapping at INT32_MAX), else
  OUT_OF_ORDER_SEQUENCE_NUMBER;
- an unknown producer (never seen, or its batches were all deleted) is accepted with any sequence
  (Kafka has not answered UNKNOWN_PRODUCER_ID for this since KIP-360).

Transactions (KIP-98): a producer's first transactional batch in this partition opens its
transaction here (its first offset is remembered); the COMMIT/ABORT marker the coordinator writes
closes it. The smallest open first offset is the first unstable offset, which bounds the last stable
offset (LSO). A non-transactional batch while the producer's transaction is open is
INVALID_TXN_STATE; a marker from an older epoch is INVALID_PRODUCER_EPOCH, and a marker with a newer
epoch (a coordinator fencing a timed-out producer) moves the producer to that epoch.

State is rebuilt on open by replaying headers; no snapshot files yet.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from kbroker.protocol.errors import ErrorCode, ApiError
from kbroker.protocol.records import INT32_MAX, BatchHeader

BATCHES_TO_RETAIN = 5


@dataclass(slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


class ProducerEntry:
    __slots__ = ("epoch", "batches", "last_timestamp", "txn_first_offset", "last_offset", "coordinator_epoch")

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.batches: deque[BatchMetadata] = deque(maxlen=BATCHES_TO_RETAIN)
        self.last_timestamp = -1
        self.txn_first_offset = -1  # first offset of the producer's open transaction here, -1: none
        self.last_offset = -1
        self.coordinator_epoch = -1  # of the last transaction marker

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    def find(self, first_seq: int, last_seq: int) -> BatchMetadata | None:
        for b in self.batches:
            if b.first_seq == first_seq and b.last_seq == last_seq:
                return b
        return None


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class ProducerStateManager:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        self.ongoing: dict[int, int] = {}  # producer id -> first offset of its open transaction

    def first_unstable_offset(self) -> int | None:
        return min(self.ongoing.values()) if self.ongoing else None

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        entry = self.producers.get(producer_id)
        return entry is not None and entry.txn_first_offset >= 0 and entry.epoch == producer_epoch

    def find_duplicate(self, h: BatchHeader) -> BatchMetadata | None:
        entry = self.producers.get(h.producer_id)
        if entry is None or entry.epoch != h.producer_epoch:
            return None
        return entry.find(h.base_sequence, h.last_sequence)

    def check(self, h: BatchHeader) -> None:
        """Raise ApiError if a client batch may not be appended (call after find_duplicate)."""
        entry = self.producers.get(h.producer_id)
        if entry is None:
            return
        if h.producer_epoch < entry.epoch:
            raise ApiError(ErrorCode.INVALID_PRODUCER_EPOCH, f"epoch {h.producer_epoch} of producer {h.producer_id} is older than the last seen epoch {entry.epoch}")
        if h.producer_epoch != entry.epoch:
            if h.base_sequence != 0:
                raise ApiError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, f"invalid sequence {h.base_sequence} for new epoch {h.producer_epoch} of producer {h.producer_id}")
        elif not _in_sequence(entry.last_seq, h.base_sequence):
            raise ApiError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, f"out of order sequence {h.base_sequence} for producer {h.producer_id}, last was {entry.last_seq}")
        if entry.txn_first_offset >= 0 and not h.is_transactional:
            raise ApiError(ErrorCode.INVALID_TXN_STATE, f"expected a transactional write from producer {h.producer_id} with an open transaction")

    def check_marker(self, producer_id: int, producer_epoch: int) -> None:
        """Raise ApiError if a transaction marker of this epoch may not be written."""
        entry = self.producers.get(producer_id)
        if entry is not None and producer_epoch < entry.epoch:
            raise ApiError(ErrorCode.INVALID_PRODUCER_EPOCH, f"marker epoch {producer_epoch} of producer {producer_id} is older than the last seen epoch "
                           f"{entry.epoch}")

    def check_coordinator_epoch(self, producer_id: int, coordinator_epoch: int) -> None:
        """Raise ApiError(TRANSACTION_COORDINATOR_FENCED) for a marker from a coordinator older than
        the one whose marker was written last (a coordinator that lost its partition, still sending)."""
        entry = self.producers.get(producer_id)
        if entry is not None and coordinator_epoch < entry.coordinator_epoch:
            raise ApiError(ErrorCode.TRANSACTION_COORDINATOR_FENCED,
                           f"marker of producer {producer_id} from coordinator epoch {coordinator_epoch}, "
                           f"older than {entry.coordinator_epoch}")

    def complete_transaction(self, h: BatchHeader, coordinator_epoch: int = -1) -> int:
        """A marker (control batch at ``h.base_offset``) ends the producer's transaction here; returns
        the transaction's first offset (the marker's own offset when no data of it is here)."""
        entry = self._entry_at_epoch_of(h)
        first = entry.txn_first_offset if entry.txn_first_offset >= 0 else h.base_offset
        entry.txn_first_offset = -1
        entry.last_offset = h.last_offset
        entry.coordinator_epoch = coordinator_epoch
        self.ongoing.pop(h.producer_id, None)
        return first

    def update(self, h: BatchHeader) -> None:
        """Remember a batch that is now in the log (``h.base_offset`` already assigned)."""
        entry = self._entry_at_epoch_of(h)
        if h.base_sequence >= 0:
            entry.batches.append(
                BatchMetadata(h.base_sequence, h.last_sequence, h.base_offset, h.last_offset, h.max_timestamp)
            )
        entry.last_timestamp = h.max_timestamp
        entry.last_offset = h.last_offset
        if h.is_transactional and entry.txn_first_offset < 0:
            entry.txn_first_offset = h.base_offset
            self.ongoing[h.producer_id] = h.base_offset

    def _entry_at_epoch_of(self, h: BatchHeader) -> ProducerEntry:
        """The producer's entry, created or moved to the batch's epoch (a new epoch forgets the
        batches of the old one)."""
        entry = self.producers.get(h.producer_id)
        if entry is None:
            entry = self.producers[h.producer_id] = ProducerEntry(h.producer_epoch)
        elif entry.epoch != h.producer_epoch:
            entry.epoch = h.producer_epoch
            entry.batches.clear()
        return entry

    def forget_before(self, log_start_offset: int) -> None:
        """Drop producers whose last batch is below the log start (their data was deleted)."""
        gone = [
            pid for pid, e in self.producers.items()
            if e.txn_first_offset < 0 and e.last_offset < log_start_offset
            and (not e.batches or e.batches[-1].last_offset < log_start_offset)
        ]
        for pid in gone:
            del self.producers[pid]
