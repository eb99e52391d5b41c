"""The transaction coordinator of a single broker (KIP-98, with KIP-360 epoch bumps and KIP-890
partition verification), speaking both transaction protocol versions. Version 1: the client adds
partitions explicitly (AddPartitionsToTxn, AddOffsetsToTxn) and ends with EndTxn below v5. Version 2
(KIP-890 part 2, what a client uses when transaction.version 2 is finalized): the partition leader
adds a partition when the producer's first transactional batch arrives there (Produce v12+,
TxnOffsetCommit v5+), and every EndTxn v5 bumps the producer's epoch: the Prepare state is written
with the next epoch, the markers carry it, and the client gets it back, so a late batch of the
ended transaction is fenced by its old epoch (the ordering fix TV2 exists for). An exhausted epoch
moves the producer to a new producer id (the prepare record names it, the completion switches to it).
A retried EndTxn v5 (the old epoch, the transaction already ended) is answered as the first one was.

Its state lives in `__transaction_state` (Kafka's record format, 50 compacted partitions, created
on first use) through the coordinator runtime (kbroker.coordinator), which also orders the
operations: every state change is synchronous, first appended and only then applied in memory, so a
failed append changes nothing. Ending a transaction writes PrepareCommit/PrepareAbort, then the
COMMIT/ABORT marker to every partition of the transaction, then CompleteCommit/CompleteAbort. The
markers go through a MarkerSender (kbroker.txn.markers): a broker alone writes them at once, a
cluster's sender delivers them to the partitions' leaders in the background and the transaction
completes when all are written, if it is still that Prepare state here. A marker written to an
internal topic is announced to its owner (the coordinator is given a listener per topic: the group
coordinator's, for `__consumer_offsets`, commits or drops the transaction's pending offsets of the
groups in that partition); the transaction coordinator knows no other coordinator. At load the log
is replayed: a transaction found in a Prepare state gets its markers and completes, an Ongoing one
gets its timeout armed again.

Timeouts: each Ongoing transaction has one timer of the runtime (a trio cancel scope whose deadline
is its start plus its transaction.timeout.ms); when it fires, the producer's epoch is bumped
(fencing it) and the transaction is aborted with the new epoch, as Kafka does. Nothing polls.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

import trio

from ..coordinator import CoordinatorRuntime, InternalTopic
from ..protocol.errors import ApiError, ErrorCode, ProtocolError
from . import records as fmt
from .markers import LocalMarkers, MarkerListener, MarkerSender, MarkerWriter, TopicPartition, TxnMarkers
from .records import (COMPLETE_ABORT, COMPLETE_COMMIT, DEAD, EMPTY, ONGOING, PREPARE_ABORT, PREPARE_COMMIT,
                      PREPARE_EPOCH_FENCE, STATE_NAMES)

if TYPE_CHECKING:
    from ..config.broker import BrokerConfig
    from ..coordinator.services import AppendListener, Catalogue, EnsureTopic, PartitionLogs
    from .producer_ids import ProducerIdManager

log = logging.getLogger("kbroker.txn")

TRANSACTION_STATE_TOPIC = "__transaction_state"
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
MAX_EPOCH = 32767



def now_ms() -> int:
    return int(time.time() * 1000)


def epoch_exhausted(epoch: int) -> bool:
    return epoch >= MAX_EPOCH - 1


@dataclass(slots=True)
class TransactionMetadata:
    transactional_id: str
    producer_id: int
    last_producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    timeout_ms: int = 60000
    state: int = EMPTY
    partitions: frozenset = field(default_factory=frozenset)
    start_ms: int = -1
    last_update_ms: int = -1
    next_producer_id: int = NO_PRODUCER_ID  # TV2: the id an exhausted epoch moves to on completion
    client_version: int = 0  # the transaction version the last transaction was run with

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]


@dataclass(frozen=True, slots=True)
class TransactionConfig:
    """The broker configs the transaction coordinator reads (all read-only in Kafka)."""
    max_timeout_ms: int
    state_partitions: int
    state_segment_bytes: int

    @classmethod
    def from_broker_config(cls, config: BrokerConfig) -> TransactionConfig:
        return cls(max_timeout_ms=config.get("transaction.max.timeout.ms"),
                   state_partitions=config.get("transaction.state.log.num.partitions"),
                   state_segment_bytes=config.get("transaction.state.log.segment.bytes"))


class TransactionCoordinator:
    def __init__(self, config: TransactionConfig, *, catalogue: Catalogue, ensure_topic: EnsureTopic,
                 partitions: PartitionLogs, producer_ids: ProducerIdManager, appends: AppendListener,
                 marker_listeners: Mapping[str, MarkerListener] | None = None,
                 marker_sender: Callable[[MarkerWriter], MarkerSender] = LocalMarkers):
        self.max_timeout_ms = config.max_timeout_ms
        self.runtime = CoordinatorRuntime(
            InternalTopic(TRANSACTION_STATE_TOPIC, config.state_partitions, {
                "cleanup.policy": "compact",
                "compression.type": "uncompressed",
                "segment.bytes": str(config.state_segment_bytes),
                "unclean.leader.election.enable": "false",
            }),
            catalogue=catalogue, ensure_topic=ensure_topic, partitions=partitions,
            unlisted_append_error=ErrorCode.UNKNOWN_SERVER_ERROR)
        self.timers = self.runtime.timers
        self._partitions = partitions
        self._producer_ids = producer_ids
        # the owners of internal topics a transaction may write to (the group coordinator's offsets)
        # hear of each marker written there, by this broker's writer (kbroker.txn.markers)
        self.marker_writer = MarkerWriter(catalogue=catalogue, partitions=partitions, appends=appends,
                                          listeners=marker_listeners)
        self._marker_sender = marker_sender(self.marker_writer)  # a cluster's delivers them in the background
        self.txns: dict[str, TransactionMetadata] = {}
        self.loaded = False

    # =========================================================================== lifecycle
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load the transaction log, finish what a previous run left half done, serve timeouts."""
        await self.runtime.run(self.load, task_status=task_status)

    def state_topic(self):
        """__transaction_state, or None until ensure_state_topic() created it."""
        return self.runtime.topic()

    async def ensure_state_topic(self):
        """__transaction_state, created if missing (on the first FindCoordinator for a transactional id,
        as Kafka does, or first use), without blocking the event loop."""
        return await self.runtime.ensure_topic()

    def partition_for(self, transactional_id: str) -> int:
        return self.runtime.partition_for(transactional_id)

    def load(self) -> None:
        count = self.runtime.replay(self._replay_record)
        if count:
            log.info("loaded %d transactional ids from %d records of %s", len(self.txns), count,
                     TRANSACTION_STATE_TOPIC)
        self._resume(list(self.txns.values()))
        self.loaded = True

    def load_partition(self, partition: int) -> None:
        """In a cluster, on becoming leader of a partition of __transaction_state: its transactional ids,
        and what their previous coordinator left half done."""
        count = self.runtime.replay_partition(partition, self._replay_record)
        loaded = [m for m in self.txns.values() if self.partition_for(m.transactional_id) == partition]
        log.info("loaded %d transactional ids from %d records of %s-%d", len(loaded), count,
                 TRANSACTION_STATE_TOPIC, partition)
        self._resume(loaded)

    def unload_partition(self, partition: int) -> None:
        """Another broker leads the partition now: forget its transactional ids here."""
        for transactional_id in [t for t in self.txns if self.partition_for(t) == partition]:
            del self.txns[transactional_id]
            self.timers.cancel(transactional_id)

    def owns(self, transactional_id: str) -> bool:
        return self.runtime.owns(transactional_id)

    def _resume(self, loaded) -> None:
        for meta in loaded:
            if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                log.info("completing transaction of %s left in %s", meta.transactional_id, meta.state_name)
                self._write_markers_and_complete(meta, meta.state == PREPARE_COMMIT)
            elif meta.state == ONGOING:
                self._arm_timeout(meta)

    def _replay_record(self, partition: int, key: bytes | None, value: bytes | None, producer_id: int | None) -> None:
        if key is None:
            return
        try:
            transactional_id = fmt.decode_key(key)
            if transactional_id is None:
                return
            if value is None:
                self.txns.pop(transactional_id, None)
                return
            v = fmt.decode_value(value)
        except (ProtocolError, fmt.RecordFormatError, UnicodeDecodeError) as exc:
            log.warning("skipping an unreadable %s record: %s", TRANSACTION_STATE_TOPIC, exc)
            return
        self.txns[transactional_id] = TransactionMetadata(
            transactional_id, v.producer_id, v.previous_producer_id, v.producer_epoch, NO_PRODUCER_EPOCH,
            v.timeout_ms, v.state, frozenset(v.partitions), v.start_ms, v.last_update_ms, v.next_producer_id,
            v.client_transaction_version)

    # =========================================================================== persistence
    def _persist(self, meta: TransactionMetadata) -> int:
        """Append the new state of a transactional id; on success it becomes the current state."""
        value = fmt.TransactionLogValue(meta.producer_id, meta.producer_epoch, meta.timeout_ms, meta.state,
                                        sorted(meta.partitions), meta.last_update_ms, meta.start_ms,
                                        meta.last_producer_id, meta.next_producer_id, meta.client_version)
        # Kafka writes the flexible version 1 for transactions v2, with the fields v2 needs
        version = 1 if meta.client_version >= 2 else 0
        error = self.runtime.append(meta.transactional_id, [(fmt.encode_key(meta.transactional_id),
                                                             fmt.encode_value(value, version))])
        if error:
            return error
        self.txns[meta.transactional_id] = meta
        return ErrorCode.NONE

    # =========================================================================== InitProducerId
    def init_producer_id(self, transactional_id: str, timeout_ms: int,
                         expected: tuple[int, int] | None) -> tuple[int, int, int]:
        """(error, producer id, epoch) for a transactional producer. ``expected`` is the producer id
        and epoch an InitProducerId v3+ carries when a producer recovers (KIP-360)."""
        if not self.owns(transactional_id):
            return ErrorCode.NOT_COORDINATOR, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        try:
            return self._init_producer_id(transactional_id, timeout_ms, expected)
        except ApiError as exc:  # no producer id could be reserved; nothing was changed
            return exc.error_code, NO_PRODUCER_ID, NO_PRODUCER_EPOCH

    def _init_producer_id(self, transactional_id: str, timeout_ms: int,
                          expected: tuple[int, int] | None) -> tuple[int, int, int]:
        if transactional_id == "":
            return ErrorCode.INVALID_REQUEST, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        if not 0 < timeout_ms <= self.max_timeout_ms:
            return ErrorCode.INVALID_TRANSACTION_TIMEOUT, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        now = now_ms()
        meta = self.txns.get(transactional_id)
        if meta is None:
            meta = TransactionMetadata(transactional_id, self._producer_ids.new_producer_id(),
                                       timeout_ms=timeout_ms, last_update_ms=now)
        if expected is not None and not (
                meta.producer_epoch == NO_PRODUCER_EPOCH or expected[0] == meta.producer_id
                or (expected[0] == meta.last_producer_id and epoch_exhausted(expected[1]))):
            return ErrorCode.PRODUCER_FENCED, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            return ErrorCode.CONCURRENT_TRANSACTIONS, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        if meta.state == ONGOING:
            # fence the current producer and abort its transaction; the client retries and gets the next epoch
            error = self._fence_and_abort(meta)
            return error or ErrorCode.CONCURRENT_TRANSACTIONS, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        if meta.state not in (EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT):
            return ErrorCode.UNKNOWN_SERVER_ERROR, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        if epoch_exhausted(meta.producer_epoch) and (expected is None or expected[1] == meta.producer_epoch):
            # a new producer id, epoch 0 (the old id is remembered for a retry of this call)
            new = dataclasses.replace(
                meta, producer_id=self._producer_ids.new_producer_id(), last_producer_id=meta.producer_id,
                producer_epoch=0, last_producer_epoch=meta.producer_epoch if expected is not None else NO_PRODUCER_EPOCH,
                timeout_ms=timeout_ms, state=EMPTY, partitions=frozenset(), start_ms=-1, last_update_ms=now)
        else:
            bumped = meta.producer_epoch + 1
            if expected is None:
                epoch, last_epoch = bumped, NO_PRODUCER_EPOCH
            elif meta.producer_epoch == NO_PRODUCER_EPOCH or expected[1] == meta.producer_epoch:
                epoch, last_epoch = bumped, meta.producer_epoch
            elif expected[1] == meta.last_producer_epoch:
                epoch, last_epoch = meta.producer_epoch, meta.last_producer_epoch  # a retry of a call that worked
            else:
                return ErrorCode.PRODUCER_FENCED, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
            new = dataclasses.replace(meta, producer_epoch=epoch, last_producer_epoch=last_epoch, timeout_ms=timeout_ms,
                                      state=EMPTY, partitions=frozenset(), start_ms=-1, last_update_ms=now)
        error = self._persist(new)
        if error:
            return error, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        log.info("initialized transactional id %s with producer id %d and epoch %d", transactional_id,
                 new.producer_id, new.producer_epoch)
        return ErrorCode.NONE, new.producer_id, new.producer_epoch

    def _fence_and_abort(self, meta: TransactionMetadata) -> int:
        """Bump the epoch of an ongoing transaction's producer and abort the transaction with it."""
        epoch = meta.producer_epoch if meta.producer_epoch >= MAX_EPOCH else meta.producer_epoch + 1
        log.info("fencing producer %d of %s at epoch %d and aborting its transaction", meta.producer_id,
                 meta.transactional_id, epoch)
        return self.end_transaction(meta.transactional_id, meta.producer_id, epoch, commit=False, from_client=False)

    # =========================================================================== AddPartitionsToTxn
    def _check_producer(self, transactional_id: str, producer_id: int, epoch: int) -> tuple[int, TransactionMetadata | None]:
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST, None
        if not self.owns(transactional_id):
            return ErrorCode.NOT_COORDINATOR, None
        meta = self.txns.get(transactional_id)
        if meta is None or meta.state == DEAD or meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING, None
        if meta.producer_epoch != epoch:
            return ErrorCode.PRODUCER_FENCED, None
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT, PREPARE_EPOCH_FENCE):
            return ErrorCode.CONCURRENT_TRANSACTIONS, None
        return ErrorCode.NONE, meta

    def add_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                       partitions: Iterable[TopicPartition], client_version: int = 1) -> int:
        """Add partitions to the producer's transaction (starting it, run with ``client_version``, 2
        when the partition leader adds them for a TV2 producer); one error for all of them."""
        error, meta = self._check_producer(transactional_id, producer_id, epoch)
        if error:
            return error
        partitions = frozenset(partitions)
        if meta.state == ONGOING and partitions <= meta.partitions:
            return ErrorCode.NONE
        now = now_ms()
        starting = meta.state != ONGOING
        new = dataclasses.replace(meta, state=ONGOING, partitions=(frozenset() if starting else meta.partitions) | partitions,
                                  start_ms=now if starting else meta.start_ms, last_update_ms=now,
                                  client_version=client_version if starting else meta.client_version)
        error = self._persist(new)
        if error:
            return error
        if starting:
            self._arm_timeout(new)
        return ErrorCode.NONE

    def verify_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                          partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """KIP-890 verification: is each partition part of the producer's ongoing transaction?"""
        partitions = list(partitions)
        error, meta = self._check_producer(transactional_id, producer_id, epoch)
        if error:
            return {tp: error for tp in partitions}
        return {tp: ErrorCode.NONE if meta.state == ONGOING and tp in meta.partitions else ErrorCode.INVALID_TXN_STATE
                for tp in partitions}

    # =========================================================================== EndTxn
    def end_transaction(self, transactional_id: str, producer_id: int, epoch: int, commit: bool, *,
                        from_client: bool = True, client_version: int = 1) -> int:
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST
        if not self.owns(transactional_id):
            return ErrorCode.NOT_COORDINATOR
        if from_client and client_version >= 2:
            return self._end_transaction_v2(transactional_id, producer_id, epoch, commit)
        meta = self.txns.get(transactional_id)
        if meta is None or meta.state == DEAD or meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if (from_client and epoch != meta.producer_epoch) or epoch < meta.producer_epoch:
            return ErrorCode.PRODUCER_FENCED
        state = meta.state
        if state == ONGOING:
            now = now_ms()
            new = dataclasses.replace(meta, state=PREPARE_COMMIT if commit else PREPARE_ABORT, last_update_ms=now)
            if not from_client and epoch != meta.producer_epoch:  # an epoch fence
                new.producer_epoch, new.last_producer_epoch = epoch, NO_PRODUCER_EPOCH
            error = self._persist(new)
            if error:
                return error
            self.timers.cancel(transactional_id)
            self._write_markers_and_complete(new, commit)
            return ErrorCode.NONE
        if state == COMPLETE_COMMIT:
            return ErrorCode.NONE if commit else ErrorCode.INVALID_TXN_STATE
        if state == COMPLETE_ABORT:
            return ErrorCode.NONE if not commit else ErrorCode.INVALID_TXN_STATE
        if state == PREPARE_COMMIT:
            return ErrorCode.CONCURRENT_TRANSACTIONS if commit else ErrorCode.INVALID_TXN_STATE
        if state == PREPARE_ABORT:
            return ErrorCode.CONCURRENT_TRANSACTIONS if not commit else ErrorCode.INVALID_TXN_STATE
        return ErrorCode.INVALID_TXN_STATE  # Empty: nothing to end

    def _end_transaction_v2(self, transactional_id: str, producer_id: int, epoch: int, commit: bool) -> int:
        """EndTxn v5 (KIP-890 part 2): end the transaction with the next epoch. Aborting an empty
        transaction is allowed (the producer cannot know whether a batch of it reached a partition)."""
        meta = self.txns.get(transactional_id)
        if meta is None or meta.state == DEAD:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        ended = meta.state in (COMPLETE_COMMIT, COMPLETE_ABORT)
        ending = meta.state in (PREPARE_COMMIT, PREPARE_ABORT)  # its markers are being written
        # a retry of an EndTxn that ended (or is ending) the transaction: the epoch it had, or the id
        # before an overflow
        retry = (ended or ending) and meta.client_version >= 2 and (
            (producer_id == meta.producer_id and epoch == meta.producer_epoch - 1)
            or (producer_id == meta.last_producer_id and meta.producer_epoch == 0 and epoch_exhausted(epoch)))
        if not retry and meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if not retry and epoch != meta.producer_epoch:
            return ErrorCode.PRODUCER_FENCED
        if retry and ending:
            return ErrorCode.CONCURRENT_TRANSACTIONS  # answered once the markers are written
        if retry:
            return ErrorCode.NONE if (meta.state == COMPLETE_COMMIT) == commit else ErrorCode.INVALID_TXN_STATE
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT, PREPARE_EPOCH_FENCE):
            return ErrorCode.CONCURRENT_TRANSACTIONS
        if meta.state != ONGOING and commit:
            return ErrorCode.INVALID_TXN_STATE  # nothing to commit
        try:
            next_producer_id = self._producer_ids.new_producer_id() if epoch_exhausted(meta.producer_epoch) \
                else NO_PRODUCER_ID
        except ApiError as exc:
            return exc.error_code
        new = dataclasses.replace(
            meta, state=PREPARE_COMMIT if commit else PREPARE_ABORT, producer_epoch=meta.producer_epoch + 1,
            last_producer_epoch=NO_PRODUCER_EPOCH, next_producer_id=next_producer_id, client_version=2,
            partitions=meta.partitions if meta.state == ONGOING else frozenset(), last_update_ms=now_ms())
        error = self._persist(new)
        if error:
            return error
        self.timers.cancel(transactional_id)
        self._write_markers_and_complete(new, commit)
        return ErrorCode.NONE

    def _write_markers_and_complete(self, meta: TransactionMetadata, commit: bool) -> None:
        """Send the markers of ``meta`` (a Prepare state, persisted); once all are written record the
        transaction Complete -- if by then it is still this Prepare state here (not unloaded, not
        replaced: another coordinator owns it now and finishes it itself)."""
        markers = TxnMarkers(meta.transactional_id, meta.producer_id, meta.producer_epoch, commit,
                             self._coordinator_epoch(meta.transactional_id), meta.client_version,
                             frozenset(meta.partitions))
        self._marker_sender.send(markers, lambda: self._complete(meta, commit), lambda: self._current(meta))

    def _current(self, meta: TransactionMetadata) -> bool:
        return self.txns.get(meta.transactional_id) is meta and self.owns(meta.transactional_id)

    def _coordinator_epoch(self, transactional_id: str) -> int:
        state_topic = self.state_topic()
        if state_topic is None:
            return 0
        try:
            return self._partitions.partition(state_topic, self.partition_for(transactional_id)).leader_epoch
        except ApiError:
            return state_topic.leader_epoch

    def _complete(self, meta: TransactionMetadata, commit: bool) -> None:
        if not self._current(meta):
            log.info("markers of %s written, but its state moved on here; not completing it",
                     meta.transactional_id)
            return
        complete = dataclasses.replace(meta, state=COMPLETE_COMMIT if commit else COMPLETE_ABORT,
                                       partitions=frozenset(), last_update_ms=now_ms())
        if meta.next_producer_id != NO_PRODUCER_ID:  # TV2, epoch exhausted: the producer moves to a new id
            complete = dataclasses.replace(complete, producer_id=meta.next_producer_id,
                                           last_producer_id=meta.producer_id, producer_epoch=0,
                                           next_producer_id=NO_PRODUCER_ID)
        if self._persist(complete):
            # the markers are written; the state stays Prepare* in the log and the next load completes it
            log.warning("could not record the end of the transaction of %s; it completes on the next load",
                        meta.transactional_id)
            return
        log.info("%s transaction of %s (producer %d, epoch %d)", "committed" if commit else "aborted",
                 meta.transactional_id, meta.producer_id, meta.producer_epoch)

    # =========================================================================== timeouts
    def _arm_timeout(self, meta: TransactionMetadata) -> None:
        transactional_id, producer_id, epoch, start = (meta.transactional_id, meta.producer_id, meta.producer_epoch,
                                                       meta.start_ms)
        delay = max(start + meta.timeout_ms - now_ms(), 0)
        self.timers.schedule(transactional_id, delay,
                             lambda: self._expire(transactional_id, producer_id, epoch, start))

    def _expire(self, transactional_id: str, producer_id: int, epoch: int, start: int) -> None:
        meta = self.txns.get(transactional_id)
        if meta is None or meta.state != ONGOING or (meta.producer_id, meta.producer_epoch, meta.start_ms) != (
                producer_id, epoch, start):
            return
        log.info("transaction of %s (producer %d, epoch %d) timed out after %d ms; aborting it", transactional_id,
                 producer_id, epoch, meta.timeout_ms)
        if self._fence_and_abort(meta):
            self.timers.schedule(transactional_id, 1000, lambda: self._expire(transactional_id, producer_id, epoch, start))

    # =========================================================================== admin
    def describe(self, transactional_id: str) -> TransactionMetadata | None:
        meta = self.txns.get(transactional_id)
        return None if meta is None or meta.state == DEAD else meta

    def list(self, states: list[str], producer_ids: list[int], duration_ms: int = -1
             ) -> tuple[list[str], list[TransactionMetadata]]:
        """(unknown state filters, matching transactions)."""
        unknown = [s for s in states if s not in STATE_NAMES]
        wanted = {STATE_NAMES.index(s) for s in states if s in STATE_NAMES}
        now = now_ms()
        out = []
        for meta in self.txns.values():
            if meta.state == DEAD:
                continue
            if producer_ids and meta.producer_id not in producer_ids:
                continue
            if states and meta.state not in wanted:
                continue
            if duration_ms >= 0 and now - meta.start_ms <= duration_ms:
                continue
            out.append(meta)
        return unknown, out
