"""User stories for one partition log. The scenarios taking ``new_log`` run against both kinds of
log (on real files in a tmp dir, and in memory); the others are about the disk log's files."""

import os
import struct

import pytest

from kbroker.log import LogConfig, PartitionLog
from tests.log_kinds import kafka_names, new_log  # noqa: F401 (a fixture)
from kbroker.protocol import compression as C
from kbroker.protocol import records as R
from kbroker.protocol.errors import ErrorCode, ApiError

NOW = 1_700_000_000_000


def produce(n=3, *, ts=NOW, size=100, codec=C.NONE, **kw):
    """A batch as a producer sends it (base offset 0), in a writable buffer like the server's."""
    recs = [R.Record(b"key-%d" % i, bytes([65 + i % 26]) * size, (("h", b"v"),), ts + i) for i in range(n)]
    return bytearray(R.build_batch(recs, compression_type=codec, **kw))


def open_log(tmp_path, name="orders-0", **config):
    return PartitionLog.open(str(tmp_path / name), kafka_names(config))


def offsets_in(data):
    return [(h.base_offset, h.last_offset) for h in R.iter_batches(data)]


def all_batches(log, offset=0):
    """(first, last) offsets of every batch from ``offset`` to the end, read as a consumer reads."""
    found = []
    while offset < log.log_end_offset:
        found += offsets_in(log.read_bytes(offset, 1 << 20))
        offset = found[-1][1] + 1
    return found


def test_append_then_read_back_byte_exact(new_log):
    log = new_log()
    sent = []
    for i in range(5):
        b = produce(4)
        r = log.append(b, NOW)
        assert (r.base_offset, r.last_offset, r.log_append_time_ms, r.log_start_offset) == (4 * i, 4 * i + 3, -1, 0)
        sent.append(bytes(b))  # patched in place: now carries its offset and leader epoch
    assert log.log_end_offset == log.high_watermark == 20
    assert log.read_bytes(0, 1 << 20) == b"".join(sent)
    assert log.read_bytes(9, 1 << 20) == b"".join(sent[2:])
    (h,) = R.iter_batches(sent[3])
    assert (h.base_offset, h.partition_leader_epoch) == (12, 0)
    log.close()


def test_readonly_input_is_copied_not_patched(new_log):
    log = new_log()
    b = bytes(produce())
    log.append(b, NOW)
    log.append(b, NOW)
    assert offsets_in(log.read_bytes(0, 1 << 20)) == [(0, 2), (3, 5)]


def test_read_returns_file_slices_for_sendfile(tmp_path):
    log = open_log(tmp_path)
    for _ in range(3):
        log.append(produce(), NOW)
    res = log.read(3, 1 << 20)
    (s,) = res.slices
    out = tmp_path / "out"
    with open(out, "wb") as f:
        assert os.sendfile(f.fileno(), s.fd, s.position, s.length) == s.length
    assert offsets_in(out.read_bytes()) == [(3, 5), (6, 8)]
    assert (res.high_watermark, res.log_start_offset, res.log_end_offset) == (9, 0, 9)


def test_fetch_returns_whole_batches_and_at_least_one(new_log):
    log = new_log()
    sizes = [len(produce(10)) for _ in range(1)]
    for _ in range(4):
        log.append(produce(10), NOW)
    one = sizes[0]
    assert offsets_in(log.read_bytes(0, one * 2 + 10)) == [(0, 9), (10, 19)]
    assert offsets_in(log.read_bytes(0, 5)) == [(0, 9)]  # KIP-74: first batch even if larger
    assert log.read(0, 5, min_one_batch=False).slices == []
    assert offsets_in(log.read_bytes(15, one)) == [(10, 19)]  # starts at the batch holding the offset
    assert log.read(40, 100).slices == []  # at the log end: empty, not an error


def test_offsets_outside_the_log_are_out_of_range(new_log):
    log = new_log()
    log.append(produce(), NOW)
    for bad in (-1, 4, 100):
        with pytest.raises(ApiError) as e:
            log.read(bad, 100)
        assert e.value.error_code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_many_segments_roll_by_size_and_every_offset_is_readable(tmp_path):
    log = open_log(tmp_path, segment_bytes=4000, index_interval_bytes=500)
    for _ in range(60):
        log.append(produce(5), NOW)
    assert len(log.segments) >= 8
    names = sorted(os.listdir(log.directory))
    assert "00000000000000000000.log" in names and "00000000000000000000.index" in names
    assert all(s.size <= 4000 for s in log.segments)
    for offset in range(0, 300, 7):
        data = log.read_bytes(offset, 1)
        (h,) = R.iter_batches(data)
        assert h.base_offset <= offset <= h.last_offset
    # reading across the whole log, segment by segment
    offset, seen = 0, []
    while offset < log.log_end_offset:
        data = log.read_bytes(offset, 1 << 20)
        seen += [r.offset for h in R.iter_batches(data) for r in R.decode_batch_records(data[h.position:h.position + h.size])]
        offset = seen[-1] + 1
    assert seen == list(range(300))


def test_segment_rolls_by_segment_ms(tmp_path):
    log = open_log(tmp_path, segment_ms=1000)
    log.append(produce(ts=NOW), NOW)
    log.append(produce(ts=NOW + 500), NOW + 500)
    assert len(log.segments) == 1
    log.append(produce(ts=NOW + 1500), NOW + 1500)
    assert [s.base_offset for s in log.segments] == [0, 6]


def test_restart_keeps_everything(tmp_path):
    log = open_log(tmp_path, segment_bytes=3000)
    for _ in range(30):
        log.append(produce(3), NOW)
    before = log.read_bytes(0, 1 << 30)
    nsegs = len(log.segments)
    log.close()
    log = open_log(tmp_path, segment_bytes=3000)
    assert (log.log_start_offset, log.log_end_offset, len(log.segments)) == (0, 90, nsegs)
    got, offset = b"", 0
    while offset < 90:
        chunk = log.read_bytes(offset, 1 << 30)
        got += chunk
        offset = list(R.iter_batches(chunk))[-1].next_offset
    assert got == before or got.startswith(before)
    r = log.append(produce(3), NOW)
    assert r.base_offset == 90


def test_flipped_byte_is_rejected_and_the_log_is_unchanged(new_log):
    log = new_log()
    log.append(produce(), NOW)
    before = (log.size_in_bytes, log.read_bytes(0, 1 << 20))
    bad = produce()
    bad[80] ^= 0x01
    with pytest.raises(ApiError) as e:
        log.append(bad, NOW)
    assert e.value.error_code == ErrorCode.CORRUPT_MESSAGE
    assert log.log_end_offset == 3
    assert (log.size_in_bytes, log.read_bytes(0, 1 << 20)) == before


def test_a_rejected_batch_leaves_the_segment_file_unchanged(tmp_path):
    log = open_log(tmp_path)
    log.append(produce(), NOW)
    size = os.path.getsize(log.active_segment.log_path)
    bad = produce()
    bad[80] ^= 0x01
    with pytest.raises(ApiError):
        log.append(bad, NOW)
    assert os.path.getsize(log.active_segment.log_path) == size


def test_message_too_large(new_log):
    log = new_log(max_message_bytes=1000)
    with pytest.raises(ApiError) as e:
        log.append(produce(20), NOW)
    assert e.value.error_code == ErrorCode.MESSAGE_TOO_LARGE
    assert log.log_end_offset == 0


def test_create_time_outside_the_allowed_window_is_invalid_timestamp(new_log):
    log = new_log(message_timestamp_before_max_ms=60_000)
    for ts in (NOW + 3_600_001, NOW - 60_001):  # after.max.ms defaults to 1 h in Kafka 4
        with pytest.raises(ApiError) as e:
            log.append(produce(1, ts=ts), NOW)
        assert e.value.error_code == ErrorCode.INVALID_TIMESTAMP
    log.append(produce(1, ts=NOW + 3_600_000), NOW)
    assert log.log_end_offset == 1


def test_log_append_time_topic_stamps_batches(new_log):
    log = new_log(message_timestamp_type="LogAppendTime")
    r = log.append(produce(3, ts=5), NOW)
    assert r.log_append_time_ms == NOW
    data = log.read_bytes(0, 1 << 20)
    (h,) = R.iter_batches(data)  # CRC still valid
    assert h.timestamp_type == R.LOG_APPEND_TIME
    assert [x.timestamp for x in R.decode_batch_records(data)] == [NOW] * 3


@pytest.mark.parametrize("codec", [C.NONE, C.GZIP, C.SNAPPY, C.LZ4, C.ZSTD])
def test_all_five_codecs_are_stored_as_sent(new_log, codec):
    log = new_log()
    log.append(produce(5, codec=codec), NOW)
    log.append(produce(5, codec=codec), NOW)
    data = log.read_bytes(5, 1 << 20)
    (h,) = R.iter_batches(data)
    assert h.compression == codec
    assert [x.offset for x in R.decode_batch_records(data)] == [5, 6, 7, 8, 9]


def test_timestamp_lookup_finds_the_first_offset_at_or_after(new_log):
    log = new_log(segment_bytes=2000, index_interval_bytes=300)
    for i in range(40):
        log.append(produce(2, ts=NOW + 10 * i), NOW)  # offsets 2i, 2i+1 -> ts NOW+10i, NOW+10i+1
    assert log.list_offsets(NOW).offset == 0
    assert log.list_offsets(NOW + 1) == (NOW + 1, 1, 0)
    assert log.list_offsets(NOW + 2).offset == 2
    assert log.list_offsets(NOW + 205) == (NOW + 210, 42, 0)
    assert log.list_offsets(NOW + 391) == (NOW + 391, 79, 0)
    assert log.list_offsets(NOW + 392) == (-1, -1, -1)
    assert log.list_offsets(-1) == (-1, 80, 0)
    assert log.list_offsets(-2) == (-1, 0, 0)
    assert log.list_offsets(-3) == (NOW + 391, 79, 0)


def test_max_timestamp_offset_is_the_record_with_the_max(new_log):
    log = new_log()
    log.append(bytearray(R.build_batch([R.Record(b"a", b"1", (), NOW + 50), R.Record(b"b", b"2", (), NOW + 99),
                                        R.Record(b"c", b"3", (), NOW + 10)])), NOW)
    log.append(produce(2, ts=NOW), NOW)
    assert log.list_offsets(-3) == (NOW + 99, 1, 0)


def test_retention_by_time_deletes_the_oldest_data(new_log):
    log = new_log(segment_bytes=1500, retention_ms=60_000)
    for i in range(10):  # offsets 3i..3i+2 have timestamps from NOW + 10 s * i
        log.append(produce(3, ts=NOW + i * 10_000), NOW + i * 10_000)
    now = NOW + 100_001  # what is newest before NOW + 40_001 is past retention.ms
    assert log.enforce_retention(now) > 0
    assert 0 < log.log_start_offset <= 12  # whole segments (or batches) go, never newer data
    with pytest.raises(ApiError) as e:
        log.read(0, 100)
    assert e.value.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert offsets_in(log.read_bytes(log.log_start_offset, 100))[0][0] == log.log_start_offset
    assert log.list_offsets(-2).offset == log.log_start_offset
    assert log.list_offsets(NOW + 40_000).offset == 12


def test_retention_by_time_deletes_whole_old_segments(tmp_path):
    log = open_log(tmp_path, segment_bytes=1500, retention_ms=60_000)
    for i in range(10):
        log.append(produce(3, ts=NOW + i * 10_000), NOW + i * 10_000)
    first_names = sorted(os.listdir(log.directory))
    deleted = log.enforce_retention(NOW + 90_000 + 60_001 - 50_000)  # segments whose max ts < NOW+40_000
    assert deleted > 0
    assert log.log_start_offset == log.segments[0].base_offset > 0
    assert log.segments[0].max_timestamp >= NOW + 40_000 - 10_000
    assert len(os.listdir(log.directory)) < len(first_names)
    with pytest.raises(ApiError):
        log.read(0, 100)
    assert offsets_in(log.read_bytes(log.log_start_offset, 100))[0][0] == log.log_start_offset


def test_retention_by_bytes_keeps_the_newest(new_log):
    log = new_log(segment_bytes=1500, retention_bytes=3000)
    for i in range(20):
        log.append(produce(3), NOW)
    log.enforce_retention(NOW)
    assert 3000 - 1500 <= log.size_in_bytes <= 3000 + 1500
    assert log.log_end_offset == 60 and log.log_start_offset > 0
    kept = all_batches(log, log.log_start_offset)
    assert kept[0][0] == log.log_start_offset and kept[-1] == (57, 59)


def test_retention_by_bytes_deletes_whole_segments(tmp_path):
    log = open_log(tmp_path, segment_bytes=1500, retention_bytes=3000)
    for i in range(20):
        log.append(produce(3), NOW)
    log.enforce_retention(NOW)
    assert log.log_start_offset == log.segments[0].base_offset


def test_retention_can_empty_the_log_but_offsets_go_on(new_log):
    log = new_log(retention_ms=1000)
    log.append(produce(3, ts=NOW), NOW)
    log.enforce_retention(NOW + 5000)
    assert (log.log_start_offset, log.log_end_offset) == (3, 3)
    assert log.append(produce(1, ts=NOW + 5000), NOW + 5000).base_offset == 3


def test_delete_records_deletes_the_segments_below(tmp_path):
    log = open_log(tmp_path, segment_bytes=1500)
    for _ in range(10):
        log.append(produce(3), NOW)
    nsegs = len(log.segments)
    assert log.delete_records_before(13) == 13
    assert len(log.segments) < nsegs
    assert log.segments[0].base_offset <= 13 < log.segments[0].next_offset


def test_delete_records_moves_the_log_start_offset(new_log):
    log = new_log(segment_bytes=1500)
    for _ in range(10):
        log.append(produce(3), NOW)
    size = log.size_in_bytes
    assert log.delete_records_before(13) == 13
    assert log.log_start_offset == 13
    assert log.size_in_bytes < size
    with pytest.raises(ApiError) as e:
        log.read(12, 100)
    assert e.value.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert offsets_in(log.read_bytes(13, 1)) == [(12, 14)]  # the batch holding 13
    assert log.list_offsets(-2).offset == 13
    assert log.delete_records_before(5) == 13  # never moves back
    with pytest.raises(ApiError) as e:
        log.delete_records_before(31)
    assert e.value.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert log.delete_records_before(-1) == 30


def test_leader_epochs_and_offset_for_leader_epoch(new_log):
    log = new_log()
    log.append(produce(2), NOW, leader_epoch=0)
    log.append(produce(2), NOW, leader_epoch=3)
    log.append(produce(2), NOW, leader_epoch=3)
    log.append(produce(2), NOW, leader_epoch=5)
    assert log.epochs.entries == [(0, 0), (3, 2), (5, 6)]
    assert log.end_offset_for_epoch(5) == (5, 8)
    assert log.end_offset_for_epoch(3) == (3, 6)
    assert log.end_offset_for_epoch(4) == (3, 6)
    assert log.end_offset_for_epoch(0) == (0, 2)
    assert log.end_offset_for_epoch(9) == (-1, -1)
    assert log.end_offset_for_epoch(-1) == (-1, -1)
    assert log.list_offsets(-1) == (-1, 8, 5)


def test_leader_epochs_are_checkpointed_in_kafka_format(tmp_path):
    log = open_log(tmp_path)
    for epoch in (0, 3, 3, 5):
        log.append(produce(2), NOW, leader_epoch=epoch)
    with open(os.path.join(log.directory, "leader-epoch-checkpoint")) as f:
        assert f.read() == "0\n3\n0 0\n3 2\n5 6\n"


def test_flush_messages_fsyncs_and_moves_the_recovery_point(tmp_path):
    log = open_log(tmp_path, flush_messages=5)
    log.append(produce(3), NOW)
    assert log.recovery_point == 0 and log.unflushed_messages == 3
    log.append(produce(3), NOW)
    assert log.recovery_point == 6 and log.unflushed_messages == 0


def test_flush_ms_is_exposed_for_the_periodic_flusher(tmp_path):
    log = open_log(tmp_path, flush_ms=1000)
    assert not log.flush_due(NOW)
    log.last_flush_ms = NOW
    log.append(produce(3), NOW)
    assert not log.flush_due(NOW + 999)
    assert log.flush_due(NOW + 1000)
    assert log.flush(NOW + 1000) == 3
    assert not log.flush_due(NOW + 5000)


def test_default_flush_policy_never_fsyncs_but_data_is_in_the_file(tmp_path):
    log = open_log(tmp_path)
    assert log.config.flush_messages == log.config.flush_ms == 2**63 - 1
    log.append(produce(3), NOW)
    assert log.recovery_point == 0
    with open(log.active_segment.log_path, "rb") as f:
        assert offsets_in(f.read()) == [(0, 2)]


def test_config_from_kafka_names_with_string_values():
    c = LogConfig.from_dict({"segment.bytes": "1048576", "message.timestamp.type": "LogAppendTime",
                             "cleanup.policy": "compact", "unknown.key": "x"})
    assert (c.segment_bytes, c.log_append_time, c.compact, c.delete) == (1048576, True, True, False)
    assert LogConfig().max_message_bytes == 1048588 and LogConfig().message_timestamp_after_max_ms == 3600000


def test_delete_removes_the_directory(tmp_path):
    log = open_log(tmp_path)
    log.append(produce(), NOW)
    log.delete()
    assert not os.path.exists(tmp_path / "orders-0")


def test_index_files_are_kafka_format(tmp_path):
    log = open_log(tmp_path, index_interval_bytes=100)
    for _ in range(5):
        log.append(produce(2), NOW)
    log.roll(NOW)
    seg = log.segments[0]
    with open(seg.index.path, "rb") as f:
        entries = list(struct.iter_unpack(">ii", f.read()))
    positions = {h.position: h.last_offset for h in R.iter_batches(log.read_bytes(0, 1 << 20))}
    assert entries and all(positions[pos] == rel for rel, pos in entries)
    with open(seg.time_index.path, "rb") as f:
        tentries = list(struct.iter_unpack(">qi", f.read()))
    assert tentries[-1] == (NOW + 1, 1)  # the max timestamp, first reached at offset 1
