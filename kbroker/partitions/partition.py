"""Partition: one partition this broker leads, as the handlers see it.

It holds what Kafka's Partition holds on the leader: the leader epoch, and the offsets a client is
told — log start offset, log end offset (LEO) and high watermark (HW, the end of what every in-sync
replica has, so what consumers may read and what acks=-1 waits for). Its log (kbroker.log) stores
the batches; the log keeps its own notion of the high watermark, but handlers trust this one.

- Append: the batch goes to the log as it came (per batch, no record decoded here); then the HW
  advances and anyone waiting for it is woken. The broker's own records (coordinators, transaction
  markers) may come this way too (``origin``, ``append_end_txn_marker``).
- acks=-1 awaits ``wait_for_high_watermark`` (until the HW reaches an offset, or a deadline).
- Reads (Fetch) and ListOffsets stop at the HW, or at the last stable offset for read_committed.
- A client's current leader epoch newer than ours is UNKNOWN_LEADER_EPOCH, older is
  FENCED_LEADER_EPOCH (``check_leader_epoch``).
- Storage errors are mapped here: an OSError or the log's StorageError (disk full, I/O error) is
  KAFKA_STORAGE_ERROR for this partition, logged once, as Kafka answers, and the broker serves the others.

One broker: the leader is the whole ISR, so the HW is the LEO at every moment — it advances on
append as it always has. Every append comes through here (clients', the coordinators' records,
transaction markers); the coordinators only read the log directly, to replay it at load.
Replication plugs in here: the HW becomes a stored offset, the minimum
of the ISR's fetch positions, advanced (``_high_watermark_advanced``) when a follower's fetch moves it;
``wait_for_high_watermark`` then really waits, and ``become_leader`` takes new epochs.
"""

from __future__ import annotations

import logging

import trio

from ..log import (EARLIEST_LOCAL_TIMESTAMP, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, ORIGIN_CLIENT, AppendResult, Log,
                   ReadResult, StorageError, TimestampOffset)
from ..protocol.errors import ApiError, ErrorCode

logger = logging.getLogger("kbroker.partitions")

NO_EPOCH = -1


def storage_error(topic: str, index: int, exc: OSError | StorageError) -> ApiError:
    """KAFKA_STORAGE_ERROR for an OSError met on a partition's log, or the log's own StorageError
    (logged: an operator must act)."""
    logger.error("Storage error on partition %s-%d: %s", topic, index, exc)
    return ApiError(ErrorCode.KAFKA_STORAGE_ERROR, f"storage error on {topic}-{index}: {exc}")


class Partition:
    __slots__ = ("topic", "index", "log", "leader_epoch", "_high_watermark_moved")

    def __init__(self, topic: str, index: int, log: Log, leader_epoch: int):
        self.topic = topic
        self.index = index
        self.log = log
        self.leader_epoch = leader_epoch
        self._high_watermark_moved: trio.Event | None = None  # made only when someone waits

    def __repr__(self) -> str:
        return f"Partition({self.topic}-{self.index}, epoch {self.leader_epoch})"

    # ------------------------------------------------------------------------------ leadership

    def become_leader(self, leader_epoch: int) -> None:
        """Lead with this epoch; as in Kafka it starts at the log end offset."""
        self.leader_epoch = leader_epoch
        self.log.assign_leader_epoch(leader_epoch)

    def check_leader_epoch(self, current_leader_epoch: int) -> None:
        """A client's view of the leader epoch (-1: none given) against ours."""
        if current_leader_epoch == NO_EPOCH or current_leader_epoch == self.leader_epoch:
            return
        if current_leader_epoch > self.leader_epoch:
            raise ApiError(ErrorCode.UNKNOWN_LEADER_EPOCH)
        raise ApiError(ErrorCode.FENCED_LEADER_EPOCH)

    # ------------------------------------------------------------------------------ offsets

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def high_watermark(self) -> int:
        # one broker: the leader is the whole ISR (module docstring)
        return self.log.log_end_offset

    @property
    def last_stable_offset(self) -> int:
        """The first offset of the earliest open transaction, else the high watermark."""
        return min(self.log.last_stable_offset, self.high_watermark)

    # ------------------------------------------------------------------------------ append

    def append(self, records, *, origin: str = ORIGIN_CLIENT) -> AppendResult:
        """Append one Produce batch (or, for the broker's own records, several) stamped with our
        leader epoch. Raises ApiError: the log's refusals, and KAFKA_STORAGE_ERROR for storage."""
        try:
            result = self.log.append(records, leader_epoch=self.leader_epoch, origin=origin)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        if self._high_watermark_moved is not None:  # someone waits for a later offset
            self._high_watermark_advanced()
        return result

    def append_end_txn_marker(self, producer_id: int, producer_epoch: int, commit: bool, *,
                              coordinator_epoch: int = 0) -> AppendResult:
        """Write a transaction's COMMIT or ABORT marker (the transaction coordinator ends it)."""
        try:
            result = self.log.append_end_txn_marker(producer_id, producer_epoch, commit,
                                                    coordinator_epoch=coordinator_epoch,
                                                    leader_epoch=self.leader_epoch)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        if self._high_watermark_moved is not None:
            self._high_watermark_advanced()
        return result

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        return self.log.has_ongoing_transaction(producer_id, producer_epoch)

    def _high_watermark_advanced(self) -> None:
        moved, self._high_watermark_moved = self._high_watermark_moved, None
        moved.set()

    async def wait_for_high_watermark(self, offset: int, deadline: float) -> bool:
        """Until the high watermark reaches ``offset`` (acks=-1: every in-sync replica has the
        records before it), or until the trio ``deadline``; True when it did. One broker: an append
        through here has already advanced it, so this returns at once; replication makes it wait."""
        with trio.move_on_at(deadline):
            while self.high_watermark < offset:
                if self._high_watermark_moved is None:
                    self._high_watermark_moved = trio.Event()
                await self._high_watermark_moved.wait()
        return self.high_watermark >= offset

    # ------------------------------------------------------------------------------ reads

    def read(self, offset: int, max_bytes: int, *, min_one_batch: bool = True,
             read_committed: bool = False) -> tuple[ReadResult, int]:
        """Whole batches from the one holding ``offset`` as file slices (for sendfile), up to
        ``max_bytes`` (at least one batch when ``min_one_batch``, KIP-74), stopping at the high
        watermark, or at the last stable offset for read_committed. Returns the read (its
        high_watermark ours, its log_start_offset as of now) and the last stable offset, which every
        fetch reports. OFFSET_OUT_OF_RANGE unless log start <= offset <= log end."""
        high_watermark = self.high_watermark
        last_stable = self.last_stable_offset
        try:
            result = self.log.read(offset, max_bytes, min_one_batch=min_one_batch,
                                   max_offset=last_stable if read_committed else high_watermark)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        result.high_watermark = high_watermark
        return result, last_stable

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list:
        """The aborted transactions overlapping [fetch_offset, upper_bound) (for read_committed)."""
        return self.log.aborted_transactions(fetch_offset, upper_bound)

    def list_offsets(self, timestamp: int, read_committed: bool = False) -> TimestampOffset:
        """ListOffsets: -1 latest is the high watermark (the last stable offset for read_committed),
        and an offset found by timestamp must lie below it; the rest is the log's (kbroker.log)."""
        try:
            found = self.log.list_offsets(timestamp, read_committed)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        fetchable = self.last_stable_offset if read_committed else self.high_watermark
        if timestamp == LATEST_TIMESTAMP:
            return found._replace(offset=fetchable)
        if found.offset >= fetchable and timestamp not in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            return TimestampOffset(-1, -1, -1)
        return found

    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (the largest epoch <= ``leader_epoch``, where it ended); (-1, -1)
        when unknown. Our own epoch ends at the log end offset."""
        return self.log.end_offset_for_epoch(leader_epoch)

    # ------------------------------------------------------------------------------ DeleteRecords

    def delete_records_before(self, offset: int) -> int:
        """Move the log start offset to ``offset`` (-1: the high watermark); returns the new log start
        offset (the low watermark). Beyond the high watermark is OFFSET_OUT_OF_RANGE."""
        high_watermark = self.high_watermark
        if offset == -1:
            offset = high_watermark
        if offset < 0 or offset > high_watermark:
            raise ApiError(ErrorCode.OFFSET_OUT_OF_RANGE,
                           f"cannot delete records before {offset}: high watermark is {high_watermark}")
        try:
            return self.log.delete_records_before(offset)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
