"""The transaction coordinator driven directly, without sockets, with the group coordinator beside it
as a broker wires them: a producer's transaction is initialised, its partitions added and committed,
and the COMMIT marker lands on each data partition; a transaction left open is aborted by its timer
(fencing the producer); a consumer group's transactional offset commit stays invisible until the
transaction commits, and is dropped when it aborts — also after a rebuild from the log. Time is
trio's MockClock: a transaction timeout passes in no time."""

from __future__ import annotations

import pytest
import trio

from kbroker.groups import OFFSETS_TOPIC
from kbroker.protocol import records as rec
from kbroker.protocol.errors import ErrorCode as E
from tests.coordinator_world import CoordinatorWorld

TIMEOUT_MS = 20_000


@pytest.fixture
async def world(tmp_path):
    world = CoordinatorWorld(tmp_path)
    await world.topics.create_topic("payments", 2)
    await world.topics.create_topic("orders", 1)
    yield world
    world.close()


async def init_producer(world: CoordinatorWorld, transactional_id: str, timeout_ms: int = TIMEOUT_MS):
    await world.txns.ensure_state_topic()
    error, producer_id, epoch = world.txns.init_producer_id(transactional_id, timeout_ms, None)
    assert error == E.NONE
    return producer_id, epoch


def produce(world: CoordinatorWorld, topic: str, partition: int, producer_id: int, epoch: int, value: bytes,
            sequence: int = 0) -> None:
    """What a transactional producer's Produce appends: one batch of its transaction."""
    batch = rec.build_batch([rec.Record(None, value)], producer_id=producer_id, producer_epoch=epoch,
                            base_sequence=sequence, transactional=True)
    world.partition_log(topic, partition).append(batch)


def batches(world: CoordinatorWorld, topic: str, partition: int) -> list[tuple[str, int, int]]:
    """(data | COMMIT | ABORT, producer id, epoch) of every batch of the partition."""
    data = memoryview(world.partition_log(topic, partition).read_bytes(0, 1 << 20))
    out = []
    for h in rec.iter_batches(data):
        kind = "data"
        if h.is_control:
            control = rec.control_record_type(data[h.position:h.position + h.size])
            kind = "COMMIT" if control == rec.CONTROL_COMMIT else "ABORT"
        out.append((kind, h.producer_id, h.producer_epoch))
    return out


async def test_a_committed_transaction_writes_commit_markers_to_its_partitions(world, autojump_clock):
    async with world.running():
        producer_id, epoch = await init_producer(world, "payments-app")
        partitions = [("payments", 0), ("payments", 1)]
        assert world.txns.add_partitions("payments-app", producer_id, epoch, partitions) == E.NONE
        assert world.txns.describe("payments-app").state_name == "Ongoing"
        assert world.txns.verify_partitions("payments-app", producer_id, epoch, [("payments", 1), ("orders", 0)]) == {
            ("payments", 1): E.NONE, ("orders", 0): E.INVALID_TXN_STATE}
        for partition in (0, 1):
            produce(world, "payments", partition, producer_id, epoch, b"paid")
        assert world.partition_log("payments", 0).last_stable_offset == 0  # open: held back from read_committed

        assert world.txns.end_transaction("payments-app", producer_id, epoch, commit=True) == E.NONE
        for partition in (0, 1):
            assert batches(world, "payments", partition) == [("data", producer_id, epoch),
                                                             ("COMMIT", producer_id, epoch)]
            log = world.partition_log("payments", partition)
            assert log.last_stable_offset == log.log_end_offset == 2
        meta = world.txns.describe("payments-app")
        assert (meta.state_name, meta.partitions) == ("CompleteCommit", frozenset())
        assert world.txns.end_transaction("payments-app", producer_id, epoch, commit=True) == E.NONE  # a retry


async def test_a_transaction_left_open_is_aborted_by_its_timer_and_the_producer_fenced(world, autojump_clock):
    async with world.running():
        producer_id, epoch = await init_producer(world, "forgetful", timeout_ms=TIMEOUT_MS)
        assert world.txns.add_partitions("forgetful", producer_id, epoch, [("payments", 0)]) == E.NONE
        produce(world, "payments", 0, producer_id, epoch, b"never committed")
        started = trio.current_time()
        while world.txns.describe("forgetful").state_name == "Ongoing":
            await trio.sleep(1)
        assert TIMEOUT_MS / 1000 - 1 <= trio.current_time() - started <= TIMEOUT_MS / 1000 + 1
        meta = world.txns.describe("forgetful")
        assert (meta.state_name, meta.producer_id, meta.producer_epoch) == ("CompleteAbort", producer_id, epoch + 1)
        assert batches(world, "payments", 0) == [("data", producer_id, epoch), ("ABORT", producer_id, epoch + 1)]
        # the producer comes back with its old epoch: fenced
        assert world.txns.end_transaction("forgetful", producer_id, epoch, commit=True) == E.PRODUCER_FENCED
        assert world.txns.add_partitions("forgetful", producer_id, epoch, [("payments", 0)]) == E.PRODUCER_FENCED


async def test_transactional_offsets_are_invisible_until_the_commit_and_gone_after_an_abort(world, autojump_clock):
    async with world.running():
        groups = world.groups
        await groups.ensure_offsets_topic()
        producer_id, epoch = await init_producer(world, "transformer")
        offsets_partition = (OFFSETS_TOPIC, groups.partition_for("etl"))

        def commit_in_transaction(offset: int, epoch: int):
            assert world.txns.add_partitions("transformer", producer_id, epoch, [offsets_partition]) == E.NONE
            return groups.commit_transactional_offsets(
                group_id="etl", producer_id=producer_id, producer_epoch=epoch, generation_id=-1, member_id="",
                group_instance_id=None, topics=[("orders", [(0, offset, -1, "")])])

        def fetch(require_stable: bool):
            return groups.fetch_offsets("etl", [("orders", [0])], require_stable)[1][0][1][0]

        assert commit_in_transaction(10, epoch) == [("orders", [(0, E.NONE)])]
        assert fetch(require_stable=False) == (0, -1, -1, "", E.NONE)  # nothing committed yet
        assert fetch(require_stable=True) == (0, -1, -1, "", E.UNSTABLE_OFFSET_COMMIT)  # the consumer retries
        assert world.txns.end_transaction("transformer", producer_id, epoch, commit=True) == E.NONE
        assert fetch(require_stable=True) == (0, 10, -1, "", E.NONE)

        assert commit_in_transaction(20, epoch) == [("orders", [(0, E.NONE)])]
        assert world.txns.end_transaction("transformer", producer_id, epoch, commit=False) == E.NONE
        assert fetch(require_stable=True) == (0, 10, -1, "", E.NONE)  # the aborted commit is gone
        assert not groups.has_pending_offset("etl", ("orders", 0))

        assert commit_in_transaction(30, epoch) == [("orders", [(0, E.NONE)])]  # open across the restart

    world.reopen()
    async with world.running():
        groups = world.groups
        # the markers replayed from __consumer_offsets: the commit kept, the abort dropped, the last still pending
        assert groups.fetch_offsets("etl", [("orders", [0])], True)[1] == [
            ("orders", [(0, -1, -1, "", E.UNSTABLE_OFFSET_COMMIT)])]
        assert groups.fetch_offsets("etl", [("orders", [0])], False)[1] == [("orders", [(0, 10, -1, "", E.NONE)])]
        assert world.txns.end_transaction("transformer", producer_id, epoch, commit=True) == E.NONE
        assert groups.fetch_offsets("etl", [("orders", [0])], True)[1] == [("orders", [(0, 30, -1, "", E.NONE)])]


async def test_transactions_v2_bump_the_epoch_at_every_end_and_survive_a_rebuild(world, autojump_clock):
    async with world.running():
        producer_id, epoch = await init_producer(world, "tv2-app")
        # the partition leader adds the partition on the first batch (Produce v12), EndTxn v5 ends it
        assert world.txns.add_partitions("tv2-app", producer_id, epoch, [("orders", 0)], client_version=2) == E.NONE
        produce(world, "orders", 0, producer_id, epoch, b"first")
        assert world.txns.end_transaction("tv2-app", producer_id, epoch, True, client_version=2) == E.NONE
        assert batches(world, "orders", 0) == [("data", producer_id, epoch), ("COMMIT", producer_id, epoch + 1)]
        meta = world.txns.describe("tv2-app")
        assert (meta.state_name, meta.producer_epoch, meta.client_version) == ("CompleteCommit", epoch + 1, 2)
    world.reopen()
    async with world.running():
        # a retry of that EndTxn (the old epoch) is still answered as the first one, after the rebuild
        assert world.txns.end_transaction("tv2-app", producer_id, epoch, True, client_version=2) == E.NONE
        assert world.txns.end_transaction("tv2-app", producer_id, epoch, False, client_version=2) == E.INVALID_TXN_STATE
        assert world.txns.describe("tv2-app").producer_epoch == epoch + 1


async def test_an_exhausted_epoch_moves_a_tv2_producer_to_a_new_producer_id(world, autojump_clock):
    import dataclasses

    async with world.running():
        producer_id, _ = await init_producer(world, "old-app")
        exhausted = 32766  # Short.MAX_VALUE - 1: the next end bumps to the last epoch there is
        world.txns.txns["old-app"] = dataclasses.replace(world.txns.txns["old-app"], producer_epoch=exhausted)
        assert world.txns.add_partitions("old-app", producer_id, exhausted, [("orders", 0)], client_version=2) == 0
        produce(world, "orders", 0, producer_id, exhausted, b"last")
        assert world.txns.end_transaction("old-app", producer_id, exhausted, True, client_version=2) == E.NONE
        meta = world.txns.describe("old-app")
        assert meta.producer_id != producer_id and meta.producer_epoch == 0 and meta.last_producer_id == producer_id
        assert batches(world, "orders", 0)[-1] == ("COMMIT", producer_id, exhausted + 1)  # the old id's last epoch
        # the retry names the old id and epoch: answered as the first EndTxn was
        assert world.txns.end_transaction("old-app", producer_id, exhausted, True, client_version=2) == E.NONE
        assert world.txns.add_partitions("old-app", meta.producer_id, 0, [("orders", 0)], client_version=2) == E.NONE


class MarkersOnTheirWay:
    """A cluster's marker sender whose markers have not reached every leader yet: ``deliver`` writes them."""

    def __init__(self, writer):
        self.writer = writer
        self.held = []

    def send(self, markers, written, wanted) -> None:
        self.held.append((markers, written))

    def deliver(self) -> None:
        for markers, written in self.held:
            for topic, partition in sorted(markers.partitions):
                self.writer.write(topic, partition, markers.producer_id, markers.producer_epoch, markers.commit,
                                  markers.coordinator_epoch)
            written()
        self.held.clear()


async def test_a_tv2_end_retried_while_its_markers_are_written_is_told_to_wait(tmp_path, autojump_clock):
    senders = []
    world = CoordinatorWorld(tmp_path, marker_sender=lambda writer: senders.append(MarkersOnTheirWay(writer))
                             or senders[-1])
    await world.topics.create_topic("orders", 1)
    try:
        async with world.running():
            producer_id, epoch = await init_producer(world, "slow-markers")
            assert world.txns.add_partitions("slow-markers", producer_id, epoch, [("orders", 0)],
                                             client_version=2) == E.NONE
            produce(world, "orders", 0, producer_id, epoch, b"first")
            assert world.txns.end_transaction("slow-markers", producer_id, epoch, True, client_version=2) == E.NONE
            assert world.txns.describe("slow-markers").state_name == "PrepareCommit"
            # the client did not see the answer and asks again with the epoch it had: not fenced, wait
            assert world.txns.end_transaction("slow-markers", producer_id, epoch, True,
                                              client_version=2) == E.CONCURRENT_TRANSACTIONS
            senders[-1].deliver()
            assert world.txns.describe("slow-markers").state_name == "CompleteCommit"
            assert batches(world, "orders", 0) == [("data", producer_id, epoch), ("COMMIT", producer_id, epoch + 1)]
            assert world.txns.end_transaction("slow-markers", producer_id, epoch, True, client_version=2) == E.NONE
    finally:
        world.close()
