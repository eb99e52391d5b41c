"""Crash and corruption stories: what a reopen finds, fixes and says."""

import logging
import os

import pytest

from kbroker.log import LogManager, PartitionLog
from kbroker.protocol import records as R

NOW = 1_700_000_000_000


def produce(n=3, ts=NOW, size=100, **kw):
    recs = [R.Record(b"key-%d" % i, b"x" * size, (), ts + i) for i in range(n)]
    return bytearray(R.build_batch(recs, **kw))


def fill(path, batches=20, **config):
    log = PartitionLog.open(str(path), config)
    for i in range(batches):
        log.append(produce(3, ts=NOW + i), NOW)
    data = read_all(log)
    log.close()
    return data


def read_all(log):
    out, offset = b"", log.log_start_offset
    while offset < log.log_end_offset:
        chunk = log.read_bytes(offset, 1 << 30)
        out += chunk
        offset = list(R.iter_batches(chunk))[-1].next_offset
    return out


def load_lines(caplog):
    return [r for r in caplog.records if r.name == "kbroker.log" and r.getMessage().startswith("Loaded partition")]


def test_garbage_after_the_last_batch_is_truncated_with_one_log_line(tmp_path, caplog):
    d = tmp_path / "t-0"
    before = fill(d)
    seg = d / "00000000000000000000.log"
    size = os.path.getsize(seg)
    with open(seg, "ab") as f:
        f.write(os.urandom(777))
    caplog.set_level(logging.INFO, logger="kbroker.log")
    log = PartitionLog.open(str(d))
    (line,) = load_lines(caplog)
    assert line.levelno == logging.WARNING
    assert "truncated 777 bytes" in line.getMessage()
    assert os.path.getsize(seg) == size
    assert log.log_end_offset == 60
    assert read_all(log) == before
    assert log.append(produce(), NOW).base_offset == 60


def test_torn_write_of_half_a_batch_is_truncated(tmp_path):
    d = tmp_path / "t-0"
    before = fill(d)
    seg = d / "00000000000000000000.log"
    with open(seg, "ab") as f:
        f.write(bytes(produce())[:150])
    log = PartitionLog.open(str(d))
    assert log.log_end_offset == 60 and read_all(log) == before


def test_a_corrupt_batch_in_the_tail_cuts_the_log_there(tmp_path):
    d = tmp_path / "t-0"
    fill(d)
    seg = d / "00000000000000000000.log"
    batches = list(R.iter_batches(seg.read_bytes()))
    with open(seg, "r+b") as f:  # flip a byte inside the 15th batch's records
        f.seek(batches[15].position + 100)
        b = f.read(1)
        f.seek(batches[15].position + 100)
        f.write(bytes([b[0] ^ 0xFF]))
    log = PartitionLog.open(str(d))
    assert log.log_end_offset == batches[15].base_offset == 45
    assert os.path.getsize(seg) == batches[15].position


def test_clean_open_logs_one_info_line(tmp_path, caplog):
    d = tmp_path / "t-0"
    fill(d)
    caplog.set_level(logging.INFO, logger="kbroker.log")
    PartitionLog.open(str(d))
    (line,) = load_lines(caplog)
    assert line.levelno == logging.INFO
    assert "offsets [0, 60)" in line.getMessage()


@pytest.mark.parametrize("which", [".index", ".timeindex"])
def test_deleted_index_is_rebuilt_identically(tmp_path, which):
    d = tmp_path / "t-0"
    fill(d, batches=60, **{"index.interval.bytes": 1000})
    path = d / ("00000000000000000000" + which)
    original = path.read_bytes()
    assert original
    path.unlink()
    log = PartitionLog.open(str(d), {"index.interval.bytes": 1000})
    assert path.read_bytes() == original
    assert read_all(log)
    log.close()


def test_garbage_index_is_rebuilt_and_reads_still_work(tmp_path, caplog):
    d = tmp_path / "t-0"
    before = fill(d, batches=60, **{"index.interval.bytes": 1000})
    path = d / "00000000000000000000.index"
    original = path.read_bytes()
    path.write_bytes(os.urandom(len(original)))
    caplog.set_level(logging.INFO, logger="kbroker.log")
    log = PartitionLog.open(str(d), {"index.interval.bytes": 1000})
    assert "rebuilt" in load_lines(caplog)[0].getMessage()
    assert path.read_bytes() == original
    assert read_all(log) == before
    for off in range(0, 180, 11):
        (h, *_) = R.iter_batches(log.read_bytes(off, 1))
        assert h.base_offset <= off <= h.last_offset


def test_index_pointing_past_the_truncated_tail_is_fixed(tmp_path):
    d = tmp_path / "t-0"
    fill(d, batches=60, **{"index.interval.bytes": 1000})
    seg = d / "00000000000000000000.log"
    with open(seg, "r+b") as f:
        f.truncate(os.path.getsize(seg) // 2 + 7)
    log = PartitionLog.open(str(d), {"index.interval.bytes": 1000})
    assert all(p < log.active_segment.size for p in log.active_segment.index.positions)
    n = log.log_end_offset
    assert log.append(produce(), NOW).base_offset == n
    assert list(R.iter_batches(log.read_bytes(n, 1 << 20)))[0].base_offset == n


def test_corruption_in_an_older_segment_drops_everything_after_it(tmp_path):
    d = tmp_path / "t-0"
    fill(d, batches=30, **{"segment.bytes": 2000})
    names = sorted(n for n in os.listdir(d) if n.endswith(".log"))
    assert len(names) > 3
    second = d / names[1]
    data = bytearray(second.read_bytes())
    data[200] ^= 0xFF
    second.write_bytes(data)
    log = PartitionLog.open(str(d))
    assert len(log.segments) == 2
    assert sorted(n for n in os.listdir(d) if n.endswith(".log")) == names[:2]
    assert log.log_end_offset < 30 * 3


def test_recovery_point_spares_flushed_data_from_revalidation(tmp_path):
    logdir = tmp_path / "logs"
    mgr = LogManager.open(str(logdir))
    log = mgr.get_or_create("t", 0)
    for _ in range(10):
        log.append(produce(), NOW)
    mgr.close()
    mgr = LogManager.open(str(logdir))
    log = mgr.get("t", 0)
    assert log.recovery_point == 30 and log.log_end_offset == 30
    # ...but garbage written after a clean shutdown is still found: the tail is always walked
    mgr.close()
    with open(logdir / "t-0" / "00000000000000000000.log", "ab") as f:
        f.write(b"\x00" * 5 + os.urandom(100))
    mgr = LogManager.open(str(logdir))
    assert mgr.get("t", 0).log_end_offset == 30


def test_a_crc_flip_below_the_recovery_point_is_not_revalidated(tmp_path):
    """Flushed data is trusted (as Kafka does); only the structure of every header is walked."""
    d = tmp_path / "t-0"
    fill(d)
    seg = d / "00000000000000000000.log"
    data = bytearray(seg.read_bytes())
    data[300] ^= 0xFF
    seg.write_bytes(data)
    assert PartitionLog.open(str(d), recovery_point=60).log_end_offset == 60
    assert PartitionLog.open(str(d), recovery_point=0).log_end_offset < 60


def test_empty_directory_and_stray_files(tmp_path):
    d = tmp_path / "t-3"
    d.mkdir()
    (d / "00000000000000000500.index").write_bytes(b"\x00" * 8)  # index without its .log
    (d / "leader-epoch-checkpoint.tmp").write_text("junk")
    log = PartitionLog.open(str(d), log_start_offset=0)
    assert (log.topic, log.partition, log.log_end_offset) == ("t", 3, 0)
    assert not (d / "00000000000000000500.index").exists()
    assert not (d / "leader-epoch-checkpoint.tmp").exists()


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=12), cut=st.integers(0, 10**6),
       garbage=st.binary(max_size=100))
def test_any_torn_tail_keeps_exactly_the_whole_batches_before_it(tmp_path_factory, sizes, cut, garbage):
    d = tmp_path_factory.mktemp("prop") / "t-0"
    log = PartitionLog.open(str(d), {"segment.bytes": 1500, "index.interval.bytes": 200})
    for n in sizes:
        log.append(produce(n, size=40), NOW)
    before = read_all(log)
    log.close()
    seg = d / sorted(n for n in os.listdir(d) if n.endswith(".log"))[-1]
    data = seg.read_bytes()
    cut %= len(data) + 1
    seg.write_bytes(data[:cut] + garbage)
    log = PartitionLog.open(str(d), {"segment.bytes": 1500, "index.interval.bytes": 200})
    kept = [h for h in R.iter_batches(data[:cut])]
    base = int(seg.name[:20])
    assert log.log_end_offset == (kept[-1].next_offset if kept else base)
    assert before.startswith(read_all(log))
    n = log.log_end_offset
    assert log.append(produce(2), NOW).base_offset == n
    for off in range(log.log_start_offset, log.log_end_offset):
        (h, *_) = R.iter_batches(log.read_bytes(off, 1))
        assert h.base_offset <= off <= h.last_offset
    log.close()
