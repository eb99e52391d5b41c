"""A follower's log: batches fetched from the leader are stored exactly as the leader wrote them,
and a divergent tail is cut back to where the new leader's log agrees (KIP-101). Both logs."""

from __future__ import annotations

import pytest

from kbroker.log import PartitionLog
from kbroker.protocol import records as R
from kbroker.protocol.errors import ApiError, ErrorCode
from tests.log_kinds import new_log  # noqa: F401 (a fixture)


def leader_batch(base_offset: int, n: int, *, epoch: int, producer_id: int = -1, base_sequence: int = -1,
                 transactional: bool = False) -> bytes:
    records = [R.Record(key=b"k%d" % i, value=b"v%d-%d" % (base_offset, i)) for i in range(n)]
    return R.build_batch(records, base_offset=base_offset, partition_leader_epoch=epoch, producer_id=producer_id,
                         producer_epoch=0 if producer_id >= 0 else -1, base_sequence=base_sequence,
                         transactional=transactional)


def offsets_of(log) -> list[tuple[int, int]]:
    """(base offset, leader epoch) of every batch, read as a consumer reads (a segment at a time)."""
    found, offset = [], log.log_start_offset
    while offset < log.log_end_offset:
        headers = list(R.iter_batches(log.read_bytes(offset, 1 << 30)))
        found += [(h.base_offset, h.partition_leader_epoch) for h in headers]
        offset = headers[-1].next_offset
    return found


def test_follower_keeps_the_leaders_offsets_and_epochs(new_log):
    log = new_log()
    fetched = leader_batch(0, 3, epoch=0) + leader_batch(3, 2, epoch=1)
    assert log.append_replicated(fetched) == 5
    assert offsets_of(log) == [(0, 0), (3, 1)]
    assert log.read_bytes(0, 1 << 20) == fetched  # byte for byte
    assert log.end_offset_for_epoch(0) == (0, 3)


def test_a_refetched_batch_is_not_stored_twice(new_log):
    log = new_log()
    log.append_replicated(leader_batch(0, 3, epoch=0))
    assert log.append_replicated(leader_batch(0, 3, epoch=0) + leader_batch(3, 1, epoch=0)) == 4
    assert offsets_of(log) == [(0, 0), (3, 0)]


def test_a_batch_corrupted_on_the_way_is_refused(new_log):
    log = new_log()
    batch = bytearray(leader_batch(0, 3, epoch=0))
    batch[-1] ^= 0xFF
    with pytest.raises(ApiError) as e:
        log.append_replicated(bytes(batch))
    assert e.value.error_code == ErrorCode.CORRUPT_MESSAGE
    assert log.log_end_offset == 0


def test_truncation_cuts_the_divergent_tail_and_its_epochs(new_log):
    log = new_log(segment_bytes=300)  # several segments on disk
    for base in range(0, 12, 2):
        log.append_replicated(leader_batch(base, 2, epoch=0 if base < 6 else 1))
    assert log.truncate_to(7) == 6  # the batch holding 7 starts at 6 and goes
    assert log.log_end_offset == 6
    assert [b for b, _ in offsets_of(log)] == [0, 2, 4]
    assert log.epochs.entries == [(0, 0)]  # epoch 1 is forgotten
    # the follower goes on from there with the new leader's batches
    log.append_replicated(leader_batch(6, 3, epoch=2))
    assert offsets_of(log)[-1] == (6, 2) and log.log_end_offset == 9


def test_truncation_forgets_the_producer_state_of_cut_batches(new_log):
    log = new_log()
    log.append_replicated(leader_batch(0, 2, epoch=0, producer_id=7, base_sequence=0))
    log.append_replicated(leader_batch(2, 2, epoch=0, producer_id=7, base_sequence=2))
    log.truncate_to(2)
    assert log.producer_state.producers[7].last_seq == 1
    # an open transaction whose data was cut is no longer open
    log.append_replicated(leader_batch(2, 1, epoch=1, producer_id=8, base_sequence=0, transactional=True))
    assert log.last_stable_offset == 2
    log.truncate_to(2)
    assert log.last_stable_offset == log.log_end_offset == 2


def test_a_truncated_disk_log_reopens_as_it_was_left(tmp_path):
    log = PartitionLog.open(str(tmp_path / "t-0"), {"segment.bytes": 300})
    for base in range(0, 12, 2):
        log.append_replicated(leader_batch(base, 2, epoch=base // 4))
    log.truncate_to(5)
    before = offsets_of(log)
    log.close()
    again = PartitionLog.open(str(tmp_path / "t-0"), {"segment.bytes": 300})
    assert offsets_of(again) == before and again.log_end_offset == 4
    assert again.epochs.entries == log.epochs.entries
    again.close()
