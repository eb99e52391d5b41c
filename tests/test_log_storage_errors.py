"""The disk log when its storage fails: a full disk answers KAFKA_STORAGE_ERROR for the append and
leaves no trace of it, so once space is back the log goes on as if the failed append never came;
a failure that leaves the files out of step with memory takes the log offline until it is reopened,
and reopening (recovery) loses nothing acknowledged. On the wire, the producer is told
KAFKA_STORAGE_ERROR for that partition only, and the broker serves the others."""

from __future__ import annotations

import errno
import os

import pytest

from kbroker.log import ORIGIN_COORDINATOR, PartitionLog, StorageError, files
from kbroker.protocol import records as R
from kbroker.protocol.errors import ErrorCode
from kbroker.protocol.messages import ProduceRequest
from kbroker.protocol.records import build_end_txn_marker
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata
from tests.test_produce_consume import consume_confluent

NOW = 1_700_000_000_000
PID = 77


def batch(i: int, *, seq: int | None = None) -> bytearray:
    recs = [R.Record(b"key-%d" % i, b"value-%d" % i * 20, (), NOW)]
    if seq is None:
        return bytearray(R.build_batch(recs))
    return bytearray(R.build_batch(recs, producer_id=PID, producer_epoch=0, base_sequence=seq))


class FullDisk:
    """Stands in for the write system call the log's files use: each write (to ``only_fd`` when
    given) lands half its bytes, then fails with ENOSPC, as a write does when the disk fills up."""

    def __init__(self, monkeypatch, only_fd: int | None = None):
        self.monkeypatch = monkeypatch
        self.only_fd = only_fd
        self.failed_writes = 0

    def __enter__(self):
        real_write = os.write

        def write(fd, data):
            if self.only_fd is not None and fd != self.only_fd:
                return real_write(fd, data)
            real_write(fd, bytes(data[: len(data) // 2]))
            self.failed_writes += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        self.monkeypatch.setattr(files, "write", write)
        return self

    def __exit__(self, *exc):
        self.monkeypatch.setattr(files, "write", os.write)  # space is back


def stored_batches(log) -> list[tuple[int, int, bytes]]:
    """(base offset, last offset, value of the first record) of every batch, CRCs checked."""
    data = log.read_bytes(log.log_start_offset, 1 << 30)
    return [(h.base_offset, h.last_offset, R.decode_batch_records(data[h.position:h.position + h.size])[0].value)
            for h in R.iter_batches(data, check=True)]


def segment_file_size(log) -> int:
    return os.path.getsize(log.active_segment.log_path)


def test_a_full_disk_fails_the_append_with_a_storage_error_and_leaves_no_trace(tmp_path, monkeypatch):
    log = PartitionLog.open(str(tmp_path / "orders-0"))
    acknowledged = [log.append(batch(i, seq=i), NOW).base_offset for i in range(3)]
    assert acknowledged == [0, 1, 2]
    before = stored_batches(log)

    with FullDisk(monkeypatch) as disk:
        with pytest.raises(StorageError) as failure:
            log.append(batch(3, seq=3), NOW)
    assert disk.failed_writes == 1
    assert failure.value.error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert "No space left on device" in str(failure.value)
    # the half-written batch was truncated away: the file and the log agree
    assert log.log_end_offset == 3 and segment_file_size(log) == log.size_in_bytes
    assert stored_batches(log) == before

    # space is back: the producer's retry is appended as new (its sequence was not taken), next in line
    retried = log.append(batch(3, seq=3), NOW)
    assert (retried.base_offset, retried.duplicate) == (3, False)
    assert log.append(batch(4, seq=4), NOW).base_offset == 4
    expected = [(i, i, b"value-%d" % i * 20) for i in range(5)]
    assert stored_batches(log) == expected

    # a restart (recovery re-checks every batch from recovery point 0) loses nothing acknowledged
    reopened = PartitionLog.open(str(tmp_path / "orders-0"))
    assert reopened.log_end_offset == 5 and stored_batches(reopened) == expected
    assert reopened.append(batch(5, seq=4), NOW).duplicate  # and remembers the producer
    reopened.close()


def test_a_full_disk_when_index_entries_are_written_fails_the_append_before_the_batch(tmp_path, monkeypatch,
                                                                                       caplog):
    log = PartitionLog.open(str(tmp_path / "orders-0"), {"index.interval.bytes": 0})  # an entry per batch
    while not log.active_segment.index.chunk_full:  # a chunk of index entries waits to be written
        log.append(batch(log.log_end_offset), NOW)
    end, size = log.log_end_offset, log.size_in_bytes
    with FullDisk(monkeypatch) as disk:
        with pytest.raises(StorageError):
            log.append(batch(end), NOW)
    assert disk.failed_writes == 1  # the index write; the batch was never written
    assert (log.log_end_offset, log.size_in_bytes, segment_file_size(log)) == (end, size, size)
    assert os.path.getsize(log.active_segment.index.path) == 0  # the half-written entries were truncated

    assert log.append(batch(end), NOW).base_offset == end  # space is back
    assert os.path.getsize(log.active_segment.index.path) % 8 == 0
    assert [b[0] for b in stored_batches(log)] == list(range(end + 1))
    log.close()
    with caplog.at_level("INFO", logger="kbroker.log"):
        reopened = PartitionLog.open(str(tmp_path / "orders-0"), {"index.interval.bytes": 0})
    assert "rebuilt" not in caplog.text  # the index file on disk is whole and right
    assert [b[0] for b in stored_batches(reopened)] == list(range(end + 1))
    reopened.close()


def test_a_write_that_cannot_be_undone_takes_the_log_offline_until_it_is_reopened(tmp_path, monkeypatch):
    log = PartitionLog.open(str(tmp_path / "orders-0"))
    for i in range(2):
        log.append(batch(i), NOW)

    def ftruncate_fails(fd, length):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with FullDisk(monkeypatch):
        monkeypatch.setattr(os, "ftruncate", ftruncate_fails)
        with pytest.raises(StorageError):
            log.append(batch(2), NOW)
        monkeypatch.undo()
    assert segment_file_size(log) > log.size_in_bytes  # half a batch of garbage after the last whole one
    with pytest.raises(StorageError) as offline:  # space is back, but nothing is written after garbage
        log.append(batch(3), NOW)
    assert offline.value.error_code == ErrorCode.KAFKA_STORAGE_ERROR and "offline" in str(offline.value)
    assert [b[0] for b in stored_batches(log)] == [0, 1]  # reads still serve what was acknowledged

    reopened = PartitionLog.open(str(tmp_path / "orders-0"))  # recovery truncates the torn tail
    assert [b[0] for b in stored_batches(reopened)] == [0, 1]
    assert reopened.append(batch(2), NOW).base_offset == 2
    assert segment_file_size(reopened) == reopened.size_in_bytes
    reopened.close()


def test_a_marker_stored_but_not_indexed_takes_the_log_offline_and_recovery_indexes_it(tmp_path):
    log = PartitionLog.open(str(tmp_path / "t-0"))
    log.append(R.build_batch([R.Record(None, b"x")], producer_id=1, producer_epoch=0, base_sequence=0,
                             transactional=True))
    os.mkdir(log.active_segment.txn_index.path)  # the .txnindex cannot be written
    with pytest.raises(StorageError):
        log.append(build_end_txn_marker(False, 1, 0), origin=ORIGIN_COORDINATOR)
    # the marker is in the log and in memory; the log refuses appends until reopened
    assert (log.log_end_offset, log.last_stable_offset) == (2, 2)
    assert [(a.first_offset, a.last_offset) for a in log.aborted_transactions(0, 2)] == [(0, 1)]
    with pytest.raises(StorageError):
        log.append(batch(0), NOW)

    os.rmdir(log.active_segment.txn_index.path)
    reopened = PartitionLog.open(str(tmp_path / "t-0"))
    assert [(a.first_offset, a.last_offset) for a in reopened.aborted_transactions(0, 2)] == [(0, 1)]
    assert reopened.append(batch(0), NOW).base_offset == 2
    reopened.close()


def produce_to_partitions(client: WireClient, topic: str, batches: dict[int, bytes]) -> dict[int, tuple]:
    request = ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.PartitionProduceData(index=p, records=b)
                                    for p, b in batches.items()])])
    (answer,) = client.request(request, 9).responses
    return {p.index: (p.error_code, p.base_offset) for p in answer.partition_responses}


def test_a_full_disk_under_one_partition_answers_kafka_storage_error_for_it_alone(kbroker_factory, monkeypatch):
    broker = kbroker_factory(**{"num.partitions": 2})
    create_topics_by_metadata(broker.bootstrap, "orders")
    with WireClient(broker.bootstrap) as client:
        assert produce_to_partitions(client, "orders", {0: R.build_batch([R.Record(b"k", b"a0")]),
                                                        1: R.build_batch([R.Record(b"k", b"b0")])}) == {
            0: (ErrorCode.NONE, 0), 1: (ErrorCode.NONE, 0)}
        full = broker.broker.logs.get("orders", 0).active_segment.fd
        with FullDisk(monkeypatch, only_fd=full):
            answers = produce_to_partitions(client, "orders", {0: R.build_batch([R.Record(b"k", b"lost")]),
                                                               1: R.build_batch([R.Record(b"k", b"b1")])})
        assert answers == {0: (ErrorCode.KAFKA_STORAGE_ERROR, -1), 1: (ErrorCode.NONE, 1)}
        # the same connection goes on; with space back partition 0 takes the next batch at offset 1
        assert produce_to_partitions(client, "orders", {0: R.build_batch([R.Record(b"k", b"a1")])}) == {
            0: (ErrorCode.NONE, 1)}
    received = consume_confluent(broker.bootstrap, "orders", 4, partitions=2)
    assert sorted((r.partition, offset, r.value) for offset, r in received) == [
        (0, 0, b"a0"), (0, 1, b"a1"), (1, 0, b"b0"), (1, 1, b"b1")]
