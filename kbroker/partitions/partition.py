"""Partition: one partition this broker holds a replica of, as the handlers see it.

It holds what Kafka's Partition holds: the leader epoch, the replicas and the ISR, and the offsets a
client is told -- log start offset, log end offset (LEO) and high watermark (HW, the end of what
every in-sync replica has, so what consumers may read and what acks=-1 waits for). Its log
(kbroker.log) stores the batches; the log keeps its own notion of the high watermark (its end), but
handlers trust this one.

A replica is the **leader** or a **follower** (``become_leader`` / ``become_follower``, driven by the
cluster's partition state, kbroker.replication; a broker alone leads every partition from the
start and is its whole ISR).

- Leader: appends (Produce, the coordinators' records, transaction markers) are stamped with its
  leader epoch. The followers' fetches (``follower_fetch``) report their log end offsets; the HW is
  the minimum over the ISR (kbroker.partitions.replicas) and wakes acks=-1 waiters and long-polling
  consumers when it moves. While the ISR is the leader alone the HW is simply the LEO. ISR changes
  (a follower caught up, one lagging past replica.lag.time.max.ms) are proposed to ``isr_changes``
  and adopted once recorded (``isr_recorded``). acks=-1 with fewer in-sync replicas than
  min.insync.replicas is NOT_ENOUGH_REPLICAS before the append.
- Follower: serves no client (NOT_LEADER_OR_FOLLOWER for Produce, Fetch, ListOffsets,
  DeleteRecords); its fetcher appends the leader's batches unchanged (``append_replicated``, the HW
  following the leader's) and cuts a divergent tail (``truncate_to``, after OffsetForLeaderEpoch).
- A client's current leader epoch newer than ours is UNKNOWN_LEADER_EPOCH, older is
  FENCED_LEADER_EPOCH (``check_leader_epoch``).
- Reads (Fetch) and ListOffsets stop at the HW, or at the last stable offset for read_committed; a
  follower's fetch reads up to the LEO.
- Storage errors are mapped here: an OSError or the log's StorageError (disk full, I/O error) is
  KAFKA_STORAGE_ERROR for this partition, logged once, as Kafka answers, and the broker serves the others.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import trio

from ..log import (EARLIEST_LOCAL_TIMESTAMP, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, ORIGIN_CLIENT, AppendResult, Log,
                   ReadResult, StorageError, TimestampOffset)
from ..protocol.errors import ApiError, ErrorCode
from . import coordinator_writes
from .replicas import FollowerState, high_watermark, lagging

logger = logging.getLogger("kbroker.partitions")

NO_EPOCH = -1


def storage_error(topic: str, index: int, exc: OSError | StorageError) -> ApiError:
    """KAFKA_STORAGE_ERROR for an OSError met on a partition's log, or the log's own StorageError
    (logged: an operator must act)."""
    logger.error("Storage error on partition %s-%d: %s", topic, index, exc)
    return ApiError(ErrorCode.KAFKA_STORAGE_ERROR, f"storage error on {topic}-{index}: {exc}")


class IsrChanges(Protocol):
    """Where a leader sends the ISR it wants recorded (kbroker.replication writes it)."""

    def propose(self, partition: Partition, isr: tuple[int, ...]) -> None: ...


LEADER, FOLLOWER, GONE = "leader", "follower", "gone"  # gone: its topic was deleted, or the replica moved away


def _now_ms() -> int:
    return int(time.time() * 1000)


class Partition:
    __slots__ = ("topic", "index", "log", "leader_epoch", "_high_watermark_moved", "local_id", "role", "leader_id",
                 "replicas", "isr", "_hw", "_alone", "followers", "isr_changes", "isr_change_pending", "notifier",
                 "_gone_error")

    def __init__(self, topic: str, index: int, log: Log, leader_epoch: int, *, local_id: int = -1,
                 notifier=None):
        self.topic = topic
        self.index = index
        self.log = log
        self.leader_epoch = leader_epoch
        self._high_watermark_moved: trio.Event | None = None  # made only when someone waits
        self.local_id = local_id
        self.role = LEADER  # alone until the cluster says otherwise
        self.leader_id = local_id
        self.replicas: tuple[int, ...] = (local_id,)
        self.isr: tuple[int, ...] = (local_id,)
        self._alone = True  # leader and the whole ISR: the HW is the LEO
        self._hw = 0  # the stored high watermark when not alone
        self.followers: dict[int, FollowerState] = {}
        self.isr_changes: IsrChanges | None = None
        self.isr_change_pending = False
        self.notifier = notifier  # woken when the HW moves (long-polling consumers)
        self._gone_error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    def __repr__(self) -> str:
        return f"Partition({self.topic}-{self.index}, {self.role}, epoch {self.leader_epoch}, isr {list(self.isr)})"

    # ------------------------------------------------------------------------------ leadership

    @property
    def is_leader(self) -> bool:
        return self.role == LEADER

    def become_leader(self, leader_epoch: int, replicas: tuple[int, ...] | None = None,
                      isr: tuple[int, ...] | None = None) -> None:
        """Lead with this epoch; as in Kafka it starts at the log end offset. Every follower's clock
        starts now, so none is dropped from the ISR for the time before we led."""
        was_leader_of_epoch = self.role == LEADER and self.leader_epoch == leader_epoch
        self.role = LEADER
        self.leader_id = self.local_id
        self.leader_epoch = leader_epoch
        self.log.assign_leader_epoch(leader_epoch)
        if replicas is not None:
            self.replicas = tuple(replicas)
        if not was_leader_of_epoch:
            now = _now_ms()
            self.followers = {r: FollowerState(last_caught_up_ms=now, last_fetch_ms=now)
                              for r in self.replicas if r != self.local_id}
            self.isr_change_pending = False
        self._set_isr(tuple(isr) if isr is not None else self.isr)

    def restore_high_watermark(self, high_watermark: int) -> None:
        """A replica in a cluster, before the cluster says whether it leads: its high watermark is
        the checkpointed one, not its log end (records after it may not be committed)."""
        self._alone = False
        self._hw = min(high_watermark, self.log.log_end_offset)

    def become_follower(self, leader_id: int, leader_epoch: int, replicas: tuple[int, ...],
                        isr: tuple[int, ...]) -> None:
        """Follow ``leader_id`` (-1: no leader now). Waiting acks=-1 producers are woken: they are
        answered NOT_LEADER_OR_FOLLOWER."""
        if self._alone:
            self._hw = self.log.log_end_offset
        self._alone = False
        self.role = FOLLOWER
        self.leader_id = leader_id
        self.leader_epoch = leader_epoch
        self.replicas, self.isr = tuple(replicas), tuple(isr)
        self.followers = {}
        self.isr_change_pending = False
        self._hw = min(self._hw, self.log.log_end_offset)
        self._wake_waiters()

    def forget(self, moved_away: bool = False) -> None:
        """Its log is deleted: requests still holding the partition (a long-polling fetch, a waiting
        acks=-1 produce) get UNKNOWN_TOPIC_OR_PARTITION instead of touching a closed log -- or, when
        the replica moved to other brokers (a reassignment), NOT_LEADER_OR_FOLLOWER, as Kafka
        answers there (the client looks the leader up again)."""
        self.role = GONE
        self._gone_error = ErrorCode.NOT_LEADER_OR_FOLLOWER if moved_away else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        self._alone = False
        self._wake_waiters()

    def check_leader_epoch(self, current_leader_epoch: int) -> None:
        """A client's view of the leader epoch (-1: none given) against ours."""
        if current_leader_epoch == NO_EPOCH or current_leader_epoch == self.leader_epoch:
            return
        if current_leader_epoch > self.leader_epoch:
            raise ApiError(ErrorCode.UNKNOWN_LEADER_EPOCH)
        raise ApiError(ErrorCode.FENCED_LEADER_EPOCH)

    def check_leader(self) -> None:
        if self.role == GONE:
            raise ApiError(self._gone_error, f"{self.topic}-{self.index} no longer exists here")
        if self.role != LEADER:
            raise ApiError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                           f"broker {self.local_id} is not the leader of {self.topic}-{self.index}")

    # ------------------------------------------------------------------------------ offsets

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def high_watermark(self) -> int:
        return self.log.log_end_offset if self._alone else self._hw

    @property
    def last_stable_offset(self) -> int:
        """The first offset of the earliest open transaction, else the high watermark."""
        return min(self.log.last_stable_offset, self.high_watermark)

    # ------------------------------------------------------------------------------ the ISR (leader)

    def _set_isr(self, isr: tuple[int, ...]) -> None:
        if self._alone:
            self._hw = self.log.log_end_offset
        self.isr = isr
        self._alone = self.role == LEADER and isr == (self.local_id,)
        self._advance_high_watermark()

    def follower_fetch(self, replica_id: int, fetch_offset: int, now_ms: int | None = None) -> None:
        """A follower fetched from ``fetch_offset``: it has everything before it. Moves the HW, and
        proposes the follower's return to the ISR once it has caught up."""
        self.check_leader()
        state = self.followers.get(replica_id)
        if state is None:
            if replica_id not in self.replicas:
                raise ApiError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                               f"broker {replica_id} is not a replica of {self.topic}-{self.index}")
            state = self.followers[replica_id] = FollowerState()
        now = _now_ms() if now_ms is None else now_ms
        leader_end = self.log.log_end_offset
        state.fetched(min(fetch_offset, leader_end), leader_end, now)
        if replica_id not in self.isr and not self.isr_change_pending and self.isr_changes is not None:
            epoch_start = self.log.end_offset_for_epoch(self.leader_epoch - 1)[1] if self.leader_epoch > 0 else 0
            if state.log_end_offset >= max(self.high_watermark, epoch_start):
                self._propose_isr(tuple(sorted((*self.isr, replica_id))))
        if not self._alone:
            self._advance_high_watermark()

    def shrink_lagging(self, max_lag_ms: int, now_ms: int | None = None) -> tuple[int, ...]:
        """Propose the ISR without the followers not caught up for ``max_lag_ms``; returns them."""
        if self.role != LEADER or self.isr_change_pending or self.isr_changes is None or self._alone:
            return ()
        out = lagging(self.isr, self.local_id, self.followers, self.log.log_end_offset,
                      _now_ms() if now_ms is None else now_ms, max_lag_ms)
        if out:
            self._propose_isr(tuple(r for r in self.isr if r not in out))
        return out

    def _propose_isr(self, isr: tuple[int, ...]) -> None:
        self.isr_change_pending = True
        self.isr_changes.propose(self, isr)

    def isr_recorded(self, isr: tuple[int, ...] | None) -> None:
        """The proposed ISR was recorded (or, None, refused: the state changed under us)."""
        self.isr_change_pending = False
        if isr is not None and self.role == LEADER:
            self._set_isr(isr)

    def _advance_high_watermark(self) -> None:
        if self._alone:
            self._wake_waiters()
            return
        hw = high_watermark(self.log.log_end_offset, self.isr, self.local_id, self.followers)
        if hw > self._hw:
            self._hw = hw
            self._wake_waiters()
            if self.notifier is not None:
                self.notifier.notify()

    def _wake_waiters(self) -> None:
        if self._high_watermark_moved is not None:
            self._high_watermark_advanced()

    # ------------------------------------------------------------------------------ follower

    def append_replicated(self, records, leader_high_watermark: int) -> int:
        """Append what the fetcher brought from the leader; our HW follows the leader's."""
        try:
            end = self.log.append_replicated(records) if len(records) else self.log.log_end_offset
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        self._hw = max(self._hw, min(leader_high_watermark, end))
        return end

    def truncate_to(self, offset: int) -> int:
        try:
            end = self.log.truncate_to(offset)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        self._hw = min(self._hw, end)
        return end

    # ------------------------------------------------------------------------------ append

    def append(self, records, *, origin: str = ORIGIN_CLIENT, acks: int = 1) -> AppendResult:
        """Append one Produce batch (or, for the broker's own records, several) stamped with our
        leader epoch. Raises ApiError: NOT_LEADER_OR_FOLLOWER on a follower, NOT_ENOUGH_REPLICAS for
        acks=-1 with fewer in-sync replicas than min.insync.replicas, the log's refusals, and
        KAFKA_STORAGE_ERROR for storage."""
        self.check_leader()
        if acks == -1 and len(self.isr) < self.log.config.min_insync_replicas:
            raise ApiError(ErrorCode.NOT_ENOUGH_REPLICAS,
                           f"The size of the current ISR {set(self.isr)} is insufficient to satisfy the "
                           f"min.isr requirement of {self.log.config.min_insync_replicas} for partition "
                           f"{self.topic}-{self.index}")
        try:
            result = self.log.append(records, leader_epoch=self.leader_epoch, origin=origin)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        self._advance_high_watermark()
        if origin != ORIGIN_CLIENT and not self._alone:  # a coordinator's write: its request waits for it
            self._written_for_followers()
            coordinator_writes.note(self, result.last_offset + 1)
        return result

    def _written_for_followers(self) -> None:
        """A write that no Produce request announces (a coordinator's records, a marker): wake the
        followers' long-polling fetches, or the write waits for their max wait to be replicated."""
        if self.notifier is not None:
            self.notifier.notify()

    def append_end_txn_marker(self, producer_id: int, producer_epoch: int, commit: bool, *,
                              coordinator_epoch: int = 0) -> AppendResult:
        """Write a transaction's COMMIT or ABORT marker (the transaction coordinator ends it)."""
        self.check_leader()
        try:
            result = self.log.append_end_txn_marker(producer_id, producer_epoch, commit,
                                                    coordinator_epoch=coordinator_epoch,
                                                    leader_epoch=self.leader_epoch)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        self._advance_high_watermark()
        if not self._alone:
            self._written_for_followers()
            coordinator_writes.note(self, result.last_offset + 1)
        return result

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        return self.log.has_ongoing_transaction(producer_id, producer_epoch)

    def _high_watermark_advanced(self) -> None:
        moved, self._high_watermark_moved = self._high_watermark_moved, None
        moved.set()

    async def wait_for_high_watermark(self, offset: int, deadline: float) -> bool:
        """Until the high watermark reaches ``offset`` (acks=-1: every in-sync replica has the
        records before it), or until the trio ``deadline``; True when it did. While the leader is
        its whole ISR an append has already advanced it, so this returns at once. Raises
        NOT_LEADER_OR_FOLLOWER when leadership is lost meanwhile (a new leader may not have the
        records: the producer must not take them as acknowledged), and
        NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR reached fell below min.insync.replicas."""
        epoch = self.leader_epoch
        with trio.move_on_at(deadline):
            while self.high_watermark < offset and self.role == LEADER and self.leader_epoch == epoch:
                if self._high_watermark_moved is None:
                    self._high_watermark_moved = trio.Event()
                await self._high_watermark_moved.wait()
        if self.role != LEADER or self.leader_epoch != epoch:
            self.check_leader()  # gone: UNKNOWN_TOPIC_OR_PARTITION
            raise ApiError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"leadership of {self.topic}-{self.index} moved")
        if self.high_watermark < offset:
            return False
        if len(self.isr) < self.log.config.min_insync_replicas:
            raise ApiError(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND)
        return True

    # ------------------------------------------------------------------------------ reads

    def read(self, offset: int, max_bytes: int, *, min_one_batch: bool = True,
             read_committed: bool = False) -> tuple[ReadResult, int]:
        """Whole batches from the one holding ``offset`` as file slices (for sendfile), up to
        ``max_bytes`` (at least one batch when ``min_one_batch``, KIP-74), stopping at the high
        watermark, or at the last stable offset for read_committed. Returns the read (its
        high_watermark ours, its log_start_offset as of now) and the last stable offset, which every
        fetch reports. OFFSET_OUT_OF_RANGE unless log start <= offset <= log end."""
        self.check_leader()
        high_watermark = self.high_watermark
        last_stable = self.last_stable_offset
        try:
            result = self.log.read(offset, max_bytes, min_one_batch=min_one_batch,
                                   max_offset=last_stable if read_committed else high_watermark)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        result.high_watermark = high_watermark
        return result, last_stable

    def read_for_follower(self, offset: int, max_bytes: int) -> ReadResult:
        """A follower's fetch: whole batches up to the log end (not the HW), with our HW."""
        self.check_leader()
        try:
            result = self.log.read(offset, max_bytes, min_one_batch=True)
        except (OSError, StorageError) as exc:
            raise storage_error(self.topic, self.index, exc) from exc
        result.high_watermark = self.high_watermark
        return result

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list:
        """The aborted transactions overlapping [fetch_offset, upper_bound) (for read_committed)."""
        return self.log.aborted_transactions(fetch_offset, upper_bound)

    def list_offsets(self, timestamp: int, read_committed: bool = False) -> TimestampOffset:
        """ListOffsets: -1 latest is the high watermark (the last stable offset for read_committed),
        and an offset found by timestamp must lie below it; the rest is the log's (kbroker.log)."""
        self.check_leader()
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
        self.check_leader()
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
