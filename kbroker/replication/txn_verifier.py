"""ClusterVerifier: KIP-890's check of a transactional batch's partition (kbroker.txn.verification),
asked of the transactional id's coordinator wherever it is in the cluster.

The coordinator of a transactional id is the leader of its `__transaction_state` partition. When
that is this broker the coordinator is asked directly; otherwise the leader gets an
AddPartitionsToTxn v5 (the brokers' batched form: verify_only for verification, not for adding),
over this broker's PeerRequests. No leader known, the topic not created yet, or a peer that does not
answer: COORDINATOR_NOT_AVAILABLE for every partition, which the produce handler turns into a
retriable error (the producer sends the batch again, by when the coordinator is known).
"""

from __future__ import annotations

import logging

from ..metadata.cluster_info import ClusterInfo
from ..protocol.errors import ErrorCode
from ..protocol.messages import AddPartitionsToTxnRequest
from ..txn import TransactionCoordinator
from ..txn.coordinator import TRANSACTION_STATE_TOPIC
from ..txn.verification import TopicPartition, verify_here
from .peers import PeerRequests, PeerUnavailable

log = logging.getLogger("kbroker.txn")

ADD_PARTITIONS_TO_TXN_VERSION = 5
REQUEST_TIMEOUT_S = 10.0


class ClusterVerifier:
    def __init__(self, coordinator: TransactionCoordinator, *, local_id: int, cluster: ClusterInfo,
                 peers: PeerRequests, catalogue):
        self._coordinator = coordinator
        self._local_id = local_id
        self._cluster = cluster
        self._peers = peers
        self._catalogue = catalogue

    async def verify(self, transactional_id: str, producer_id: int, producer_epoch: int,
                     partitions: list[TopicPartition], add: bool) -> dict[TopicPartition, int]:
        if self._coordinator.owns(transactional_id):
            return verify_here(self._coordinator, transactional_id, producer_id, producer_epoch, partitions, add)
        unavailable = {tp: ErrorCode.COORDINATOR_NOT_AVAILABLE for tp in partitions}
        leader = self._coordinator_of(transactional_id)
        if leader is None or leader == self._local_id:  # no leader, or leading but not loaded yet
            return unavailable
        by_topic: dict[str, list[int]] = {}
        for topic, index in partitions:
            by_topic.setdefault(topic, []).append(index)
        request = AddPartitionsToTxnRequest(transactions=[AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction(
            transactional_id=transactional_id, producer_id=producer_id, producer_epoch=producer_epoch,
            verify_only=not add, topics=[AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(name=t, partitions=ps)
                                         for t, ps in by_topic.items()])])
        try:
            response = await self._peers.request(leader, request, ADD_PARTITIONS_TO_TXN_VERSION, REQUEST_TIMEOUT_S)
        except PeerUnavailable as exc:
            log.info("cannot check %s's transaction with its coordinator: %s", transactional_id, exc)
            return unavailable
        if response.error_code:
            return {tp: response.error_code for tp in partitions}
        errors = dict(unavailable)
        for result in response.results_by_transaction:
            for topic in result.topic_results:
                for p in topic.results_by_partition:
                    if (topic.name, p.partition_index) in errors:
                        errors[(topic.name, p.partition_index)] = p.partition_error_code
        return errors

    def _coordinator_of(self, transactional_id: str) -> int | None:
        topic = self._catalogue.get(TRANSACTION_STATE_TOPIC)
        if topic is None:
            return None
        info = self._cluster.partition(topic, self._coordinator.partition_for(transactional_id))
        return None if info is None or info.leader < 0 else info.leader
