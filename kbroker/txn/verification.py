"""The check a partition leader makes before appending a producer's first transactional batch to a
partition (KIP-890): is the partition part of the producer's ongoing transaction (verify, Produce
below v12 with transaction.partition.verification.enable; TxnOffsetCommit v4), or -- transactions v2,
Produce v12+ and TxnOffsetCommit v5+ -- add it to the transaction. The transaction coordinator
answers; ``LocalVerifier`` asks this broker's, which is every transactional id's coordinator on a
broker alone. In a cluster the coordinator may be another broker (kbroker.replication's verifier
asks it with AddPartitionsToTxn v5, as Kafka's AddPartitionsToTxnManager does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .coordinator import TransactionCoordinator

TopicPartition = tuple[str, int]


class TransactionVerifier(Protocol):
    async def verify(self, transactional_id: str, producer_id: int, producer_epoch: int,
                     partitions: list[TopicPartition], add: bool) -> dict[TopicPartition, int]:
        """An error code per partition (NONE: the batch may be appended)."""


class LocalVerifier:
    def __init__(self, coordinator: TransactionCoordinator):
        self._coordinator = coordinator

    async def verify(self, transactional_id: str, producer_id: int, producer_epoch: int,
                     partitions: list[TopicPartition], add: bool) -> dict[TopicPartition, int]:
        return verify_here(self._coordinator, transactional_id, producer_id, producer_epoch, partitions, add)


def verify_here(coordinator: TransactionCoordinator, transactional_id: str, producer_id: int, producer_epoch: int,
                partitions: list[TopicPartition], add: bool) -> dict[TopicPartition, int]:
    if add:
        error = coordinator.add_partitions(transactional_id, producer_id, producer_epoch, partitions,
                                           client_version=2)
        return {tp: error for tp in partitions}
    return coordinator.verify_partitions(transactional_id, producer_id, producer_epoch, partitions)
