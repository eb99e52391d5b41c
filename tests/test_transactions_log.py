"""The log's side of transactions, without a broker: open transactions and the last stable offset
(for both kinds of log), aborted transactions in each segment's .txnindex (Kafka's 34-byte entries),
rebuilt on recovery, and the record format of __transaction_state."""

from __future__ import annotations

import os
import struct

import pytest

from kbroker.log import ORIGIN_COORDINATOR, Log, PartitionLog
from kbroker.protocol.errors import ErrorCode, ApiError
from kbroker.protocol.records import Record, build_batch, build_end_txn_marker
from kbroker.txn import records as fmt
from tests.log_kinds import new_log  # noqa: F401 (a fixture)


def txn(pid: int, seq: int, *values: bytes, epoch: int = 0) -> bytes:
    return build_batch([Record(None, v) for v in values], producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       transactional=True)


def marker(log: Log, pid: int, commit: bool, epoch: int = 0):
    return log.append(build_end_txn_marker(commit, pid, epoch), origin=ORIGIN_COORDINATOR)


def txnindex_entries(path: str) -> list[tuple]:
    data = open(path, "rb").read()
    assert len(data) % 34 == 0
    return [struct.unpack_from(">hqqqq", data, i) for i in range(0, len(data), 34)]


def interleaved_transactions(log) -> None:
    """Producers 1 and 2 interleave: 1 aborts at 4, 2 commits at 6, 1 aborts again at 7; then
    producer 3 opens a transaction at 8 and a plain batch follows at 9."""
    log.append(txn(1, 0, b"a1"))
    log.append(build_batch([Record(None, b"plain")]))
    log.append(txn(2, 0, b"b1", b"b2"))
    marker(log, 1, commit=False)
    log.append(txn(1, 1, b"a2"))
    marker(log, 2, commit=True)
    marker(log, 1, commit=False)
    log.append(txn(3, 0, b"c1"))
    log.append(build_batch([Record(None, b"after")]))


def test_lso_and_aborted_transactions_with_interleaved_producers(new_log):
    log = new_log("t-0")
    log.append(txn(1, 0, b"a1"))                 # 0: producer 1 opens
    log.append(build_batch([Record(None, b"plain")]))  # 1
    log.append(txn(2, 0, b"b1", b"b2"))          # 2-3: producer 2 opens
    assert log.last_stable_offset == 0
    marker(log, 1, commit=False)                 # 4: producer 1 aborts; producer 2 still open at 2
    assert log.last_stable_offset == 2
    log.append(txn(1, 1, b"a2"))                 # 5: producer 1 opens again
    marker(log, 2, commit=True)                  # 6
    assert log.last_stable_offset == 5
    marker(log, 1, commit=False)                 # 7
    assert (log.last_stable_offset, log.high_watermark) == (8, 8)

    entries = [(a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset)
               for a in log.aborted_transactions(0, 8)]
    assert entries == [(1, 0, 4, 2), (1, 5, 7, 8)]
    assert [a.first_offset for a in log.aborted_transactions(5, 8)] == [5]
    assert [a.first_offset for a in log.aborted_transactions(0, 3)] == [0]
    # read_committed reads stop at the LSO
    log.append(txn(3, 0, b"c1"))                 # 8: open
    log.append(build_batch([Record(None, b"after")]))  # 9
    result = log.read(0, 1 << 20, max_offset=log.last_stable_offset)
    assert (log.last_stable_offset, result.next_offset) == (8, 8)
    assert log.list_offsets(-1, read_committed=True).offset == 8
    assert log.list_offsets(-1).offset == 10
    assert log.has_ongoing_transaction(3, 0) and not log.has_ongoing_transaction(1, 0)


def test_aborted_transactions_are_indexed_in_kafka_format_and_survive_a_reopen(tmp_path):
    log = PartitionLog.open(str(tmp_path / "t-0"))
    interleaved_transactions(log)
    path = os.path.join(log.directory, "00000000000000000000.txnindex")
    assert txnindex_entries(path) == [(0, 1, 0, 4, 2), (0, 1, 5, 7, 8)]
    log.close()

    # a clean reopen keeps the index; a lost one is rebuilt from the markers
    reopened = PartitionLog.open(str(tmp_path / "t-0"), recovery_point=10)
    assert reopened.last_stable_offset == 8
    assert [(a.first_offset, a.last_offset) for a in reopened.aborted_transactions(0, 10)] == [(0, 4), (5, 7)]
    reopened.close()
    os.unlink(path)
    rebuilt = PartitionLog.open(str(tmp_path / "t-0"))
    assert txnindex_entries(path) == [(0, 1, 0, 4, 2), (0, 1, 5, 7, 8)]
    assert rebuilt.last_stable_offset == 8
    assert rebuilt.has_ongoing_transaction(3, 0) and not rebuilt.has_ongoing_transaction(1, 0)
    rebuilt.close()


def test_markers_go_to_the_segment_they_are_in(tmp_path):
    log = PartitionLog.open(str(tmp_path / "t-0"))
    log.append(txn(1, 0, b"x"))
    log.roll()
    marker(log, 1, commit=False)
    names = sorted(n for n in os.listdir(log.directory) if n.endswith(".txnindex"))
    assert names == ["00000000000000000001.txnindex"]
    assert [a.first_offset for a in log.aborted_transactions(0, 2)] == [0]
    log.close()


def test_producer_rules_inside_transactions(new_log):
    log = new_log("t-0")
    log.append(txn(1, 0, b"x", epoch=3))
    with pytest.raises(ApiError) as plain:  # a plain write while the producer's transaction is open
        log.append(build_batch([Record(None, b"y")], producer_id=1, producer_epoch=3, base_sequence=1))
    assert plain.value.error_code == ErrorCode.INVALID_TXN_STATE
    with pytest.raises(ApiError) as stale:
        log.append(build_end_txn_marker(False, 1, 2), origin=ORIGIN_COORDINATOR)
    assert stale.value.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    marker(log, 1, commit=False, epoch=4)  # a coordinator fencing the producer aborts with a bumped epoch
    with pytest.raises(ApiError) as fenced:
        log.append(txn(1, 1, b"z", epoch=3))
    assert fenced.value.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    log.close()


def test_transaction_state_record_format():
    key = fmt.encode_key("my-txn")
    assert key == b"\x00\x00\x00\x06my-txn"
    assert fmt.decode_key(key) == "my-txn"
    value = fmt.TransactionLogValue(producer_id=7, producer_epoch=2, timeout_ms=60000, state=fmt.ONGOING,
                                    partitions=[("b", 1), ("a", 0), ("b", 0)], last_update_ms=1000, start_ms=900)
    encoded = fmt.encode_value(value)
    assert encoded == (struct.pack(">hqhib", 0, 7, 2, 60000, 1) + struct.pack(">i", 2)
                       + b"\x00\x01a" + struct.pack(">ii", 1, 0) + b"\x00\x01b" + struct.pack(">iii", 2, 0, 1)
                       + struct.pack(">qq", 1000, 900))
    decoded = fmt.decode_value(encoded)
    assert (decoded.producer_id, decoded.producer_epoch, decoded.state, sorted(decoded.partitions)) == (
        7, 2, fmt.ONGOING, [("a", 0), ("b", 0), ("b", 1)])
    empty = fmt.encode_value(fmt.TransactionLogValue(7, 3, 60000, fmt.EMPTY, [], 1, -1))
    assert empty[17:21] == b"\xff\xff\xff\xff"  # Empty has a null partition list
    flexible = fmt.decode_value(fmt.encode_value(value, version=1))
    assert (flexible.producer_id, sorted(flexible.partitions), flexible.start_ms) == (
        7, [("a", 0), ("b", 0), ("b", 1)], 900)


def test_a_marker_from_an_older_coordinator_is_fenced(new_log):
    """A coordinator that lost its __transaction_state partition (a zombie still sending markers)
    cannot end a transaction whose newer coordinator already wrote a marker here."""
    log = new_log("t-0")
    log.append(txn(7, 0, b"first"))
    log.append_end_txn_marker(7, 0, True, coordinator_epoch=3)  # the new coordinator commits
    log.append(txn(7, 1, b"second"))
    with pytest.raises(ApiError) as refused:
        log.append_end_txn_marker(7, 0, False, coordinator_epoch=2)
    assert refused.value.error_code == ErrorCode.TRANSACTION_COORDINATOR_FENCED
    assert log.has_ongoing_transaction(7, 0)  # nothing was written
    log.append_end_txn_marker(7, 0, True, coordinator_epoch=3)  # the current coordinator still may
    assert not log.has_ongoing_transaction(7, 0)
