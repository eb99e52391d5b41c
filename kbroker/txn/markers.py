"""Transaction markers: how the end of a transaction reaches its partitions.

When a transaction ends, its coordinator writes a COMMIT or ABORT marker (a control batch) to every
partition the transaction wrote to, and only once all are written records it Complete. Where a
marker is written depends on who leads the partition:
- ``MarkerWriter`` writes one marker to a partition this broker leads, through the partition layer,
  and tells the partition's internal-topic owner (the group coordinator, for `__consumer_offsets`:
  it commits or drops the transaction's pending offsets there). The transaction coordinator of a
  broker alone uses it for every partition, and so does the WriteTxnMarkers handler, where another
  broker's coordinator sends the markers of the partitions led here;
- a ``MarkerSender`` takes a transaction's ``TxnMarkers`` and calls ``written`` once every marker is
  in place. ``LocalMarkers`` (a broker alone) writes them at once and calls it before returning, so
  an EndTxn is answered with the transaction Complete. In a cluster the sender of the replication
  layer delivers them in the background (WriteTxnMarkers to other leaders, retried until written
  or the partition is gone), and the transaction stays PrepareCommit/PrepareAbort meanwhile, as in
  Kafka: the producer's next AddPartitionsToTxn or InitProducerId is CONCURRENT_TRANSACTIONS until
  it completes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Protocol

from ..protocol.errors import ApiError, ErrorCode

if TYPE_CHECKING:
    from ..coordinator.services import AppendListener, Catalogue, PartitionLogs
    from ..partitions import Partition

log = logging.getLogger("kbroker.txn")

TopicPartition = tuple[str, int]
# called after a transaction marker was written to partition P of an internal topic: (P, producer id, commit)
MarkerListener = Callable[[int, int, bool], None]


@dataclass(frozen=True, slots=True)
class TxnMarkers:
    """The markers that end one transaction."""
    transactional_id: str
    producer_id: int
    producer_epoch: int  # the epoch the markers carry (TV2: the bumped one)
    commit: bool
    coordinator_epoch: int  # the leader epoch of the coordinator's __transaction_state partition
    transaction_version: int
    partitions: frozenset[TopicPartition]

    @property
    def result(self) -> str:
        return "commit" if self.commit else "abort"


class MarkerSender(Protocol):
    def send(self, markers: TxnMarkers, written: Callable[[], None], wanted: Callable[[], bool]) -> None:
        """Write ``markers``; call ``written`` (on the trio thread) once all are in place. A sender
        that must wait may stop trying once ``wanted()`` is False (the coordinator lost them)."""


class MarkerWriter:
    """Writes markers to partitions led here."""

    def __init__(self, *, catalogue: Catalogue, partitions: PartitionLogs, appends: AppendListener,
                 listeners: Mapping[str, MarkerListener] | None = None):
        self._catalogue = catalogue
        self._partitions = partitions
        self._appends = appends
        self._listeners = dict(listeners or {})

    def write(self, topic_name: str, index: int, producer_id: int, producer_epoch: int, commit: bool,
              coordinator_epoch: int) -> tuple[Partition, int]:
        """Write one marker; (the partition, the offset after the marker). Raises ApiError:
        UNKNOWN_TOPIC_OR_PARTITION (gone), NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR, or the log's
        refusal of the marker (INVALID_PRODUCER_EPOCH for one older than the producer's epoch)."""
        topic = self._catalogue.get(topic_name)
        if topic is None or not 0 <= index < topic.partitions:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        partition = self._partitions.partition(topic, index)
        try:
            result = partition.append_end_txn_marker(producer_id, producer_epoch, commit,
                                                     coordinator_epoch=coordinator_epoch)
        except OSError as exc:
            raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, str(exc)) from exc
        listener = self._listeners.get(topic_name)
        if listener is not None:
            listener(index, producer_id, commit)
        self._appends.notify()  # the last stable offset moved: wake read_committed fetches
        return partition, result.last_offset + 1


class LocalMarkers:
    """A broker alone leads every partition: the markers are written at once."""

    def __init__(self, writer: MarkerWriter):
        self._writer = writer

    def send(self, markers: TxnMarkers, written: Callable[[], None], wanted: Callable[[], bool]) -> None:
        for topic_name, index in sorted(markers.partitions):
            try:
                self._writer.write(topic_name, index, markers.producer_id, markers.producer_epoch, markers.commit,
                                   markers.coordinator_epoch)
            except ApiError as exc:
                if exc.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                    log.info("dropping the %s marker of %s for %s-%d: the partition no longer exists",
                             markers.result, markers.transactional_id, topic_name, index)
                else:
                    log.warning("could not write the transaction marker of %s to %s-%d: %s",
                                markers.transactional_id, topic_name, index, exc)
        written()
