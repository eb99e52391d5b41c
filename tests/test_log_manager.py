"""A log directory as Kafka lays it out: partition dirs plus log-dir level checkpoint files."""

import os
import uuid

from kbroker.log import LogConfig, LogManager
from kbroker.log import checkpoint
from kbroker.protocol import records as R

NOW = 1_700_000_000_000


def produce(n=3):
    return bytearray(R.build_batch([R.Record(b"k", b"v" * 50, (), NOW + i) for i in range(n)]))


def test_partitions_checkpoints_and_restart(tmp_path):
    logdir = str(tmp_path / "kafka-logs")
    tid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    mgr = LogManager.open(logdir)
    a0 = mgr.get_or_create("orders", 0, topic_id=tid)
    a1 = mgr.get_or_create("orders", 1, topic_id=tid)
    assert mgr.get_or_create("orders", 0) is a0
    b0 = mgr.get_or_create("my-topic-with-dashes", 7, config={"segment.bytes": 2000})
    for _ in range(3):
        a0.append(produce(), NOW)
    a1.append(produce(), NOW)
    for _ in range(20):
        b0.append(produce(), NOW)
    b0.delete_records_before(31)
    mgr.close()

    with open(os.path.join(logdir, "recovery-point-offset-checkpoint")) as f:
        assert f.read() == "0\n3\nmy-topic-with-dashes 7 60\norders 0 9\norders 1 3\n"
    with open(os.path.join(logdir, "log-start-offset-checkpoint")) as f:
        assert f.read() == "0\n3\nmy-topic-with-dashes 7 31\norders 0 0\norders 1 0\n"
    with open(os.path.join(logdir, "orders-0", "partition.metadata")) as f:
        assert f.read() == "version: 0\ntopic_id: EjRWeBI0VngSNFZ4EjRWeA\n"
    assert checkpoint.topic_id_from_str("EjRWeBI0VngSNFZ4EjRWeA") == tid.bytes

    mgr = LogManager.open(logdir, configs={"my-topic-with-dashes": {"segment.bytes": 2000}})
    assert sorted(mgr.logs) == [("my-topic-with-dashes", 7), ("orders", 0), ("orders", 1)]
    b0 = mgr.get("my-topic-with-dashes", 7)
    assert (b0.log_start_offset, b0.log_end_offset, b0.recovery_point) == (31, 60, 60)
    assert b0.config.segment_bytes == 2000
    assert mgr.get("orders", 0).topic_id == "EjRWeBI0VngSNFZ4EjRWeA"
    assert mgr.get("orders", 0).append(produce(), NOW).base_offset == 9
    mgr.close()


def test_delete_partition_removes_its_directory_and_checkpoint_entries(tmp_path):
    logdir = str(tmp_path / "logs")
    mgr = LogManager.open(logdir)
    mgr.get_or_create("t", 0).append(produce(), NOW)
    mgr.get_or_create("t", 1).append(produce(), NOW)
    mgr.delete_partition("t", 0)
    assert not os.path.exists(os.path.join(logdir, "t-0"))
    assert checkpoint.read_offset_checkpoint(os.path.join(logdir, "recovery-point-offset-checkpoint")).keys() == {("t", 1)}
    mgr.close()


def test_retention_and_flush_hooks_for_the_server(tmp_path):
    mgr = LogManager.open(str(tmp_path), default_config=LogConfig(segment_bytes=1000, retention_ms=1000, flush_ms=10))
    log = mgr.get_or_create("t", 0, config=LogConfig(segment_bytes=1000, retention_ms=1000, flush_ms=10))
    for _ in range(10):
        log.append(produce(), NOW)
    assert mgr.flush_due_logs(NOW + 10**12) == [log]
    log.flush()
    mgr.write_checkpoints()
    assert mgr.enforce_retention(NOW + 10_000) > 0
    assert log.log_start_offset == log.log_end_offset == 30
    mgr.close()


def test_leader_epoch_checkpoint_survives_and_is_kafka_text(tmp_path):
    mgr = LogManager.open(str(tmp_path))
    log = mgr.get_or_create("t", 0)
    log.assign_leader_epoch(4)
    log.append(produce(), NOW, leader_epoch=4)
    mgr.close()
    with open(tmp_path / "t-0" / "leader-epoch-checkpoint") as f:
        assert f.read() == "0\n1\n4 0\n"
    mgr = LogManager.open(str(tmp_path))
    assert mgr.get("t", 0).end_offset_for_epoch(4) == (4, 3)
    assert mgr.get("t", 0).list_offsets(-1) == (-1, 3, 4)


def test_logs_opened_lazily_keep_their_checkpoints_until_used(tmp_path):
    """A broker with many partitions serves at once: logs are opened at first use (or by open_some in
    the background); one not opened yet keeps its recovery point and log start offset, and a torn
    tail left by a crash is recovered when it is opened, before anything reads it."""
    logdir = str(tmp_path / "kafka-logs")
    mgr = LogManager.open(logdir)
    for partition in range(3):
        log = mgr.get_or_create("orders", partition)
        for _ in range(partition + 1):
            log.append(produce(), NOW)
    mgr.get("orders", 1).delete_records_before(3)
    mgr.close()
    with open(os.path.join(logdir, "orders-2", "00000000000000000000.log"), "ab") as segment:
        segment.write(b"\x00\x00\x00\x00\x00\x00\x00\x09half a batch")  # a torn write after the checkpoint

    lazy = LogManager.open(logdir, lazily=True)
    assert (lazy.unopened, lazy.logs) == (3, {})
    lazy.write_checkpoints()  # nothing opened: the checkpoints say what they said
    with open(os.path.join(logdir, "recovery-point-offset-checkpoint")) as f:
        assert f.read() == "0\n3\norders 0 3\norders 1 6\norders 2 9\n"
    with open(os.path.join(logdir, "log-start-offset-checkpoint")) as f:
        assert f.read() == "0\n3\norders 0 0\norders 1 3\norders 2 0\n"

    torn = lazy.get("orders", 2)  # opened (and its tail recovered) at first use
    assert (lazy.unopened, torn.log_end_offset) == (2, 9)
    assert lazy.get("orders", 1).log_start_offset == 3
    assert lazy.open_some(10) == 0 and lazy.get("orders", 0).log_end_offset == 3
    lazy.close()
