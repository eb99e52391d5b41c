import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbroker.protocol import compression as C
from kbroker.protocol import records as R
from kbroker.protocol.errors import ErrorCode, InvalidRecordBatch

CODECS = [C.NONE, C.GZIP, C.SNAPPY, C.LZ4, C.ZSTD]


def batch(n=3, codec=C.NONE, **kw):
    return R.build_batch([R.Record(b"k%d" % i, b"value-%d" % i, (), 1_000 + i) for i in range(n)],
                         compression_type=codec, **kw)


def code_of(buf, **kw):
    with pytest.raises(InvalidRecordBatch) as e:
        R.validate_produce_records(memoryview(bytearray(buf)), **kw)
    return e.value.error_code


# ------------------------------------------------------------ header and round trips


def test_header_layout_is_61_bytes_and_fields_are_where_kafka_puts_them():
    b = batch(3, producer_id=7, producer_epoch=2, base_sequence=40, now_ms=5)
    h = R.parse_header(b)
    assert R.HEADER_SIZE == 61
    assert (h.base_offset, h.size, h.magic, h.record_count, h.last_offset_delta) == (0, len(b), 2, 3, 2)
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence) == (7, 2, 40, 42)
    assert (h.base_timestamp, h.max_timestamp) == (1000, 1002)
    assert struct.unpack_from(">I", b, 17)[0] == R.compute_crc(b, 0, len(b))
    assert h.compression == C.NONE and h.timestamp_type == R.CREATE_TIME
    assert not h.is_transactional and not h.is_control


def test_attribute_bits():
    h = R.parse_header(batch(1, C.ZSTD, transactional=True, timestamp_type=R.LOG_APPEND_TIME, producer_id=1,
                             producer_epoch=0, base_sequence=0))
    assert h.compression == C.ZSTD and h.is_transactional and h.timestamp_type == R.LOG_APPEND_TIME
    assert h.attributes == 4 | 8 | 16
    assert R.parse_header(batch(1, control=True)).is_control


@pytest.mark.parametrize("codec", CODECS)
def test_null_key_null_value_and_headers_round_trip(codec):
    recs = [R.Record(None, None, (), 10), R.Record(b"", b"", (("a", b"1"), ("b", None), ("", b"")), 11)]
    out = R.decode_batch_records(R.build_batch(recs, compression_type=codec, base_offset=100))
    assert [(r.key, r.value, tuple(r.headers), r.timestamp, r.offset) for r in out] == [
        (None, None, (), 10, 100), (b"", b"", (("a", b"1"), ("b", None), ("", b"")), 11, 101)]


def test_sequence_wraps_at_int32_max():
    h = R.parse_header(batch(3, producer_id=1, producer_epoch=0, base_sequence=R.INT32_MAX - 1))
    assert h.last_sequence == 0  # MAX-1, MAX, 0


records_st = st.lists(
    st.builds(
        R.Record,
        key=st.none() | st.binary(max_size=40),
        value=st.none() | st.binary(max_size=200),
        headers=st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=20)), max_size=3).map(tuple),
        timestamp=st.integers(0, 2**41),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recs=records_st, codec=st.sampled_from(CODECS), base=st.integers(0, 2**40),
       pid=st.integers(-1, 2**40), seq=st.integers(0, 2**31 - 1))
def test_build_parse_round_trip(recs, codec, base, pid, seq):
    b = R.build_batch(recs, compression_type=codec, base_offset=base, producer_id=pid, producer_epoch=0,
                      base_sequence=seq if pid >= 0 else -1)
    (h,) = list(R.iter_batches(b))
    assert (h.base_offset, h.record_count, h.last_offset, h.compression) == (base, len(recs), base + len(recs) - 1, codec)
    assert h.max_timestamp == max(r.timestamp for r in recs)
    out = R.decode_batch_records(b)
    assert [(r.key, r.value, tuple(r.headers), r.timestamp) for r in out] == [
        (r.key, r.value, tuple(r.headers), r.timestamp) for r in recs]
    assert [r.offset for r in out] == list(range(base, base + len(recs)))
    # what a producer would send validates (at base offset 0)
    if base == 0:
        assert R.validate_produce_records(b)[0].crc == h.crc


# ------------------------------------------------------------ interop with another implementation


@pytest.mark.parametrize("codec", [C.NONE, C.GZIP, C.LZ4])
def test_kafka_python_reads_ours_and_we_read_theirs(codec):
    dr = pytest.importorskip("kafka.record.default_records")
    b = dr.DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False, producer_id=-1,
                                     producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    b.append(0, timestamp=1000, key=b"k", value=b"v" * 50, headers=[("h", b"x")])
    b.append(1, timestamp=999, key=None, value=b"w", headers=[])
    theirs = bytes(b.build())
    (h,) = R.validate_produce_records(theirs)
    assert h.compression == codec
    assert [(r.key, r.value, tuple(r.headers), r.timestamp) for r in R.decode_batch_records(theirs)] == [
        (b"k", b"v" * 50, (("h", b"x"),), 1000), (None, b"w", (), 999)]
    ours = R.build_batch([R.Record(b"k", b"v", (("h", b"x"),), 1000)], compression_type=codec, base_offset=5)
    rb = dr.DefaultRecordBatch(bytearray(ours))
    assert rb.validate_crc()
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in rb] == [(5, 1000, b"k", b"v", [("h", b"x")])]


# ------------------------------------------------------------ produce validation: Kafka 4's error codes


def test_valid_batch_returns_its_header():
    (h,) = R.validate_produce_records(batch())
    assert h.record_count == 3


def test_flipped_byte_is_corrupt_message():
    b = bytearray(batch())
    b[70] ^= 1
    assert code_of(b) == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("magic", [0, 1])
def test_old_message_formats_are_rejected_with_invalid_record(magic):
    b = bytearray(batch())
    b[16] = magic
    assert code_of(b) == ErrorCode.INVALID_RECORD


@pytest.mark.parametrize("magic", [3, 0xFF])
def test_unknown_magic_is_corrupt_message(magic):
    b = bytearray(batch())
    b[16] = magic
    assert code_of(b) == ErrorCode.CORRUPT_MESSAGE


def test_no_batch_at_all_is_invalid_record():
    assert code_of(b"") == ErrorCode.INVALID_RECORD
    assert code_of(batch()[:40]) == ErrorCode.INVALID_RECORD  # only a partial batch


def test_trailing_partial_batch_is_ignored_as_kafka_trims_it():
    b = batch()
    (h,) = R.validate_produce_records(b + b[:30])
    assert h.position + h.size == len(b)


def test_two_batches_in_one_produce_are_invalid_record():
    assert code_of(batch() + batch()) == ErrorCode.INVALID_RECORD
    assert len(R.validate_produce_records(batch() + batch(), single_batch=False)) == 2


def test_length_below_minimum_is_corrupt_message():
    b = bytearray(batch())
    struct.pack_into(">i", b, 8, 13)
    assert code_of(b) == ErrorCode.CORRUPT_MESSAGE


def test_batch_shorter_than_header_is_corrupt_message():
    b = bytearray(batch())
    struct.pack_into(">i", b, 8, 30)
    assert code_of(b[:42]) == ErrorCode.CORRUPT_MESSAGE


def test_nonzero_base_offset_is_invalid_record():
    assert code_of(batch(base_offset=5)) == ErrorCode.INVALID_RECORD


def test_too_large_is_message_too_large():
    b = batch()
    assert code_of(b, max_batch_bytes=len(b) - 1) == ErrorCode.MESSAGE_TOO_LARGE
    R.validate_produce_records(b, max_batch_bytes=len(b))


def _rewrite(b, fmt, pos, value):
    b = bytearray(b)
    struct.pack_into(fmt, b, pos, value)
    struct.pack_into(">I", b, 17, R.compute_crc(b, 0, len(b)))
    return b


def test_record_count_inconsistent_with_last_offset_delta_is_invalid_record():
    assert code_of(_rewrite(batch(3), ">i", 57, 2)) == ErrorCode.INVALID_RECORD
    assert code_of(_rewrite(batch(3), ">i", 23, 5)) == ErrorCode.INVALID_RECORD
    assert code_of(_rewrite(_rewrite(batch(3), ">i", 57, 0), ">i", 23, -1)) == ErrorCode.INVALID_RECORD


def test_control_batch_from_a_client_is_invalid_record():
    assert code_of(batch(control=True)) == ErrorCode.INVALID_RECORD


def test_producer_id_without_sequence_is_invalid_record():
    assert code_of(batch(producer_id=5, producer_epoch=0, base_sequence=-1)) == ErrorCode.INVALID_RECORD


# ------------------------------------------------------------ patching


def test_base_offset_and_leader_epoch_patch_keeps_crc_valid():
    b = bytearray(batch())
    R.set_base_offset(b, 0, 12345)
    R.set_partition_leader_epoch(b, 0, 7)
    (h,) = R.iter_batches(b)
    assert (h.base_offset, h.partition_leader_epoch) == (12345, 7)
    assert [r.offset for r in R.decode_batch_records(b)] == [12345, 12346, 12347]


@pytest.mark.parametrize("codec", CODECS)
def test_log_append_time_patch_recomputes_crc_and_sets_every_record_timestamp(codec):
    b = bytearray(batch(3, codec))
    (h,) = R.validate_produce_records(b)
    R.set_log_append_time(b, h, 99_999)
    (h2,) = R.iter_batches(b)  # CRC checked
    assert h2.timestamp_type == R.LOG_APPEND_TIME and h2.max_timestamp == 99_999
    assert [r.timestamp for r in R.decode_batch_records(b)] == [99_999] * 3


# ------------------------------------------------------------ the parser never raises anything else


def _all_parsers(buf):
    for fn in (lambda: R.validate_produce_records(buf), lambda: list(R.iter_batches(buf)),
               lambda: R.decode_batch_records(buf), lambda: R.validate_produce_records(buf, single_batch=False)):
        try:
            fn()
        except InvalidRecordBatch:
            pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_protocol_error(data):
    _all_parsers(data)
    _all_parsers(memoryview(data))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codec=st.sampled_from(CODECS), n=st.integers(1, 5),
       edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 10_000), fix_crc=st.booleans())
def test_mutated_batches_raise_only_protocol_error(codec, n, edits, cut, fix_crc):
    b = bytearray(batch(n, codec))
    for pos, val in edits:
        b[pos % len(b)] = val
    if fix_crc and len(b) >= 61:  # get past the CRC so the record decoder sees the damage
        struct.pack_into(">I", b, 17, R.compute_crc(b, 0, len(b)))
    _all_parsers(bytes(b))
    _all_parsers(bytes(b[: cut % (len(b) + 1)]))
