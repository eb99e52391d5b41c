"""The coordinator runtime: a state machine persisted in a compacted internal topic, as Kafka's group
and transaction coordinators keep theirs (and KIP-848 consumer groups and share groups will).

A coordinator owns one internal topic (`__consumer_offsets`, `__transaction_state`); each of its keys
(a group id, a transactional id) lives in one partition, Kafka's abs(key.hashCode()) % partitions.
The runtime gives the coordinator:
- the topic, created on first use without blocking the event loop (ensure_topic);
- append(key, records): the records (key/value; a None value is a tombstone) as one batch on the
  key's partition (kbroker.partitions, as clients' batches go), optionally transactional; the error
  code a client is told, mapped from the ApiError (a storage failure is KAFKA_STORAGE_ERROR there)
  in one place (coordinator_error);
- replay(): every batch of every partition, on load, as Kafka's coordinator does when it becomes
  leader: data records, and the COMMIT/ABORT markers of transactions, to the coordinator's callbacks;
- timers (kbroker.coordinator.timers), served by the nursery of run();
- ownership, in a cluster: the coordinator of a key is the leader of the key's partition. A broker
  alone owns every partition and replays them all at start; in a cluster (``owned`` a set) the
  coordinator loads a partition when this broker becomes its leader (``partition_led``: replay that
  partition, then the coordinator's own after-load step) and forgets its keys' state when another
  broker does; a request for a key not owned here is NOT_COORDINATOR (``owns``), so clients look the
  coordinator up again and find the new leader.

Ordering, and how it is guaranteed. Every coordinator operation — a request handler's call into the
coordinator, a timer's callback, the replay of the log — is a synchronous function on the trio
thread: it reads the state, appends its records (through the partition layer, whose append is
synchronous: the records are in the log when it returns) and applies the change, with no
scheduling point in between. So:
1. operations never interleave: each one runs whole, and the order of the records in a partition is
   the order in which their changes were applied in memory. This is Kafka's per-partition
   serialisation of coordinator operations, and more: one event loop orders every partition of
   every coordinator;
2. what a coordinator persists (committed offsets, a group's generation and assignment, a
   transaction's state) it applies only after append() returned NONE: a failed append is answered
   with an error and changes nothing that a replay would bring back;
3. requests reach the coordinator in the order their connections' tasks handle them, and one
   connection's in the order sent (a connection reads its next request only after answering the
   last, kbroker.server.connection);
4. with Timers(behind_received_requests=True) (the group coordinator's), a timer whose deadline
   passed runs behind the requests already received, as an expired timer's operation queues behind
   them in Kafka; the transaction coordinator's timeouts need no such order and run at once;
5. what must await (creating the internal topic) is done by the handler before it calls the
   coordinator; a request that waits for the group (a parked JoinGroup or SyncGroup) awaits an
   event that a later operation sets, it holds nothing meanwhile.
There is therefore no queue or lock per partition: with nothing awaited inside an operation there is
nothing to queue. An operation that must await inside (a replicated append waiting for acks) is
where a per-partition queue of operations comes in, here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import trio

from ..config import ConfigError
from ..log import ORIGIN_COORDINATOR
from ..protocol import records as rec
from ..protocol.errors import ApiError, ErrorCode
from .timers import Timers

if TYPE_CHECKING:
    from ..metadata import Topic
    from .services import Catalogue, EnsureTopic, PartitionLogs

log = logging.getLogger("kbroker.coordinator")

_LOAD_READ_BYTES = 5 * 1024 * 1024

# (partition, key, value, producer id of a transactional batch or None)
RecordCallback = Callable[[int, "bytes | None", "bytes | None", "int | None"], None]
# (partition, producer id, commit)
MarkerCallback = Callable[[int, int, bool], None]

# Kafka's mapping of a failed coordinator append to what the client is told (GroupCoordinatorService.
# normalizeException, TransactionStateManager's append callback)
_APPEND_ERRORS = {
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.REQUEST_TIMED_OUT: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_LEADER_OR_FOLLOWER: ErrorCode.NOT_COORDINATOR,
    ErrorCode.KAFKA_STORAGE_ERROR: ErrorCode.NOT_COORDINATOR,
    ErrorCode.MESSAGE_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
    ErrorCode.RECORD_LIST_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
    ErrorCode.INVALID_FETCH_SIZE: ErrorCode.UNKNOWN_SERVER_ERROR,
}


def coordinator_error(exc: ApiError | OSError, otherwise: int | None = None) -> int:
    """The code a client is told when a coordinator's append failed with ``exc``. An error not in
    Kafka's table is passed on as it is, or becomes ``otherwise`` when given (the transaction
    coordinator answers UNKNOWN_SERVER_ERROR; the group coordinator passes a transactional offset
    commit's producer errors on). An OSError (the disk) is the storage error: NOT_COORDINATOR."""
    code = exc.error_code if isinstance(exc, ApiError) else ErrorCode.KAFKA_STORAGE_ERROR
    mapped = _APPEND_ERRORS.get(code)
    if mapped is not None:
        return mapped
    return code if otherwise is None else otherwise


def java_string_hash(s: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: str, partitions: int) -> int:
    """Kafka's Utils.abs(key.hashCode()) % partitions: a group's or transactional id's partition."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


@dataclass(frozen=True, slots=True)
class InternalTopic:
    """A coordinator's internal topic: its name, the partition count it is created with (and the
    count keys hash over until it exists), and the configs it is created with."""
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


class CoordinatorRuntime:
    def __init__(self, internal_topic: InternalTopic, *, catalogue: Catalogue, ensure_topic: EnsureTopic,
                 partitions: PartitionLogs, timers: Timers | None = None,
                 unlisted_append_error: int | None = None):
        self.internal_topic = internal_topic
        self._catalogue = catalogue
        self._ensure_topic = ensure_topic
        self._partitions = partitions
        self.timers = timers if timers is not None else Timers()
        self._unlisted_append_error = unlisted_append_error
        # the internal topic's partitions led here (a cluster), None: all of them (a broker alone)
        self.owned: set[int] | None = None
        self._load_partition: Callable[[int], None] | None = None
        self._unload_partition: Callable[[int], None] | None = None

    # --------------------------------------------------------------------------- ownership
    def follow_leadership(self, load_partition: Callable[[int], None], unload_partition: Callable[[int], None]) -> None:
        """In a cluster: own only the partitions led here, loading and unloading them as leadership moves."""
        self.owned = set()
        self._load_partition, self._unload_partition = load_partition, unload_partition

    def owns(self, key: str) -> bool:
        return self.owned is None or self.partition_for(key) in self.owned

    def partition_led(self, partition: int, leader: bool) -> None:
        """This broker became (or stopped being) the leader of ``partition`` of the internal topic."""
        if self.owned is None:
            return
        if leader and partition not in self.owned:
            self.owned.add(partition)
            self._load_partition(partition)
            log.info("%s-%d: loaded, this broker coordinates its keys", self.internal_topic.name, partition)
        elif not leader and partition in self.owned:
            self.owned.discard(partition)
            self._unload_partition(partition)
            log.info("%s-%d: unloaded, another broker coordinates its keys", self.internal_topic.name, partition)

    @property
    def name(self) -> str:
        return self.internal_topic.name

    # --------------------------------------------------------------------------- the topic
    def topic(self) -> Topic | None:
        """The internal topic, or None until ensure_topic() created it."""
        return self._catalogue.get(self.internal_topic.name)

    async def ensure_topic(self) -> Topic:
        """The internal topic, created if missing (Kafka creates it on the first FindCoordinator). The
        handlers of requests that write to it call this first too (a client may skip FindCoordinator),
        so the coordinator's synchronous operations find it there. If it cannot be created (a full
        disk), ApiError(COORDINATOR_NOT_AVAILABLE): clients retry that, as Kafka answers while its
        internal topic is not there."""
        spec = self.internal_topic
        try:
            return await self._ensure_topic(spec.name, spec.partitions, dict(spec.configs))
        except ApiError as exc:
            log.warning("could not create %s: %s", spec.name, exc)
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"{spec.name} could not be created") from exc
        except ConfigError as exc:  # the broker's settings for it are not a valid topic config (an operator must act)
            log.error("cannot create %s with the broker's settings for it: %s", spec.name, exc)
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"{spec.name} could not be created: {exc}") from exc

    def partition_for(self, key: str) -> int:
        topic = self.topic()
        return partition_for(key, topic.partitions if topic is not None else self.internal_topic.partitions)

    # --------------------------------------------------------------------------- append
    def append(self, key: str, records: list[tuple[bytes, bytes | None]], *, producer_id: int = rec.NO_PRODUCER_ID,
               producer_epoch: int = rec.NO_PRODUCER_EPOCH, transactional: bool = False) -> int:
        """Append the records as one batch to the partition of ``key``; the error code (NONE when
        appended). Nothing to append is NONE. The caller applies its change only on NONE."""
        if not records:
            return ErrorCode.NONE
        topic = self.topic()
        if topic is None:  # handlers ensure it first; only a request racing its deletion gets here
            return coordinator_error(ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), self._unlisted_append_error)
        try:
            partition = self._partitions.partition(topic, partition_for(key, topic.partitions))
            batch = rec.build_batch([rec.Record(k, v) for k, v in records], producer_id=producer_id,
                                    producer_epoch=producer_epoch, transactional=transactional)
            partition.append(batch, origin=ORIGIN_COORDINATOR)
        except (ApiError, OSError) as exc:
            log.warning("could not write the records of %r to %s: %s", key, self.internal_topic.name, exc)
            return coordinator_error(exc, self._unlisted_append_error)
        return ErrorCode.NONE

    # --------------------------------------------------------------------------- replay
    def replay(self, on_record: RecordCallback, on_marker: MarkerCallback | None = None) -> int:
        """Read every partition of the internal topic from its start: each data record goes to
        ``on_record`` (with the producer id of a transactional batch, else None), each COMMIT/ABORT
        marker to ``on_marker``. The number of data records; 0 while the topic does not exist."""
        topic = self.topic()
        if topic is None or self.owned is not None:  # in a cluster partitions load as they are led
            return 0
        count = 0
        for partition in range(topic.partitions):
            count += self._replay_partition(topic, partition, on_record, on_marker)
        return count

    def replay_partition(self, partition: int, on_record: RecordCallback, on_marker: MarkerCallback | None = None) -> int:
        """``replay`` for one partition (loading it on becoming its leader)."""
        topic = self.topic()
        return 0 if topic is None else self._replay_partition(topic, partition, on_record, on_marker)

    def _replay_partition(self, topic: Topic, partition: int, on_record: RecordCallback,
                          on_marker: MarkerCallback | None) -> int:
        partition_log = self._partitions.partition_log(topic, partition)
        offset, end = partition_log.log_start_offset, partition_log.log_end_offset
        count = 0
        while offset < end:
            data = memoryview(partition_log.read_bytes(offset, _LOAD_READ_BYTES))
            if not data:
                break
            last = offset
            for header in rec.iter_batches(data, check=False):
                last = header.next_offset
                batch = data[header.position:header.position + header.size]
                if header.is_control:
                    if on_marker is not None and header.has_producer_id:
                        try:
                            kind = rec.control_record_type(batch)
                        except ApiError:
                            continue
                        if kind in (rec.CONTROL_COMMIT, rec.CONTROL_ABORT):
                            on_marker(partition, header.producer_id, kind == rec.CONTROL_COMMIT)
                    continue
                producer_id = header.producer_id if header.is_transactional else None
                for record in rec.decode_batch_records(batch, None):
                    on_record(partition, record.key, record.value, producer_id)
                    count += 1
            if last <= offset:
                break
            offset = last
        return count

    # --------------------------------------------------------------------------- lifecycle
    async def run(self, load: Callable[[], None], *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve the timers from a nursery of this task, load (replay the log), report started, and
        go on serving timers until cancelled."""
        async with trio.open_nursery() as nursery:
            self.timers.attach(nursery)
            load()
            task_status.started()
            await trio.sleep_forever()
