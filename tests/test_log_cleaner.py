"""The log cleaner on the disk log (kbroker.log.cleaner): stories of a compacted topic's partition.

Each story appends to a PartitionLog of a LogManager, runs one cleaning the way the broker does
(``grab`` then the job's steps, here on the test's thread) and reads the log back from offset 0, as
a consumer would. The memory log is not cleaned (kbroker.log.cleaner's docstring), so these are
disk-only, but for the produce-time refusal of keyless records, which both logs share. Killing the process at each step of a segment swap runs the cleaning in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from kbroker.log import LogManager
from kbroker.log.config import LogConfig
from kbroker.log.segment_swap import CRASH_ENV
from kbroker.protocol import compression
from kbroker.protocol import records as rec
from kbroker.protocol.errors import ApiError, ErrorCode
from tests.log_kinds import new_log  # noqa: F401 (a fixture)

NOW = 1_700_000_000_000
DAY = 24 * 3600 * 1000

COMPACTED = {"cleanup.policy": "compact", "segment.bytes": "1200", "min.cleanable.dirty.ratio": "0.01",
             "delete.retention.ms": str(DAY)}


def open_log(tmp_path, **config):
    mgr = LogManager(str(tmp_path))
    log = mgr.get_or_create("prices", 0, config=LogConfig.from_dict({**COMPACTED, **config}))
    return mgr, log


def put(log, key, value, now=NOW, **batch):
    return log.append(rec.build_batch([rec.Record(key and key.encode(), value and value.encode())], now_ms=now,
                                      **batch), now_ms=now)


def clean(mgr, now=NOW) -> bool:
    job = mgr.cleaner.grab(now)
    if job is None:
        return False
    job.run_here(now)
    return True


def records(log, read_committed=False):
    """(offset, key, value) of every record a consumer from offset 0 gets (aborted ones dropped for
    read_committed, as the consumer does from the aborted-transaction list)."""
    upper = log.last_stable_offset if read_committed else None
    aborted = log.aborted_transactions(0, log.log_end_offset) if read_committed else []
    out = []
    for h, data in batches(log, upper):
        if h.is_control:
            continue
        if any(a.producer_id == h.producer_id and a.first_offset <= h.base_offset <= a.last_offset for a in aborted):
            continue
        for r in rec.decode_batch_records(data[h.position:h.position + h.size]):
            out.append((r.offset, r.key and r.key.decode(), r.value and r.value.decode()))
    return out


def batches(log, upper=None):
    """Every (header, bytes) from the log start, fetch after fetch, as a consumer reads."""
    offset = log.log_start_offset
    while True:
        data = log.read_bytes(offset, 1 << 24, max_offset=upper)
        if not data:
            return
        for h in rec.iter_batches(data, check=False):
            yield h, data
            offset = h.next_offset


def latest_per_key(history):
    latest = {}
    for offset, key, value in history:
        latest[key] = (offset, key, value)
    return sorted(latest.values())


def fill(log, updates, keys=10, tombstone_every=0, now=NOW):
    """``updates`` single-record batches over ``keys`` keys; every ``tombstone_every``-th a delete.
    Returns the history (offset, key, value)."""
    history = []
    for i in range(updates):
        key = f"k{i % keys}"
        value = None if tombstone_every and i % tombstone_every == tombstone_every - 1 else f"v{i}"
        history.append((put(log, key, value, now).base_offset, key, value))
    return history


def roll(log, now=NOW):
    """Start a new active segment so what was written is cleanable."""
    log.roll(now)


def test_a_consumer_from_zero_sees_the_latest_value_of_each_key_in_offset_order(tmp_path):
    mgr, log = open_log(tmp_path)
    history = fill(log, 300, keys=12)
    roll(log)
    before = log.size_in_bytes
    assert clean(mgr)
    assert records(log) == latest_per_key(history)
    assert log.size_in_bytes < before / 5
    assert log.log_end_offset == 300 and log.log_start_offset == 0
    # reading from any offset in a gap gives the next record kept
    first_kept = records(log)[0][0]
    assert rec.parse_header(log.read_bytes(1, 1000)).base_offset >= 1
    assert first_kept > 0
    mgr.close()


def test_updates_after_a_cleaning_are_cleaned_by_the_next_one(tmp_path):
    mgr, log = open_log(tmp_path)
    history = fill(log, 120, keys=5)
    roll(log)
    assert clean(mgr)
    history += [(put(log, f"k{i % 7}", f"w{i}").base_offset, f"k{i % 7}", f"w{i}") for i in range(80)]
    roll(log)
    assert clean(mgr)
    assert records(log) == latest_per_key(history)
    mgr.close()


def test_small_cleaned_segments_are_merged(tmp_path):
    mgr, log = open_log(tmp_path)
    fill(log, 400, keys=4)
    roll(log)
    assert clean(mgr)
    history = records(log)
    assert clean(mgr, NOW + 1) is False  # nothing dirty: the ratio is 0
    fill(log, 1, keys=4)  # a little new dirt merges the small cleaned segments into one
    roll(log)
    assert clean(mgr)
    assert len([s for s in log.segments[:-1]]) == 1
    assert [r[1] for r in records(log)] == sorted({r[1] for r in history}, key=[r[1] for r in records(log)].index)
    mgr.close()


def test_the_active_segment_is_never_cleaned(tmp_path):
    mgr, log = open_log(tmp_path, **{"segment.bytes": str(1 << 20)})
    history = fill(log, 100, keys=3)
    assert clean(mgr) is False  # everything is in the active segment
    assert records(log) == history
    mgr.close()


def test_tombstones_stay_for_delete_retention_ms_after_their_cleaning_then_go(tmp_path):
    mgr, log = open_log(tmp_path)
    history = fill(log, 60, keys=6, tombstone_every=10)  # k9 ... every 10th record deletes its key
    roll(log)
    assert clean(mgr, NOW)
    live = latest_per_key(history)
    assert records(log) == live  # the tombstones (value None) are still there
    assert any(value is None for _, _, value in live)
    later = put(log, "other", "x", NOW + 1000)  # a cleaning in between keeps the tombstones
    roll(log)
    assert clean(mgr, NOW + 1000)
    live.append((later.base_offset, "other", "x"))
    assert records(log) == live
    assert clean(mgr, NOW + DAY - 1) is False  # not due before delete.retention.ms
    assert clean(mgr, NOW + DAY + 1)  # due: cleaned even though nothing new is dirty
    assert records(log) == [r for r in live if r[2] is not None]
    mgr.close()


def test_a_later_value_resurrects_a_deleted_key(tmp_path):
    mgr, log = open_log(tmp_path)
    history = [(put(log, "a", "1").base_offset, "a", "1"), (put(log, "a", None).base_offset, "a", None),
               (put(log, "a", "2").base_offset, "a", "2")]
    roll(log)
    assert clean(mgr)
    assert records(log) == [history[-1]]
    mgr.close()


def test_min_compaction_lag_keeps_young_segments_dirty(tmp_path):
    mgr, log = open_log(tmp_path, **{"min.compaction.lag.ms": str(60_000)})
    history = fill(log, 100, keys=3, now=NOW)
    roll(log)
    assert clean(mgr, NOW + 1000) is False
    assert records(log) == history
    assert clean(mgr, NOW + 61_000)
    assert records(log) == latest_per_key(history)
    mgr.close()


def test_max_compaction_lag_forces_a_cleaning_below_the_dirty_ratio(tmp_path):
    mgr, log = open_log(tmp_path, **{"min.cleanable.dirty.ratio": "0.99", "max.compaction.lag.ms": str(60_000)})
    fill(log, 100, keys=3)
    roll(log)
    assert clean(mgr, NOW)  # ratio 1.0 > 0.99
    fill(log, 10, keys=3)
    roll(log)
    assert clean(mgr, NOW + 1000) is False  # a little dirt: under the ratio
    assert clean(mgr, NOW + 61_000)  # the dirty section waited past max.compaction.lag.ms
    mgr.close()


def test_keyless_records_are_refused_on_a_compacted_topic(new_log):
    log = new_log(cleanup_policy="compact")  # both logs: the check is the append's (kbroker.log.base)
    batch = rec.build_batch([rec.Record(b"k", b"v"), rec.Record(None, b"no key"), rec.Record(None, b"x")], now_ms=NOW)
    with pytest.raises(ApiError) as refused:
        log.append(batch, now_ms=NOW)
    assert refused.value.error_code == ErrorCode.INVALID_RECORD
    assert [i for i, _ in refused.value.record_errors] == [1, 2]
    assert "without key" in refused.value.record_errors[0][1]
    compressed = rec.build_batch([rec.Record(None, b"v")], now_ms=NOW, compression_type=compression.GZIP)
    with pytest.raises(ApiError):
        log.append(compressed, now_ms=NOW)
    assert log.log_end_offset == 0
    assert log.append(rec.build_batch([rec.Record(b"k", None)], now_ms=NOW), now_ms=NOW).base_offset == 0


def test_keyless_records_are_fine_on_a_topic_that_is_not_compacted(new_log):
    log = new_log(cleanup_policy="delete")
    assert log.append(rec.build_batch([rec.Record(None, b"v")], now_ms=NOW), now_ms=NOW).base_offset == 0


def test_compressed_batches_are_rewritten_with_their_codec(tmp_path):
    mgr, log = open_log(tmp_path, **{"segment.bytes": "4000"})
    history = []
    for i in range(30):
        rs = [rec.Record(f"k{j}".encode(), f"v{i}-{j}".encode()) for j in range(i % 3, i % 3 + 3)]
        result = log.append(rec.build_batch(rs, now_ms=NOW, compression_type=compression.ZSTD), now_ms=NOW)
        history += [(result.base_offset + n, f"k{j}", f"v{i}-{j}") for n, j in enumerate(range(i % 3, i % 3 + 3))]
    roll(log)
    assert clean(mgr)
    assert records(log) == latest_per_key(history)
    codecs = {h.compression for h, _ in batches(log) if h.record_count}
    assert codecs == {compression.ZSTD}
    mgr.close()


def idempotent(log, key, value, seq, pid=7, epoch=0):
    return put(log, key, value, producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def test_an_idempotent_producer_keeps_its_sequence_after_cleaning_and_restart(tmp_path):
    mgr, log = open_log(tmp_path)
    for seq in range(40):
        idempotent(log, "same", f"v{seq}", seq)
    put(log, "same", "from someone else")  # the producer's last batch is now obsolete
    roll(log)
    assert clean(mgr)
    mgr.close()
    mgr = LogManager.open(str(tmp_path), configs={"prices": LogConfig.from_dict(COMPACTED)})
    log = mgr.get("prices", 0)
    assert records(log) == [(40, "same", "from someone else")]
    retry = idempotent(log, "same", "v39", 39)  # a retry of its last batch is still known
    assert retry.duplicate and retry.base_offset == 39
    assert idempotent(log, "same", "v40", 40).base_offset == log.log_end_offset - 1
    mgr.close()


def transaction(log, pid, values, commit, epoch=0, first_seq=0):
    for i, (key, value) in enumerate(values):
        put(log, key, value, producer_id=pid, producer_epoch=epoch, base_sequence=first_seq + i, transactional=True)
    return log.append_end_txn_marker(pid, epoch, commit, now_ms=NOW)


def test_aborted_transactions_are_removed_and_committed_ones_kept(tmp_path):
    mgr, log = open_log(tmp_path)
    transaction(log, 1, [("a", "committed-a"), ("b", "committed-b")], commit=True)
    transaction(log, 2, [("a", "aborted-a"), ("c", "aborted-c")], commit=False)
    put(log, "d", "plain")
    roll(log)
    committed_view = records(log, read_committed=True)
    assert clean(mgr)
    assert records(log) == [(0, "a", "committed-a"), (1, "b", "committed-b"), (6, "d", "plain")]
    assert records(log, read_committed=True) == committed_view
    # producer 2's last batch stays as an empty header (its sequence), so its ABORT marker stays too
    kept = [(h.base_offset, h.record_count, h.is_control) for h, _ in batches(log)]
    assert kept == [(0, 1, False), (1, 1, False), (2, 1, True), (4, 0, False), (5, 1, True), (6, 1, False)]
    mgr.close()


def test_a_marker_goes_once_its_transaction_is_gone_and_delete_retention_ms_passed(tmp_path):
    mgr, log = open_log(tmp_path)
    transaction(log, 2, [("a", "aborted")], commit=False)  # offsets 0, marker 1
    transaction(log, 2, [("b", "committed")], commit=True, first_seq=1)  # 2, marker 3

    def markers():
        return [h.base_offset for h, _ in batches(log) if h.is_control]

    def dirt_and_clean(now):
        put(log, "dirt", str(now))
        roll(log)
        assert clean(mgr, now)

    roll(log)
    assert clean(mgr, NOW)  # the aborted data goes; its marker stays this round
    assert markers() == [1, 3]
    dirt_and_clean(NOW + 1)  # no data of the aborted transaction left: its marker gets a delete horizon
    assert markers() == [1, 3]
    assert clean(mgr, NOW + DAY) is False
    assert clean(mgr, NOW + DAY + 2)  # past the horizon
    assert markers() == [3]  # the commit marker stays while its data does
    assert [r for r in records(log) if r[1] != "dirt"] == [(2, "b", "committed")]
    mgr.close()


def test_an_open_transaction_is_never_cleaned(tmp_path):
    mgr, log = open_log(tmp_path)
    put(log, "a", "1")
    put(log, "k", "open", producer_id=3, producer_epoch=0, base_sequence=0, transactional=True)
    put(log, "a", "2")
    put(log, "a", "3")
    roll(log)
    assert log.last_stable_offset == 1
    assert clean(mgr)
    assert records(log) == [(0, "a", "1"), (1, "k", "open"), (2, "a", "2"), (3, "a", "3")]
    log.append_end_txn_marker(3, 0, True, now_ms=NOW)
    roll(log)
    assert clean(mgr)
    assert records(log) == [(1, "k", "open"), (3, "a", "3")]
    mgr.close()


def test_a_small_dedupe_buffer_cleans_in_several_rounds(tmp_path):
    mgr, log = open_log(tmp_path)
    from kbroker.log.cleaner import CleanerConfig
    mgr.cleaner.configure(CleanerConfig(dedupe_buffer_size=2000))  # ~15 keys at a time
    history = fill(log, 400, keys=40)
    roll(log)
    rounds = 0
    while clean(mgr, NOW + rounds) and rounds < 50:
        rounds += 1
    assert rounds > 1
    assert records(log) == latest_per_key(history)
    mgr.close()


def test_a_read_in_flight_keeps_the_replaced_segment(tmp_path):
    mgr, log = open_log(tmp_path, **{"file.delete.delay.ms": "60000"})
    fill(log, 100, keys=2)
    roll(log)
    in_flight = log.read(0, 1 << 20)  # a Fetch answer about to be sent with sendfile
    expected = in_flight.to_bytes()
    assert clean(mgr)
    assert in_flight.to_bytes() == expected  # the old file is unlinked but still open
    mgr.close()


def test_a_truncation_during_a_cleaning_voids_it(tmp_path):
    from kbroker.log.cleaner import CleaningAborted

    mgr, log = open_log(tmp_path)
    fill(log, 100, keys=5)
    roll(log)
    put(log, "k0", "newest, then cut")  # the map sees it; the follower's truncation removes it
    roll(log)
    job = mgr.cleaner.grab(NOW)
    pairs = job.accept(job.work.run())
    log.truncate_to(100)  # a divergent tail: offset 100 goes
    job.commit(pairs[0][1])
    with pytest.raises(CleaningAborted):
        job.swap(*pairs[0])
    job.abort()
    assert ("prices", 0) not in mgr.cleaner.in_progress
    assert records(log)[-1] == (99, "k4", "v99") and len(records(log)) == 100  # nothing cleaned away
    assert not [n for n in os.listdir(tmp_path / "prices-0") if n.endswith((".cleaned", ".swap"))]
    mgr.close()


def test_the_checkpoint_and_sizes_survive_a_restart(tmp_path):
    mgr, log = open_log(tmp_path)
    history = fill(log, 200, keys=5)
    roll(log)
    assert clean(mgr)
    size = log.size_in_bytes
    mgr.close()
    mgr = LogManager.open(str(tmp_path), configs={"prices": LogConfig.from_dict(COMPACTED)})
    log = mgr.get("prices", 0)
    assert records(log) == latest_per_key(history)
    assert log.size_in_bytes == size
    assert clean(mgr) is False  # the checkpoint says everything is clean
    mgr.delete_partition("prices", 0)
    assert ("prices", 0) not in mgr.cleaner.checkpoints
    mgr.close()


def test_retention_and_compaction_together(tmp_path):
    mgr, log = open_log(tmp_path, **{"cleanup.policy": "compact,delete", "retention.ms": str(DAY)})
    fill(log, 100, keys=5, now=NOW)
    roll(log)
    assert clean(mgr, NOW)
    history = fill(log, 50, keys=5, now=NOW + 2 * DAY)
    roll(log, NOW + 2 * DAY)
    log.enforce_retention(NOW + 2 * DAY)
    assert log.log_start_offset == 100
    assert clean(mgr, NOW + 2 * DAY)
    assert records(log) == latest_per_key(history)
    mgr.close()


CRASHING_CLEANER = textwrap.dedent("""
    import sys
    from kbroker.log import LogManager
    from kbroker.log.config import LogConfig
    mgr = LogManager.open(sys.argv[1], configs={"prices": LogConfig.from_dict(%r)})
    job = mgr.cleaner.grab(%d)
    job.run_here(%d)
    print("finished")
""")


@pytest.mark.parametrize("step", ["cleaned", "swap", "deleted", "none"])
def test_killed_during_a_swap_the_log_is_whole_after_recovery(tmp_path, step):
    mgr, log = open_log(tmp_path)
    history = fill(log, 300, keys=9, tombstone_every=7)
    roll(log)
    uncleaned = records(log)
    mgr.close()
    env = {**os.environ, CRASH_ENV: step}
    child = subprocess.run([sys.executable, "-c", CRASHING_CLEANER % (COMPACTED, NOW, NOW), str(tmp_path)],
                           env=env, capture_output=True, text=True, timeout=60)
    assert (child.returncode == -9) == (step != "none"), child.stderr
    mgr = LogManager.open(str(tmp_path), configs={"prices": LogConfig.from_dict(COMPACTED)})
    log = mgr.get("prices", 0)
    after = records(log)
    # every live key's latest value is there, nothing is duplicated, offsets still increase
    assert latest_per_key(after) == latest_per_key(history)
    assert [o for o, _, _ in after] == sorted({o for o, _, _ in after})
    assert set(after) <= set(uncleaned)
    assert log.log_end_offset == 300
    names = os.listdir(tmp_path / "prices-0")
    assert not [n for n in names if n.endswith((".cleaned", ".swap"))]
    if step in ("swap", "deleted", "none"):  # past the commit point: the first group is cleaned
        assert len(after) < len(uncleaned)
    if step != "none":
        assert clean(mgr)  # and the next cleaning finishes the work
    assert records(log) == latest_per_key(history)
    mgr.close()


def test_io_max_bytes_per_second_throttles_the_cleaning(tmp_path):
    import time

    from kbroker.log.cleaner import CleanerConfig

    mgr, log = open_log(tmp_path, **{"segment.bytes": str(1 << 20)})
    fill(log, 3000, keys=10)  # ~210 KB, read once for the map and once to rewrite
    roll(log)
    size = log.size_in_bytes
    mgr.cleaner.configure(CleanerConfig(io_max_bytes_per_second=size))  # ~2 s of I/O at this rate
    started = time.monotonic()
    assert clean(mgr)
    assert time.monotonic() - started > 1.5
    mgr.close()
