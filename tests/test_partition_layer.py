"""The partition layer driven directly, without sockets: what a producer, a consumer and an admin see
of a partition's offsets, leader epochs and errors (kbroker.partitions)."""

from __future__ import annotations

import uuid

import pytest
import trio
import trio.testing

from kbroker.cli import STANDALONE_DEFAULTS
from kbroker.config import load_broker_config
from kbroker.config.live import LiveConfig
from kbroker.log import LogManager
from kbroker.metadata import MemoryMetadataStore
from kbroker.partitions import PartitionService
from kbroker.protocol.errors import ApiError, ErrorCode
from kbroker.protocol.records import Record, build_batch

EARLIEST, LATEST = -2, -1


@pytest.fixture
def catalogue():
    return MemoryMetadataStore()


@pytest.fixture
def service(tmp_path, catalogue):
    config = load_broker_config(None, [f"log.dirs={tmp_path}"], builtin_settings=STANDALONE_DEFAULTS)
    logs = LogManager.open(str(tmp_path))
    yield PartitionService(logs, LiveConfig(config), catalogue)
    logs.close()


@pytest.fixture
def orders(catalogue):
    return catalogue.create_topic("orders", 2)


def batch(*values: bytes, **options) -> bytes:
    return build_batch([Record(None, v) for v in values], **options)


def error_of(call, *args, **kwargs) -> ErrorCode:
    with pytest.raises(ApiError) as raised:
        call(*args, **kwargs)
    return raised.value.error_code


def test_appends_advance_the_log_end_offset_and_the_high_watermark(service, orders):
    partition = service.partition(orders, 0)
    assert (partition.log_start_offset, partition.log_end_offset, partition.high_watermark) == (0, 0, 0)
    first = partition.append(batch(b"a", b"b", b"c"))
    second = partition.append(batch(b"d"))
    assert (first.base_offset, first.last_offset, second.base_offset) == (0, 2, 3)
    assert (partition.log_end_offset, partition.high_watermark) == (4, 4)
    assert service.partition(orders, 1).high_watermark == 0  # partitions are independent


def test_a_consumer_reads_whole_batches_up_to_the_high_watermark(service, orders):
    partition = service.partition(orders, 0)
    partition.append(batch(b"a", b"b"))
    partition.append(batch(b"c"))
    everything, last_stable = partition.read(0, 1 << 20)
    assert everything.next_offset == everything.high_watermark == last_stable == partition.high_watermark == 3
    assert partition.read(1, 1 << 20)[0].to_bytes() == everything.to_bytes()  # from the batch holding 1
    assert partition.read(3, 1 << 20)[0].slices == []  # at the high watermark: nothing yet, no error
    assert error_of(partition.read, 4, 1 << 20) == ErrorCode.OFFSET_OUT_OF_RANGE


def test_read_committed_stops_at_the_first_open_transaction(service, orders):
    partition = service.partition(orders, 0)
    partition.append(batch(b"before"))
    partition.append(batch(b"in-flight", producer_id=7, producer_epoch=0, base_sequence=0, transactional=True))
    assert (partition.high_watermark, partition.last_stable_offset) == (2, 1)
    committed, last_stable = partition.read(0, 1 << 20, read_committed=True)
    assert (committed.next_offset, committed.high_watermark, last_stable) == (1, 2, 1)
    assert partition.read(0, 1 << 20)[0].next_offset == 2
    assert partition.list_offsets(LATEST, read_committed=True).offset == 1
    partition.append_end_txn_marker(7, 0, commit=True)  # the transaction coordinator ends it
    assert partition.last_stable_offset == partition.high_watermark == 3


async def test_acks_all_waits_complete_once_the_high_watermark_covers_the_batch(service, orders):
    partition = service.partition(orders, 0)
    result = partition.append(batch(b"a"))
    deadline = trio.current_time() + 5
    with trio.fail_after(0.5):  # one broker: the append itself advanced the high watermark
        assert await partition.wait_for_high_watermark(result.last_offset + 1, deadline)

    reached = []

    async def producer_waiting_for(offset):
        reached.append(await partition.wait_for_high_watermark(offset, deadline))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer_waiting_for, 3)
        await trio.testing.wait_all_tasks_blocked()
        partition.append(batch(b"b"))
        await trio.testing.wait_all_tasks_blocked()
        assert reached == []  # the high watermark is at 2: still waiting
        partition.append(batch(b"c"))
    assert reached == [True]


async def test_an_acks_all_wait_the_high_watermark_does_not_reach_ends_at_its_deadline(service, orders, autojump_clock):
    partition = service.partition(orders, 0)
    partition.append(batch(b"a"))
    started = trio.current_time()
    assert not await partition.wait_for_high_watermark(5, started + 30)
    assert trio.current_time() - started == pytest.approx(30)


def test_unknown_topics_and_partitions(service, orders):
    assert error_of(service.find_topic, "payments") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert error_of(service.find_topic, None, uuid.uuid4()) == ErrorCode.UNKNOWN_TOPIC_ID
    assert service.find_topic(None, orders.topic_id) is service.find_topic("orders") is orders
    for index in (2, -1):
        assert error_of(service.partition, orders, index) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_a_client_with_a_stale_or_future_leader_epoch_is_told_so(service, orders):
    partition = service.partition(orders, 0)
    partition.append(batch(b"epoch 0"))
    assert service.partition(orders, 0, current_leader_epoch=0) is partition
    partition.become_leader(2)  # as a leadership change (replication, elections) will
    partition.append(batch(b"epoch 2"))
    assert service.partition(orders, 0, current_leader_epoch=-1) is partition  # no epoch given
    assert service.partition(orders, 0, current_leader_epoch=2) is partition
    assert error_of(service.partition, orders, 0, current_leader_epoch=1) == ErrorCode.FENCED_LEADER_EPOCH
    assert error_of(service.partition, orders, 0, current_leader_epoch=3) == ErrorCode.UNKNOWN_LEADER_EPOCH
    # a consumer validating its position learns where each epoch ended
    assert partition.end_offset_for_epoch(0) == (0, 1)
    assert partition.end_offset_for_epoch(1) == (0, 1)
    assert partition.end_offset_for_epoch(2) == (2, 2)
    assert partition.list_offsets(LATEST) == (-1, 2, 2)


def test_list_offsets_latest_and_earliest_and_by_timestamp(service, orders):
    partition = service.partition(orders, 0)
    assert partition.list_offsets(LATEST) == (-1, 0, 0)
    assert partition.list_offsets(EARLIEST) == (-1, 0, 0)
    now = 1_700_000_000_000
    partition.append(build_batch([Record(None, b"a", timestamp=now), Record(None, b"b", timestamp=now + 10)]))
    partition.append(build_batch([Record(None, b"c", timestamp=now + 20)]))
    assert partition.list_offsets(LATEST) == (-1, 3, 0)
    assert partition.list_offsets(EARLIEST) == (-1, 0, 0)
    assert partition.list_offsets(now + 5).offset == 1
    assert partition.list_offsets(now + 20) == (now + 20, 2, 0)
    assert partition.list_offsets(now + 21) == (-1, -1, -1)  # no record that late


def test_delete_records_moves_the_log_start_offset(service, orders):
    partition = service.partition(orders, 0)
    for value in (b"a", b"b", b"c", b"d"):
        partition.append(batch(value))
    assert partition.delete_records_before(2) == 2 == partition.log_start_offset
    assert partition.list_offsets(EARLIEST).offset == 2
    assert error_of(partition.read, 1, 1 << 20) == ErrorCode.OFFSET_OUT_OF_RANGE
    assert partition.read(2, 1 << 20)[0].next_offset == 4
    assert partition.delete_records_before(1) == 2  # never backwards
    assert error_of(partition.delete_records_before, 5) == ErrorCode.OFFSET_OUT_OF_RANGE  # beyond the HW
    assert partition.delete_records_before(-1) == 4 == partition.high_watermark  # -1: up to the HW
    assert (partition.log_start_offset, partition.log_end_offset) == (4, 4)


def test_a_deleted_topic_takes_its_partitions_along(service, catalogue, orders):
    partition = service.partition(orders, 0)
    partition.append(batch(b"old"))
    assert service.partition(orders, 0) is partition  # one Partition per partition, kept
    assert service.partition_log(orders, 0) is partition.log is service.logs.get("orders", 0)
    catalogue.delete_topic("orders")
    service.topic_deleted(orders)
    again = catalogue.create_topic("orders", 1)
    assert service.partition(again, 0) is not partition
    assert service.partition(again, 0).high_watermark == 0


async def test_a_request_holding_a_deleted_topics_partition_is_told_it_is_gone(service, orders):
    """A long-polling fetch or an acks=-1 produce still holding a partition whose topic was deleted
    meanwhile is answered UNKNOWN_TOPIC_OR_PARTITION, never pointed at the closed log."""
    partition = service.partition(orders, 0)
    partition.append(batch(b"a"))
    service.topic_deleted(orders)
    for call in (lambda: partition.read(0, 1 << 20), lambda: partition.append(batch(b"b")),
                 lambda: partition.list_offsets(-1)):
        with pytest.raises(ApiError) as e:
            call()
        assert e.value.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    with pytest.raises(ApiError) as e:
        await partition.wait_for_high_watermark(10, trio.current_time() + 1)
    assert e.value.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_a_replica_moved_away_answers_not_leader_and_a_deleted_one_unknown_partition(tmp_path):
    """A waiting acks=-1 produce on a replica a reassignment moved away is told NOT_LEADER_OR_FOLLOWER
    (it looks the new leader up); on a deleted topic's, UNKNOWN_TOPIC_OR_PARTITION."""
    from kbroker.log import MemoryLog
    from kbroker.partitions.partition import Partition
    from kbroker.protocol.errors import ApiError, ErrorCode

    for moved_away, expected in ((True, ErrorCode.NOT_LEADER_OR_FOLLOWER), (False, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)):
        partition = Partition("orders", 0, MemoryLog(), 0, local_id=1)
        partition.forget(moved_away=moved_away)
        try:
            partition.check_leader()
        except ApiError as exc:
            assert exc.error_code == expected
        else:
            raise AssertionError("a forgotten replica still leads")
