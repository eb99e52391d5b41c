"""Creating partitions is durable and cheap: in a batch (kbroker.log.durability) a topic's partition
files and directories are fsynced together when the batch ends — every file fsynced before it is
renamed into place, every directory with a new entry fsynced after — and nothing is left pending;
reopening an unchanged log rewrites nothing."""

from __future__ import annotations

import os
import uuid

import pytest

from kbroker import durable_files
from kbroker.log import LogConfig, LogManager, checkpoint, durability
from kbroker.protocol import records

TID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.fixture
def io_trace(monkeypatch):
    """Every fsync (by path), rename and directory fsync, in order."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_fsync_dir = os.fsync, os.replace, durable_files.fsync_dir

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if not os.path.isdir(path):  # a directory's fsync is recorded as fsync_dir
            events.append(("fsync", path))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", str(dst)))
        real_replace(src, dst)

    def fsync_dir(path):
        events.append(("fsync_dir", os.path.abspath(str(path))))
        real_fsync_dir(path)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(durable_files, "fsync_dir", fsync_dir)
    return events


def create_topic(mgr: LogManager, name: str, partitions: int, epoch: int = 0):
    """As the broker does it (there in a worker thread): open_new, one batch, then add."""
    opened = mgr.open_new(name, list(range(partitions)), TID, LogConfig(), epoch)
    mgr.add(opened)
    return [mgr.get(name, p) for p in range(partitions)]


def test_a_topic_is_created_with_one_round_of_file_fsyncs_then_one_of_directories(tmp_path, io_trace):
    logdir = os.path.abspath(tmp_path / "logs")
    mgr = LogManager.open(logdir)
    io_trace.clear()
    create_topic(mgr, "t", 50, epoch=3)

    fsynced = [p for kind, p in io_trace if kind == "fsync"]
    renamed = [p for kind, p in io_trace if kind == "rename"]
    dirs = [p for kind, p in io_trace if kind == "fsync_dir"]
    partition_dirs = {os.path.join(logdir, f"t-{p}") for p in range(50)}
    # each partition's two files once (partition.metadata, leader-epoch-checkpoint), not 6 fsyncs each
    assert sorted(fsynced) == sorted(os.path.join(d, f + ".tmp") for d in partition_dirs
                                     for f in ("partition.metadata", "leader-epoch-checkpoint"))
    assert sorted(renamed) == sorted(p[:-len(".tmp")] for p in fsynced)
    assert sorted(dirs) == sorted(partition_dirs | {logdir})  # the new dirs' entries too, once each
    # crash order: a file's contents are on disk before its rename, the renames before their dir fsync
    last_fsync = max(i for i, (kind, _) in enumerate(io_trace) if kind == "fsync")
    first_rename = min(i for i, (kind, _) in enumerate(io_trace) if kind == "rename")
    last_rename = max(i for i, (kind, _) in enumerate(io_trace) if kind == "rename")
    first_dir = min(i for i, (kind, _) in enumerate(io_trace) if kind == "fsync_dir")
    assert last_fsync < first_rename and last_rename < first_dir
    assert durability.current() is None


def test_what_a_batch_wrote_is_on_disk_as_the_one_by_one_path_leaves_it(tmp_path):
    batched, single = LogManager.open(str(tmp_path / "a")), LogManager.open(str(tmp_path / "b"))
    create_topic(batched, "t", 3, epoch=2)
    for p in range(3):
        log = single.get_or_create("t", p, topic_id=TID)
        log.assign_leader_epoch(2)
    for p in range(3):
        a, b = tmp_path / "a" / f"t-{p}", tmp_path / "b" / f"t-{p}"
        assert sorted(os.listdir(a)) == sorted(os.listdir(b))
        for name in ("partition.metadata", "leader-epoch-checkpoint"):
            assert (a / name).read_text() == (b / name).read_text()
        assert (a / "leader-epoch-checkpoint").read_text() == "0\n1\n2 0\n"
        assert not [n for n in os.listdir(a) if n.endswith(".tmp")]
    # reopened without a clean close (as after kill -9)
    reopened = LogManager.open(str(tmp_path / "a"))
    assert [reopened.get("t", p).topic_id for p in range(3)] == [checkpoint.topic_id_to_str(TID)] * 3


def test_reads_inside_a_batch_see_its_pending_writes(tmp_path):
    path = str(tmp_path / "f")
    with durability.batch():
        durability.write_atomically(path, b"one")
        durability.write_atomically(path, b"two")  # the last write wins, one fsync
        assert durability.read_text(path) == "two"
        assert not os.path.exists(path)
        with durability.batch():  # nested: joins the outer batch
            durability.write_atomically(path, b"three")
        assert not os.path.exists(path)
    assert open(path).read() == "three"


def test_a_batch_left_by_an_exception_still_makes_its_writes_durable(tmp_path):
    mgr = LogManager.open(str(tmp_path))
    with pytest.raises(RuntimeError):
        with durability.batch():
            mgr.get_or_create("t", 0, topic_id=TID).assign_leader_epoch(1)
            raise RuntimeError("boom")
    assert (tmp_path / "t-0" / "leader-epoch-checkpoint").read_text() == "0\n1\n1 0\n"
    assert (tmp_path / "t-0" / "partition.metadata").exists()


def test_reopening_an_unchanged_log_writes_no_checkpoint(tmp_path, io_trace):
    mgr = LogManager.open(str(tmp_path))
    for log in create_topic(mgr, "t", 2, epoch=0):
        log.append(bytearray(records.build_batch([records.Record(b"k", b"v")])), leader_epoch=0)
    mgr.close()
    io_trace.clear()
    reopened = LogManager.open(str(tmp_path))
    assert io_trace == []  # it used to rewrite (and fsync twice) every leader-epoch-checkpoint at start
    assert reopened.get("t", 1).epochs.entries == [(0, 0)]


def test_a_new_partition_gets_no_empty_epoch_file_until_it_has_an_epoch(tmp_path):
    mgr = LogManager.open(str(tmp_path))
    log = mgr.get_or_create("t", 0, topic_id=TID)
    assert not (tmp_path / "t-0" / "leader-epoch-checkpoint").exists()  # Kafka writes it on becoming leader
    log.assign_leader_epoch(0)
    assert (tmp_path / "t-0" / "leader-epoch-checkpoint").read_text() == "0\n1\n0 0\n"


def test_the_first_find_coordinator_creates_the_offsets_topic_in_one_batch(kbroker, monkeypatch):
    from kbroker.protocol.messages import FindCoordinatorRequest
    from tests.kafka_wire import WireClient

    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    with WireClient(kbroker.bootstrap) as c:
        r = c.request(FindCoordinatorRequest(key_type=0, coordinator_keys=["g"]), 4)
    assert r.coordinators[0].error_code == 0
    # 50 x (partition.metadata + leader-epoch-checkpoint), 50 partition dirs + the log dir, the catalogue
    # (2): 153, where it was 6 in turn per partition (302)
    assert len(fsyncs) <= 160
    for p in range(50):
        d = kbroker.data_dir / f"__consumer_offsets-{p}"
        assert (d / "leader-epoch-checkpoint").read_text() == "0\n1\n0 0\n"
        assert "topic_id: " in (d / "partition.metadata").read_text()
