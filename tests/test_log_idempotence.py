"""Idempotent producer stories: retries, gaps, zombies, restarts (every story but the restart runs
against both kinds of log)."""

import pytest

from kbroker.log import PartitionLog
from kbroker.protocol import records as R
from kbroker.protocol.errors import ErrorCode, ApiError
from tests.log_kinds import new_log  # noqa: F401 (a fixture)

NOW = 1_700_000_000_000
PID = 4242


def idem(seq, n=2, epoch=0, pid=PID):
    recs = [R.Record(b"k", b"v%d" % (seq + i), (), NOW) for i in range(n)]
    return bytearray(R.build_batch(recs, producer_id=pid, producer_epoch=epoch, base_sequence=seq))


def error(log, batch):
    with pytest.raises(ApiError) as e:
        log.append(batch, NOW)
    return e.value.error_code


@pytest.fixture
def log(new_log):
    return new_log("payments-0")


def test_in_order_batches_are_appended(log):
    assert log.append(idem(0), NOW).base_offset == 0
    assert log.append(idem(2), NOW).base_offset == 2
    assert log.append(idem(4), NOW).base_offset == 4


def test_a_retried_batch_gets_its_original_offsets_and_is_not_written_twice(log):
    log.append(idem(0), NOW)
    log.append(R.build_batch([R.Record(b"other", b"x", (), NOW)]), NOW)  # someone else writes in between
    log.append(idem(2), NOW)
    r = log.append(idem(0), NOW)
    assert (r.base_offset, r.last_offset, r.duplicate) == (0, 1, True)
    r = log.append(idem(2), NOW)
    assert (r.base_offset, r.last_offset, r.duplicate) == (3, 4, True)
    assert log.log_end_offset == 5


def test_only_the_last_five_batches_are_remembered(log):
    for seq in range(0, 12, 2):
        log.append(idem(seq), NOW)
    assert log.append(idem(2), NOW).duplicate  # one of the last five
    assert error(log, idem(0)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER  # forgotten: out of order


def test_a_sequence_gap_is_out_of_order(log):
    log.append(idem(0), NOW)
    assert error(log, idem(5)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.log_end_offset == 2


def test_an_older_epoch_is_fenced(log):
    log.append(idem(0, epoch=3), NOW)
    assert error(log, idem(2, epoch=2)) == ErrorCode.INVALID_PRODUCER_EPOCH


def test_a_new_epoch_must_start_at_sequence_zero(log):
    log.append(idem(0, epoch=0), NOW)
    log.append(idem(2, epoch=0), NOW)
    assert error(log, idem(4, epoch=1)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append(idem(0, epoch=1), NOW).base_offset == 4
    assert error(log, idem(4, epoch=0)) == ErrorCode.INVALID_PRODUCER_EPOCH


def test_an_unknown_producer_is_accepted_at_any_sequence_as_in_kafka_4(log):
    assert log.append(idem(17), NOW).base_offset == 0
    assert log.append(idem(19), NOW).base_offset == 2


def test_sequence_wraps_around(log):
    log.append(idem(R.INT32_MAX - 1, n=2), NOW)
    assert log.append(idem(0, n=1), NOW).base_offset == 2


def test_producers_are_independent(log):
    log.append(idem(0, pid=1), NOW)
    log.append(idem(0, pid=2), NOW)
    assert log.append(idem(0, pid=1), NOW).duplicate
    assert log.append(idem(2, pid=2), NOW).base_offset == 4


def test_producer_state_survives_a_restart(tmp_path):
    d = str(tmp_path / "payments-0")
    log = PartitionLog.open(d)
    log.append(idem(0, epoch=2), NOW)
    log.append(idem(2, epoch=2), NOW)
    log.close()
    log = PartitionLog.open(d)
    r = log.append(idem(2, epoch=2), NOW)
    assert (r.duplicate, r.base_offset) == (True, 2)
    assert log.append(idem(4, epoch=2), NOW).base_offset == 4


def test_a_rejected_batch_leaves_no_trace(log):
    log.append(idem(0), NOW)
    error(log, idem(7))
    assert log.append(idem(2), NOW).base_offset == 2


def test_producers_whose_data_was_deleted_are_forgotten(log):
    log.append(idem(0), NOW)
    log.append(R.build_batch([R.Record(b"k", b"v", (), NOW)]), NOW)
    log.delete_records_before(3)
    assert log.append(idem(40), NOW).base_offset == 3  # unknown again: any sequence
