"""BaseLog: the semantics of a partition log, whatever keeps its batches.

A log is a sequence of whole v2 batches at increasing offsets, from the log start offset to the log
end offset. What this class owns, identical for the disk and the memory log:

- **Append** (``append``): the pure steps of kbroker.log.appending (validate, timestamps, offsets),
  the idempotent-producer checks (a retried batch is answered with its first offsets and not
  written again), then the implementation's ``_store`` writes the patched bytes. After the store,
  the batches are accounted: producer state, transactions closed by markers (an aborted one goes to
  the aborted-transaction index, ``_index_aborted``), new leader epochs.
- **Transactions**: the last stable offset (the first offset of the earliest open transaction, else
  the high watermark), ongoing transactions for KIP-890 verification.
- **Leader epochs** (a LeaderEpochCache: epoch -> start offset) for ListOffsets and
  OffsetForLeaderEpoch.
- **ListOffsets** special timestamps (earliest, latest, max timestamp, ...); the search by
  timestamp is the implementation's (``offset_for_timestamp``, ``_max_timestamp_offset``).
- **DeleteRecords**: the log start offset only moves forward, never past the high watermark; the
  implementation drops what lies wholly below it (``_delete_below_log_start``).
- **Reads**: the offset range check and the upper bound (the high watermark, or read_committed's
  last stable offset); the implementation's ``_read_batches`` finds the bytes.

The high watermark is the log end offset: on one broker every appended batch is committed (Kafka's
HW does not wait for fsync). Replication moves it out of here, into the partition layer.

Storage failures. ``_store`` either stores every byte or raises OSError with nothing stored (the
disk log truncates a partial write back, kbroker.log.files): the append then fails with
StorageError and the log goes on serving, so once space is back the next append simply succeeds.
The store is the commit point. What follows it only mirrors in-memory state to files (the
transaction index, the leader-epoch checkpoint, a flush.messages fsync); the in-memory state is
complete before any of those writes, so reads, offsets and producer state stay right. If one of
them fails, or a partial write could not be removed (TornWrite), the log goes **offline**: the
append answers StorageError and every later append too, instead of writing after garbage or on
top of files that no longer match memory; reads go on serving what is stored. Reopening the log
(recovery, kbroker.log.recovery) rebuilds those files from the batches and truncates any torn
tail, which is how an offline log comes back (a broker restart, as in Kafka, whose log directory
goes offline on an IOException).
"""

from __future__ import annotations

import time

from kbroker.log import appending
from kbroker.log.api import (
    EARLIEST_LOCAL_TIMESTAMP,
    EARLIEST_PENDING_UPLOAD_TIMESTAMP,
    EARLIEST_TIMESTAMP,
    LATEST_TIERED_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    ORIGIN_CLIENT,
    ORIGIN_COORDINATOR,
    AppendResult,
    ReadResult,
    TimestampOffset,
)
from kbroker.log.checkpoint import LeaderEpochCache
from kbroker.log.config import LogConfig
from kbroker.log.errors import StorageError, TornWrite
from kbroker.log.producer_state import ProducerStateManager
from kbroker.log.txn_index import AbortedTxn
from kbroker.protocol import records as rec
from kbroker.protocol.errors import ApiError, ErrorCode
from kbroker.protocol.records import BatchHeader

_NOT_FOUND = TimestampOffset(-1, -1, -1)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class BaseLog:
    topic: str
    partition: int

    def __init__(self, config: LogConfig, epochs: LeaderEpochCache):
        self.config = config
        self.epochs = epochs
        self.producer_state = ProducerStateManager()
        self.log_start_offset = 0
        self.offline: str | None = None  # why appends are refused after a storage failure
        self.truncations = 0  # how many times truncate_to cut the log (a cleaning across one is void)

    # ================================================================ what an implementation provides

    @property
    def log_end_offset(self) -> int:
        raise NotImplementedError

    @property
    def size_in_bytes(self) -> int:
        raise NotImplementedError

    def _store(self, mv: memoryview, headers: list[BatchHeader], last_offset: int, max_ts: int, now: int) -> None:
        """Keep the batches of ``mv`` (offsets assigned), all or nothing; OSError if nothing was kept."""
        raise NotImplementedError

    def _index_aborted(self, entries: list[AbortedTxn]) -> None:
        """Add aborted transactions whose markers were just stored."""
        raise NotImplementedError

    def _after_append(self, record_count: int, now: int) -> None:
        """Called once an append is stored and accounted (the disk log's flush.messages)."""

    def _read_batches(self, result: ReadResult, offset: int, max_bytes: int, min_one_batch: bool, upper: int) -> None:
        """Fill ``result`` with the whole batches from the one holding ``offset`` below ``upper``."""
        raise NotImplementedError

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """The aborted transactions overlapping [fetch_offset, upper_bound) (read_committed Fetch)."""
        raise NotImplementedError

    def _delete_below_log_start(self, now: int | None) -> int:
        """Drop the stored batches wholly below the log start offset; returns how many units went."""
        raise NotImplementedError

    def offset_for_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """First record with timestamp >= ``timestamp`` at or after the log start."""
        raise NotImplementedError

    def _max_timestamp_offset(self) -> TimestampOffset:
        """ListOffsets MAX_TIMESTAMP: the first record with the log's largest timestamp."""
        raise NotImplementedError

    # ================================================================ offsets

    @property
    def high_watermark(self) -> int:
        """Single broker: every appended batch is committed (Kafka's HW does not wait for fsync)."""
        return self.log_end_offset

    @property
    def last_stable_offset(self) -> int:
        """The first offset of the earliest open transaction, else the high watermark."""
        unstable = self.producer_state.first_unstable_offset()
        hw = self.high_watermark
        return hw if unstable is None else min(unstable, hw)

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        return self.producer_state.has_ongoing_transaction(producer_id, producer_epoch)

    # ================================================================ append

    def append(self, records, now_ms: int | None = None, *, leader_epoch: int = 0,
               origin: str = ORIGIN_CLIENT) -> AppendResult:
        """Append the records field of a Produce request (one v2 batch) or, for ``origin=
        ORIGIN_COORDINATOR``, one or more batches the broker built itself.

        The bytes are patched in place (offsets, leader epoch, LogAppendTime) when writable,
        otherwise copied once. Raises ApiError (nothing written) with CORRUPT_MESSAGE,
        INVALID_RECORD, MESSAGE_TOO_LARGE, INVALID_TIMESTAMP, OUT_OF_ORDER_SEQUENCE_NUMBER or
        INVALID_PRODUCER_EPOCH; StorageError (KAFKA_STORAGE_ERROR) when the storage fails. A
        duplicate idempotent batch returns the original offsets.
        """
        if self.offline is not None:
            raise StorageError(self.offline)
        cfg = self.config
        now = wall_clock_ms() if now_ms is None else now_ms
        client = origin == ORIGIN_CLIENT
        mv, headers = appending.append_headers(records, cfg, client)
        if client:
            appending.check_timestamps(mv, headers, now, cfg)
            if cfg.compact:
                appending.check_keys(mv, headers, f"{self.topic}-{self.partition}")
            duplicate = self._check_producers(headers)
            if duplicate is not None:
                return duplicate
        else:
            for h in headers:
                if h.is_control and h.has_producer_id:
                    self.producer_state.check_marker(h.producer_id, h.producer_epoch)

        first_offset = self.log_end_offset
        next_offset, max_ts, count = appending.assign_offsets(
            mv, headers, first_offset, leader_epoch=leader_epoch, client=client,
            log_append_time_ms=now if cfg.log_append_time else None)
        self._store_and_account(mv, headers, next_offset - 1, max_ts, count, now)
        return AppendResult(first_offset, next_offset - 1, now if cfg.log_append_time else -1,
                            self.log_start_offset, count, max_ts)

    def _store_and_account(self, mv: memoryview, headers: list[BatchHeader], last_offset: int, max_ts: int,
                           count: int, now: int) -> None:
        """Store the batches (the commit point), then account them in memory first and mirror that
        to files; a failure of either is StorageError (the log offline when files no longer match)."""
        try:
            self._store(mv, headers, last_offset, max_ts, now)
        except OSError as exc:
            if isinstance(exc, TornWrite):
                self.offline = f"{self._name} is offline after a failed write: {exc}"
            raise StorageError(f"could not append to {self._name}: {exc}") from exc
        aborted, epochs_changed = self._account(mv, headers)
        try:
            if aborted:
                self._index_aborted(aborted)
            if epochs_changed:
                self.epochs.save()
            self._after_append(count, now)
        except OSError as exc:
            self.offline = f"{self._name} is offline after a failed write: {exc}"
            raise StorageError(f"appended to {self._name} but {exc}; the log is offline until reopened") from exc

    def append_end_txn_marker(self, producer_id: int, producer_epoch: int, commit: bool, *,
                              coordinator_epoch: int = 0, leader_epoch: int = 0,
                              now_ms: int | None = None) -> AppendResult:
        """Write a transaction's COMMIT or ABORT marker (the transaction coordinator does this).
        Raises ApiError(INVALID_PRODUCER_EPOCH) for a marker older than the producer's epoch, and
        TRANSACTION_COORDINATOR_FENCED for one from an older coordinator than the last marker's."""
        self.producer_state.check_coordinator_epoch(producer_id, coordinator_epoch)
        batch = rec.build_end_txn_marker(commit, producer_id, producer_epoch, coordinator_epoch, now_ms=now_ms)
        return self.append(batch, now_ms, leader_epoch=leader_epoch, origin=ORIGIN_COORDINATOR)

    @property
    def _name(self) -> str:
        return f"partition {self.topic}-{self.partition}"

    def _check_producers(self, headers: list[BatchHeader]) -> AppendResult | None:
        """Idempotence: the original result for a retried batch, else None; raises for a refused one."""
        for h in headers:
            if h.has_producer_id:
                dup = self.producer_state.find_duplicate(h)
                if dup is not None:
                    return AppendResult(dup.first_offset, dup.last_offset, -1, self.log_start_offset,
                                        h.record_count, dup.timestamp, duplicate=True)
                self.producer_state.check(h)
        return None

    def _account(self, mv: memoryview, headers: list[BatchHeader]) -> tuple[list[AbortedTxn], bool]:
        """Producer state, transactions and leader epochs of stored batches, in memory only.
        Returns the aborted transactions to index and whether the epoch cache changed."""
        aborted: list[AbortedTxn] = []
        epochs_changed = False
        for h in headers:
            if h.has_producer_id:
                if h.is_control:
                    entry = self._close_transaction(h, mv[h.position:h.position + h.size])
                    if entry is not None:
                        aborted.append(entry)
                else:
                    self.producer_state.update(h)
            if h.partition_leader_epoch >= 0 and (
                self.epochs.latest_epoch is None or h.partition_leader_epoch > self.epochs.latest_epoch
            ):
                epochs_changed |= self.epochs.assign(h.partition_leader_epoch, h.base_offset, save=False)
        return aborted, epochs_changed

    def _close_transaction(self, h: BatchHeader, batch) -> AbortedTxn | None:
        """The control batch ``batch`` (header ``h``), appended or met in recovery: a COMMIT or ABORT
        marker closes its producer's transaction; the index entry of an aborted one, else None."""
        try:
            kind, coordinator_epoch = rec.read_control_record(batch)
        except ApiError:
            return None
        if kind not in (rec.CONTROL_COMMIT, rec.CONTROL_ABORT):
            return None
        first = self.producer_state.complete_transaction(h, coordinator_epoch)
        if kind == rec.CONTROL_COMMIT:
            return None
        unstable = self.producer_state.first_unstable_offset()
        return AbortedTxn(h.producer_id, first, h.base_offset, h.next_offset if unstable is None else unstable)

    # ================================================================ replication (a follower's log)

    def append_replicated(self, records, now_ms: int | None = None) -> int:
        """A follower's append of batches fetched from its leader (Kafka's appendAsFollower): kept
        exactly as the leader wrote them -- offsets, leader epochs, producer fields -- and accounted
        like any stored batch (producer state, transactions, epochs). Each batch's CRC is checked (a
        batch corrupted on the way is not stored: CORRUPT_MESSAGE); batches the log already has (a
        refetch) are skipped. Returns the log end offset after it."""
        if self.offline is not None:
            raise StorageError(self.offline)
        mv = records if isinstance(records, memoryview) else memoryview(records)
        leo = self.log_end_offset
        skip = 0
        for h in rec.iter_batches(mv, check=False):
            if h.next_offset > leo:
                break
            skip = h.position + h.size
        mv = mv[skip:]
        headers = list(rec.iter_batches(mv))  # CRC-checked
        if not headers:
            return leo
        if headers[0].base_offset < leo:
            raise ApiError(ErrorCode.CORRUPT_MESSAGE,
                           f"replicated batch at {headers[0].base_offset} overlaps the log end {leo}")
        mv = mv[:headers[-1].position + headers[-1].size]
        now = wall_clock_ms() if now_ms is None else now_ms
        max_ts = max(h.max_timestamp for h in headers)
        self._store_and_account(mv, headers, headers[-1].last_offset, max_ts,
                                sum(h.record_count for h in headers), now)
        return self.log_end_offset

    def truncate_to(self, offset: int) -> int:
        """Remove the batch holding ``offset`` and everything after it: a follower's divergent tail,
        found with OffsetForLeaderEpoch (KIP-101). The epochs starting there are forgotten and the
        producer state is rebuilt from the batches that stay (truncation is rare: a leader change
        that found a divergence). Returns the new log end offset."""
        if offset >= self.log_end_offset:
            return self.log_end_offset
        self.truncations += 1
        try:
            self._truncate_batches_from(max(offset, self.log_start_offset))
            leo = self.log_end_offset
            self.epochs.truncate_from_end(leo)
        except OSError as exc:
            self.offline = f"{self._name} is offline after a failed truncation: {exc}"
            raise StorageError(f"could not truncate {self._name}: {exc}") from exc
        self.producer_state = ProducerStateManager()
        for h, batch in self._stored_batches():
            if not h.has_producer_id:
                continue
            if h.is_control:
                self._close_transaction(h, batch())
            else:
                self.producer_state.update(h)
        self.producer_state.forget_before(self.log_start_offset)
        return leo

    def _truncate_batches_from(self, offset: int) -> None:
        """Drop the batch holding ``offset`` and all later ones (and their aborted-transaction entries)."""
        raise NotImplementedError

    def _stored_batches(self):
        """(header, a function returning the batch's bytes) of every stored batch, in offset order."""
        raise NotImplementedError

    # ================================================================ read

    def read(self, offset: int, max_bytes: int, *, min_one_batch: bool = True,
             max_offset: int | None = None) -> ReadResult:
        """The whole batches from the one holding ``offset``, up to ``max_bytes`` (but at least one
        batch when ``min_one_batch``, KIP-74). ``max_offset`` (exclusive, default the high
        watermark) bounds what is returned, for read_committed's last stable offset.

        Raises ApiError(OFFSET_OUT_OF_RANGE) unless log_start_offset <= offset <= log_end_offset.
        """
        leo = self.log_end_offset
        hw = self.high_watermark
        result = ReadResult([], hw, self.log_start_offset, leo)
        if offset < self.log_start_offset or offset > leo:
            raise ApiError(ErrorCode.OFFSET_OUT_OF_RANGE,
                           f"offset {offset} is out of range [{self.log_start_offset}, {leo}]")
        upper = hw if max_offset is None else min(max_offset, hw)
        if offset < upper and max_bytes >= 0:
            self._read_batches(result, offset, max_bytes, min_one_batch, upper)
        return result

    def read_bytes(self, offset: int, max_bytes: int, **kw) -> bytes:
        return self.read(offset, max_bytes, **kw).to_bytes()

    # ================================================================ offsets lookups

    def list_offsets(self, timestamp: int, read_committed: bool = False) -> TimestampOffset:
        """ListOffsets for one partition: -1 latest, -2 earliest (-4 earliest local), -3 max
        timestamp, -5 latest tiered and -6 earliest pending upload (none: no tiered storage), else the first offset whose timestamp >= ``timestamp``.
        Returns TimestampOffset(-1, -1, -1) when no record qualifies. With ``read_committed`` the
        latest offset is the last stable offset, and a record found by timestamp must lie below it."""
        found = self._list_offsets(timestamp, read_committed)
        if read_committed and timestamp not in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP, LATEST_TIMESTAMP) \
                and found.offset >= self.last_stable_offset:
            return _NOT_FOUND
        return found

    def _list_offsets(self, timestamp: int, read_committed: bool) -> TimestampOffset:
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            first = self.epochs.epochs[0] if self.epochs.epochs and self.epochs.starts[0] <= self.log_start_offset else -1
            if timestamp == EARLIEST_LOCAL_TIMESTAMP:
                first = self.epochs.epoch_for_offset(self.log_start_offset)
                first = -1 if first is None else first
            return TimestampOffset(-1, self.log_start_offset, first)
        if timestamp == LATEST_TIMESTAMP:
            latest = self.epochs.latest_epoch
            end = self.last_stable_offset if read_committed else self.log_end_offset
            return TimestampOffset(-1, end, -1 if latest is None else latest)
        if timestamp in (LATEST_TIERED_TIMESTAMP, EARLIEST_PENDING_UPLOAD_TIMESTAMP):
            return _NOT_FOUND
        if timestamp == MAX_TIMESTAMP:
            return self._max_timestamp_offset()
        if timestamp < 0:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"invalid timestamp {timestamp}")
        return self.offset_for_timestamp(timestamp) or _NOT_FOUND

    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (leader epoch, end offset); (-1, -1) if unknown."""
        return self.epochs.end_offset_for(leader_epoch, self.log_end_offset)

    @property
    def latest_epoch(self) -> int | None:
        """The newest leader epoch the log's batches (or a leadership) carry, None before any."""
        return self.epochs.latest_epoch

    def assign_leader_epoch(self, epoch: int) -> None:
        """On becoming leader with ``epoch``, as Kafka does: the epoch starts at the log end offset."""
        if self.epochs.latest_epoch is None or epoch > self.epochs.latest_epoch:
            self.epochs.assign(epoch, self.log_end_offset)

    # ================================================================ deletion

    def delete_records_before(self, offset: int, now_ms: int | None = None) -> int:
        """DeleteRecords: move the log start offset to ``offset`` (-1: the high watermark) and delete
        what lies wholly below it. Returns the new log start offset (the low watermark).
        Raises OFFSET_OUT_OF_RANGE if ``offset`` is beyond the high watermark."""
        hw = self.high_watermark
        if offset == -1:
            offset = hw
        if offset < 0 or offset > hw:
            raise ApiError(ErrorCode.OFFSET_OUT_OF_RANGE, f"cannot delete records before {offset}: high watermark is {hw}")
        if offset > self.log_start_offset:
            try:
                self._advance_log_start(offset)
                self._delete_below_log_start(now_ms)
            except OSError as exc:
                raise StorageError(f"could not delete records of {self._name}: {exc}") from exc
        return self.log_start_offset

    def _advance_log_start(self, offset: int) -> None:
        """The log now starts at ``offset``: epochs and producers below it are forgotten."""
        if offset > self.log_start_offset:
            self.log_start_offset = offset
            self.epochs.truncate_from_start(offset)
            self.producer_state.forget_before(offset)
