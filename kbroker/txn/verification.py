"""The check a partition leader makes before appending a producer's first transactional batch to a
partition (KIP-890): is the partition part of the producer's ongoing transaction (verify, Produce
below v12 with transaction.partition.verification.enable; TxnOffsetCommit v4), or -- transactions v2,
Produce v12+ and TxnOffsetCommit v5+ -- add it to the transaction. The transaction coordinator
answers; ``LocalVerifier`` asks this broker's, which is every transactional id's coordinator on a
broker alone. In a cluster the coordinator may be another broker (kbroker.replication's verifier
asks it with AddPartitionsToTxn v5, as Kafka's AddPartitionsToTxnManager does).

Right after a transactions v2 producer ended a transaction its coordinator is still writing the
markers, and adding a partition to the next one is CONCURRENT_TRANSACTIONS for a moment. As Kafka
does (KAFKA-18654), ``check`` asks again after add.partitions.to.txn.retry.backoff.ms, doubling the
pause, for up to add.partitions.to.txn.retry.backoff.max.ms, before the producer is told to retry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import trio

from ..protocol.errors import ErrorCode
from .markers import TopicPartition

if TYPE_CHECKING:
    from .coordinator import TransactionCoordinator


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


def retry_backoffs(config) -> dict[str, int]:
    """``check``'s pauses, from the broker config."""
    return {"backoff_ms": config.get("add.partitions.to.txn.retry.backoff.ms"),
            "max_backoff_ms": config.get("add.partitions.to.txn.retry.backoff.max.ms")}


async def check(verifier: TransactionVerifier, transactional_id: str, producer_id: int, producer_epoch: int,
                partitions: list[TopicPartition], *, add: bool, backoff_ms: int, max_backoff_ms: int
                ) -> dict[TopicPartition, int]:
    """``verifier.verify``, adding asked again while the transaction is still being ended."""
    errors = await verifier.verify(transactional_id, producer_id, producer_epoch, partitions, add)
    waited, pause = 0, backoff_ms
    while add and waited < max_backoff_ms and ErrorCode.CONCURRENT_TRANSACTIONS in errors.values():
        pause = min(pause, max_backoff_ms - waited)
        await trio.sleep(pause / 1000)
        waited += pause
        pause *= 2
        errors = await verifier.verify(transactional_id, producer_id, producer_epoch, partitions, add)
    return errors
