"""LeaderFetcher: a follower's replication from one leader broker (Kafka's ReplicaFetcherThread).

One task per leader this broker follows partitions of, over one BrokerChannel to it:

1. **Truncation first** (KIP-101). A partition added with a new leader epoch is not fetched before
   its divergent tail, if any, is cut: OffsetForLeaderEpoch asks the leader where our latest epoch
   ended there; when the leader knows that epoch the log is cut at min(its end offset, ours); when it
   only knows an older one, at min(its end offset, where that older epoch ends in our log). Never by
   the high watermark alone (which can lose acknowledged records after a double failure).
2. **Fetch**: one Fetch (replica id = ours) for every followed partition from our log end offset,
   long-polling ``replica.fetch.wait.max.ms`` on the leader; the batches are appended unchanged
   (Partition.append_replicated; the follower's high watermark follows the leader's). The next fetch's
   offset is what tells the leader we have them (its high watermark and ISR move on that).

An answer for a partition is applied only if we still follow it from this leader at the epoch the
request carried: leadership may have moved while the request was in flight (a paused or partitioned
old leader's late answer is dropped, so nothing it appended after losing leadership is ever taken).
Errors per partition: FENCED_LEADER_EPOCH / NOT_LEADER_OR_FOLLOWER / UNKNOWN_LEADER_EPOCH /
UNKNOWN_TOPIC_OR_PARTITION mostly mean the leader has not seen the new state yet (each broker
follows the coordination store on its own, so a follower may hear of a leader change first): the
partition is asked again after 50 ms, then twice as long each time up to ``replica.fetch.backoff.ms``
(a full backoff at the first error was a second of stalled high watermark at every failover);
OFFSET_OUT_OF_RANGE truncates again.

**Never a stall.** Any loss of the connection (refused, reset, closed by the leader, no answer within
``replica.socket.timeout.ms``) and any unexpected error reconnects, after the same growing backoff;
the first failure is logged at INFO, the repeats at DEBUG, and the recovery at INFO. A partition
newly followed from this leader (a leader change) interrupts a backoff and an in-flight long poll
(which is abandoned with its connection: a new one costs less than waiting up to
``replica.fetch.wait.max.ms`` before the new partition is asked for).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import trio

from ..partitions import Partition
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import FetchRequest, OffsetForLeaderEpochRequest
from .client import BrokerChannel, ChannelClosed

log = logging.getLogger("kbroker.replication")

FETCH_VERSION = 12  # flexible, topic names, replica id as a field
OFFSET_FOR_LEADER_EPOCH_VERSION = 4
_RETRIED = {ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.UNKNOWN_LEADER_EPOCH,
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.KAFKA_STORAGE_ERROR, ErrorCode.REPLICA_NOT_AVAILABLE,
            ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.UNKNOWN_TOPIC_ID}


@dataclass(frozen=True, slots=True)
class FetcherConfig:
    wait_max_ms: int = 500
    min_bytes: int = 1
    max_bytes: int = 1048576  # per partition
    response_max_bytes: int = 10485760
    backoff_ms: int = 1000
    socket_timeout_ms: int = 30000

    @classmethod
    def from_broker_config(cls, config) -> FetcherConfig:
        return cls(config.get("replica.fetch.wait.max.ms"), config.get("replica.fetch.min.bytes"),
                   config.get("replica.fetch.max.bytes"), config.get("replica.fetch.response.max.bytes"),
                   config.get("replica.fetch.backoff.ms"), config.get("replica.socket.timeout.ms"))


FIRST_RETRY_S = 0.05
CONNECT_TIMEOUT_S = 10.0  # Kafka's socket.connection.setup.timeout.ms


def retry_delay(failures: int, backoff_ms: int) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 50 ms, doubling, at most the backoff."""
    return min(FIRST_RETRY_S * 2 ** max(failures - 1, 0), backoff_ms / 1000)


@dataclass(slots=True)
class _Followed:
    partition: Partition
    leader_epoch: int
    truncated: bool = False
    retry_at: float = 0.0
    failures: int = 0  # errors in a row, for the retry delay

    def failed(self, backoff_ms: int) -> None:
        self.failures += 1
        self.retry_at = trio.current_time() + retry_delay(self.failures, backoff_ms)

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = 0.0


class _NewPartition(Exception):
    """A partition was added while a request was in flight: the request is abandoned."""


class LeaderFetcher:
    def __init__(self, local_id: int, leader_id: int, address: Callable[[int], tuple[str, int] | None],
                 config: FetcherConfig):
        self.local_id = local_id
        self.leader_id = leader_id
        self._address = address  # the leader's host and port, from the live brokers
        self.config = config
        self.followed: dict[tuple[str, int], _Followed] = {}
        self._changed = trio.Event()  # set when a partition is newly followed
        self._failures = 0  # connection failures in a row
        self._scope = trio.CancelScope()
        self._in_flight: trio.CancelScope | None = None  # the request being answered

    # ------------------------------------------------------------------------------ the partition set

    def follow(self, partition: Partition) -> None:
        key = (partition.topic, partition.index)
        current = self.followed.get(key)
        if current is None or current.leader_epoch != partition.leader_epoch:
            self.followed[key] = _Followed(partition, partition.leader_epoch)
            self._wake()

    def unfollow(self, topic: str, index: int) -> None:
        self.followed.pop((topic, index), None)

    def stop(self) -> None:
        """Stop fetching at once (controlled shutdown); ``run`` returns."""
        self.followed.clear()
        self._scope.cancel()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
        if self._in_flight is not None:
            self._in_flight.cancel()

    def _current(self, key: tuple[str, int], epoch: int) -> _Followed | None:
        """The followed entry if we still follow it from this leader at ``epoch``."""
        entry = self.followed.get(key)
        if entry is None or entry.leader_epoch != epoch:
            return None
        p = entry.partition
        if p.is_leader or p.leader_id != self.leader_id or p.leader_epoch != epoch:
            return None
        return entry

    # ------------------------------------------------------------------------------ the task

    async def run(self) -> None:
        with self._scope:
            while True:
                while not self.followed:
                    await self._changed.wait()
                await self._connect_and_replicate()

    async def _connect_and_replicate(self) -> None:
        address = self._address(self.leader_id)
        if address is None:
            await self._connection_failed("it is not registered")
            return
        try:
            with trio.fail_after(CONNECT_TIMEOUT_S):  # a paused leader's full backlog drops our SYN
                channel = await BrokerChannel.connect(*address, client_id=f"broker-{self.local_id}-fetcher")
        except trio.TooSlowError:
            await self._connection_failed(f"no connection in {CONNECT_TIMEOUT_S:g} s")
            return
        except ChannelClosed as exc:
            await self._connection_failed(f"cannot connect: {exc}")
            return
        try:
            await self._replicate(channel)
        except _NewPartition:
            log.debug("broker %d: a new partition to fetch from leader %d; reconnecting", self.local_id,
                      self.leader_id)
        except ChannelClosed as exc:
            await self._connection_failed(str(exc))
        except Exception as exc:  # a bug here must not stop replication: log it and start again
            log.exception("broker %d: fetching from leader %d failed", self.local_id, self.leader_id)
            await self._connection_failed(repr(exc))
        finally:
            await channel.aclose()

    async def _replicate(self, channel: BrokerChannel) -> None:
        while self.followed:
            await self._truncate(channel)
            if await self._fetch(channel):
                if self._failures:
                    log.info("broker %d is fetching from leader %d again (after %d failed attempt(s))",
                             self.local_id, self.leader_id, self._failures)
                    self._failures = 0
            else:
                await self._wait_for_a_ready_partition()

    async def _connection_failed(self, why: str) -> None:
        """Log the first failure of a series at INFO, then wait before trying again (a newly followed
        partition cuts the wait short: the cluster says the leader is there)."""
        if not self.followed:  # nothing left to fetch from it (it shut down after its leaderships moved)
            log.debug("broker %d: connection to leader %d ended (%s)", self.local_id, self.leader_id, why)
            return
        self._failures += 1
        level = logging.INFO if self._failures == 1 else logging.DEBUG
        log.log(level, "broker %d lost its connection to leader %d (%s); retrying", self.local_id, self.leader_id,
                why)
        with trio.move_on_after(retry_delay(self._failures, self.config.backoff_ms)):
            await self._changed.wait()

    async def _wait_for_a_ready_partition(self) -> None:
        """Every partition waits for its retry: until the first is due, or a new one is followed."""
        soonest = trio.current_time() + 0.005  # never a busy loop, whatever the entries say
        due = max(min((f.retry_at for f in self.followed.values()), default=soonest), soonest)
        with trio.move_on_at(due):
            await self._changed.wait()

    async def _request(self, channel: BrokerChannel, body, version: int, extra_ms: int = 0):
        """The answer; ChannelClosed without one in time, _NewPartition if a partition is newly
        followed meanwhile (``follow`` cancels the request)."""
        timeout_ms = self.config.socket_timeout_ms + extra_ms
        with trio.move_on_after(timeout_ms / 1000):
            with trio.CancelScope() as self._in_flight:
                return await channel.request(body, version)
            raise _NewPartition()
        raise ChannelClosed(f"no answer from leader {self.leader_id} in {timeout_ms} ms")

    # ------------------------------------------------------------------------------ truncation

    async def _truncate(self, channel: BrokerChannel) -> None:
        now = trio.current_time()
        pending = [f for f in self.followed.values() if not f.truncated and f.retry_at <= now]
        if not pending:
            return
        asked = {}
        topics: dict[str, list] = {}
        for entry in pending:
            latest = entry.partition.log.latest_epoch
            if latest is None or entry.partition.log_end_offset == 0:
                entry.truncated = True  # nothing of ours to diverge
                continue
            key = (entry.partition.topic, entry.partition.index)
            asked[key] = (entry.leader_epoch, latest)
            topics.setdefault(key[0], []).append(OffsetForLeaderEpochRequest.OffsetForLeaderPartition(
                partition=key[1], current_leader_epoch=entry.leader_epoch, leader_epoch=latest))
        if not topics:
            return
        request = OffsetForLeaderEpochRequest(replica_id=self.local_id, topics=[
            OffsetForLeaderEpochRequest.OffsetForLeaderTopic(topic=name, partitions=parts)
            for name, parts in topics.items()])
        response = await self._request(channel, request, OFFSET_FOR_LEADER_EPOCH_VERSION)
        unanswered = set(asked)
        for topic in response.topics:
            for answer in topic.partitions:
                key = (topic.topic, answer.partition)
                if key not in asked:
                    continue
                unanswered.discard(key)
                epoch, ours = asked[key]
                entry = self._current(key, epoch)
                if entry is None:
                    continue
                if answer.error_code != ErrorCode.NONE:
                    log.debug("partition %s-%d: leader %d answered OffsetForLeaderEpoch with %s", key[0], key[1],
                              self.leader_id, ErrorCode(answer.error_code).name)
                    entry.failed(self.config.backoff_ms)
                    continue
                self._cut(entry, ours, answer.leader_epoch, answer.end_offset)
                entry.succeeded()
        for key in unanswered:  # not in the answer: asked again later, never in a tight loop
            entry = self._current(key, asked[key][0])
            if entry is not None:
                entry.failed(self.config.backoff_ms)

    def _cut(self, entry: _Followed, ours: int, leader_epoch: int, end_offset: int) -> None:
        partition = entry.partition
        leo = partition.log_end_offset
        if leader_epoch < 0 or end_offset < 0:
            target = partition.high_watermark  # the leader knows no epoch of ours (Kafka's fallback)
        elif leader_epoch == ours:
            target = min(end_offset, leo)
        else:
            _, our_end = partition.log.end_offset_for_epoch(leader_epoch)
            target = min(end_offset, our_end if our_end >= 0 else leo)
        if target < leo:
            log.warning("partition %s-%d: truncating from %d to %d to follow leader %d at epoch %d (KIP-101)",
                        partition.topic, partition.index, leo, target, self.leader_id, entry.leader_epoch)
            partition.truncate_to(target)
        entry.truncated = True

    # ------------------------------------------------------------------------------ fetching

    async def _fetch(self, channel: BrokerChannel) -> bool:
        """One fetch of every ready partition; False when none was ready."""
        now = trio.current_time()
        ready = [f for f in self.followed.values() if f.truncated and f.retry_at <= now]
        if not ready:
            return False
        epochs = {}
        topics: dict[str, list] = {}
        for entry in ready:
            p = entry.partition
            epochs[(p.topic, p.index)] = entry.leader_epoch
            topics.setdefault(p.topic, []).append(FetchRequest.FetchPartition(
                partition=p.index, current_leader_epoch=entry.leader_epoch, fetch_offset=p.log_end_offset,
                log_start_offset=p.log_start_offset, partition_max_bytes=self.config.max_bytes))
        request = FetchRequest(replica_id=self.local_id, max_wait_ms=self.config.wait_max_ms,
                               min_bytes=self.config.min_bytes, max_bytes=self.config.response_max_bytes,
                               isolation_level=0, session_id=0, session_epoch=-1,
                               topics=[FetchRequest.FetchTopic(topic=name, partitions=parts)
                                       for name, parts in topics.items()],
                               forgotten_topics_data=[], rack_id="")
        response = await self._request(channel, request, FETCH_VERSION, extra_ms=self.config.wait_max_ms)
        if response.error_code != ErrorCode.NONE:
            raise ChannelClosed(f"fetch refused: {ErrorCode(response.error_code).name}")
        for topic in response.responses:
            for data in topic.partitions:
                key = (topic.topic, data.partition_index)
                entry = self._current(key, epochs.get(key, -2))
                if entry is not None:
                    self._apply(entry, data)
        return True

    def _apply(self, entry: _Followed, data) -> None:
        partition = entry.partition
        code = data.error_code
        if code == ErrorCode.NONE:
            records = data.records if data.records is not None else b""
            try:
                partition.append_replicated(records, data.high_watermark)
                entry.succeeded()
            except ApiError as exc:
                log.error("partition %s-%d: could not append what leader %d sent: %s", partition.topic,
                          partition.index, self.leader_id, exc)
                entry.failed(self.config.backoff_ms)
        elif code == ErrorCode.OFFSET_OUT_OF_RANGE:
            entry.truncated = False  # our end is past the leader's: find the divergence again
            entry.failed(self.config.backoff_ms)
        else:
            level = logging.DEBUG if code in _RETRIED else logging.WARNING
            log.log(level, "partition %s-%d: leader %d answered %s", partition.topic, partition.index,
                    self.leader_id, ErrorCode(code).name)
            entry.failed(self.config.backoff_ms)
