"""ClusterMarkerSender: a cluster's transaction coordinator delivers the markers that end a
transaction to each partition's leader, as Kafka's TransactionMarkerChannelManager does.

For each transaction (kbroker.txn.markers.TxnMarkers) a task of ``run``'s nursery, until every
marker is in place:
- a partition this broker leads gets its marker through the MarkerWriter, and the task waits until
  its in-sync replicas have it (the high watermark passes it);
- the partitions another broker leads get one WriteTxnMarkers (v2, with the transaction version)
  per leader; the leader answers once its in-sync replicas have them;
- a partition without a leader now, or whose leader moved or did not answer, is tried again after
  a backoff, at the leader known then; a partition deleted meanwhile is dropped.
Then ``written`` is called (the coordinator records the transaction Complete). Markers handed over
before ``run`` started (a coordinator loading its partitions as the broker joins) wait in the
channel. A transaction's task ends when the coordinator no longer wants it (``wanted``: it lost the
transaction to another coordinator; ``written`` checks again),
and so does every task when the broker stops: the next coordinator, reloading the Prepare state,
sends the markers again (a marker written twice is harmless: the second closes nothing).
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import trio

from ..metadata.cluster_info import ClusterInfo
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import WriteTxnMarkersRequest
from ..txn.markers import MarkerWriter, TopicPartition, TxnMarkers
from .peers import PeerRequests, PeerUnavailable

log = logging.getLogger("kbroker.txn")

WRITE_TXN_MARKERS_VERSION = 2
REQUEST_TIMEOUT_S = 30.0
REPLICATED_TIMEOUT_S = 30.0
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0
# errors after which a marker is simply sent again (to the leader known by then)
_RETRIABLE = {ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.REQUEST_TIMED_OUT,
              ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
              ErrorCode.KAFKA_STORAGE_ERROR, ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.FENCED_LEADER_EPOCH,
              ErrorCode.UNKNOWN_SERVER_ERROR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS}


class ClusterMarkerSender:
    def __init__(self, writer: MarkerWriter, *, local_id: int, cluster: ClusterInfo, peers: PeerRequests,
                 catalogue):
        self._writer = writer
        self._local_id = local_id
        self._cluster = cluster
        self._peers = peers
        self._catalogue = catalogue
        self._send_channel, self._receive_channel = trio.open_memory_channel(math.inf)

    def send(self, markers: TxnMarkers, written: Callable[[], None], wanted: Callable[[], bool]) -> None:
        self._send_channel.send_nowait((markers, written, wanted))

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for markers, written, wanted in self._receive_channel:
                nursery.start_soon(self._deliver, markers, written, wanted)

    async def _deliver(self, markers: TxnMarkers, written: Callable[[], None], wanted: Callable[[], bool]) -> None:
        pending = set(markers.partitions)
        backoff = FIRST_BACKOFF_S
        while pending:
            if not wanted():
                log.info("no longer sending the markers of %s: its coordinator is elsewhere now",
                         markers.transactional_id)
                return
            by_leader: dict[int, list[TopicPartition]] = {}
            for tp in sorted(pending):
                leader = self._leader(tp)
                if leader is None:
                    log.info("dropping the %s marker of %s for %s-%d: the partition no longer exists",
                             markers.result, markers.transactional_id, *tp)
                    pending.discard(tp)
                elif leader >= 0:
                    by_leader.setdefault(leader, []).append(tp)
            done: set[TopicPartition] = set()
            async with trio.open_nursery() as nursery:
                for leader, tps in by_leader.items():
                    deliver = self._write_here if leader == self._local_id else self._write_there
                    nursery.start_soon(deliver, leader, markers, tps, done)
            pending -= done
            if pending:
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        written()

    def _leader(self, tp: TopicPartition) -> int | None:
        """The partition's leader (-1: none now), or None when the partition is gone."""
        topic = self._catalogue.get(tp[0])
        if topic is None or not 0 <= tp[1] < topic.partitions:
            return None
        info = self._cluster.partition(topic, tp[1])
        return -1 if info is None else info.leader

    async def _write_here(self, _leader: int, markers: TxnMarkers, tps: list[TopicPartition],
                          done: set[TopicPartition]) -> None:
        deadline = trio.current_time() + REPLICATED_TIMEOUT_S
        for tp in tps:
            try:
                partition, end_offset = self._writer.write(*tp, markers.producer_id, markers.producer_epoch,
                                                           markers.commit, markers.coordinator_epoch)
                if await partition.wait_for_high_watermark(end_offset, deadline):
                    done.add(tp)
            except ApiError as exc:
                if exc.error_code not in _RETRIABLE:
                    log.warning("the %s marker of %s for %s-%d was refused (%s); not writing it",
                                markers.result, markers.transactional_id, *tp, ErrorCode(exc.error_code).name)
                    done.add(tp)

    async def _write_there(self, leader: int, markers: TxnMarkers, tps: list[TopicPartition],
                           done: set[TopicPartition]) -> None:
        by_topic: dict[str, list[int]] = {}
        for topic, index in tps:
            by_topic.setdefault(topic, []).append(index)
        request = WriteTxnMarkersRequest(markers=[WriteTxnMarkersRequest.WritableTxnMarker(
            producer_id=markers.producer_id, producer_epoch=markers.producer_epoch,
            transaction_result=markers.commit, coordinator_epoch=markers.coordinator_epoch,
            transaction_version=markers.transaction_version,
            topics=[WriteTxnMarkersRequest.WritableTxnMarkerTopic(name=t, partition_indexes=ps)
                    for t, ps in by_topic.items()])])
        try:
            response = await self._peers.request(leader, request, WRITE_TXN_MARKERS_VERSION, REQUEST_TIMEOUT_S)
        except PeerUnavailable as exc:
            log.info("the markers of %s for broker %d are not written yet: %s", markers.transactional_id,
                     leader, exc)
            return
        for result in response.markers:
            for topic in result.topics:
                for p in topic.partitions:
                    tp = (topic.name, p.partition_index)
                    if p.error_code == ErrorCode.NONE:
                        done.add(tp)
                    elif p.error_code not in _RETRIABLE:
                        log.warning("the %s marker of %s for %s-%d was refused by broker %d (%s); not writing it",
                                    markers.result, markers.transactional_id, *tp, leader,
                                    ErrorCode(p.error_code).name)
                        done.add(tp)
