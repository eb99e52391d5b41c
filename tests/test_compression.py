import struct

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbroker.protocol import compression as C
from kbroker.protocol.errors import ErrorCode, InvalidRecordBatch

CODECS = [C.NONE, C.GZIP, C.SNAPPY, C.LZ4, C.ZSTD]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("data", [b"", b"x", b"hello world " * 1000, bytes(range(256)) * 700])
def test_round_trip(codec, data):
    assert C.decompress(codec, C.compress(codec, data)) == data


def test_snappy_we_write_xerial_framing_like_the_java_client():
    out = C.compress(C.SNAPPY, b"a" * 100_000)
    magic, version, compat = struct.unpack_from(">8sii", out)
    assert (magic, version, compat) == (b"\x82SNAPPY\x00", 1, 1)


def test_snappy_raw_block_as_librdkafka_may_send_it_is_accepted():
    raw = bytes(cramjam.snappy.compress_raw(b"librdkafka" * 50))
    assert C.decompress(C.SNAPPY, raw) == b"librdkafka" * 50


@pytest.mark.parametrize("codec", [C.GZIP, C.SNAPPY, C.LZ4, C.ZSTD])
def test_corrupt_data_is_corrupt_message(codec):
    good = C.compress(codec, b"some payload " * 100)
    for bad in (b"garbage!" * 4, good[: len(good) // 2], good[:5] + bytes(20) + good[25:]):
        try:
            out = C.decompress(codec, bad)
        except InvalidRecordBatch as e:
            assert e.error_code == ErrorCode.CORRUPT_MESSAGE
        else:  # a mutation that still decodes must at least not be the original
            assert out != b"some payload " * 100 or bad == good


@pytest.mark.parametrize("codec", [C.GZIP, C.SNAPPY, C.LZ4, C.ZSTD])
def test_decompression_bomb_is_capped(codec):
    bomb = C.compress(codec, bytes(4 * 1024 * 1024))
    assert len(bomb) < 1024 * 1024
    with pytest.raises(InvalidRecordBatch) as e:
        C.decompress(codec, bomb, max_output=1024 * 1024)
    assert e.value.error_code == ErrorCode.CORRUPT_MESSAGE
    assert len(C.decompress(codec, bomb, max_output=4 * 1024 * 1024)) == 4 * 1024 * 1024


def _zstd_stream(data: bytes) -> bytes:
    """A zstd frame without a declared content size, as streaming compressors (the Java client) write."""
    compressor = cramjam.zstd.Compressor()
    compressor.compress(data)
    return bytes(compressor.finish())


@pytest.mark.parametrize("size", [0, 100, 70_000, 3_000_000])
def test_zstd_frames_with_and_without_a_declared_size_and_several_frames(size):
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    declared, streamed = bytes(cramjam.zstd.compress(data)), _zstd_stream(data)
    assert C._zstd_content_size(declared) == size
    if size:  # an empty stream declares its size 0
        assert C._zstd_content_size(streamed) is None
    assert C.decompress(C.ZSTD, declared) == data
    assert C.decompress(C.ZSTD, streamed) == data
    assert C.decompress(C.ZSTD, declared + streamed) == data + data  # the first frame's size is not the whole
    assert C.decompress(C.ZSTD, streamed + declared) == data + data


def test_zstd_frame_declaring_more_than_the_cap_is_refused_before_decompressing():
    declared = bytes(cramjam.zstd.compress(bytes(2 * 1024 * 1024)))
    with pytest.raises(InvalidRecordBatch) as e:
        C.decompress(C.ZSTD, declared, max_output=1024 * 1024)
    assert e.value.error_code == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("size", [0, 1000, 200_000, 5_000_000])
def test_lz4_output_taken_in_steps_is_whole_and_capped(size):
    data = (b"kafka " * (size // 6 + 1))[:size]
    frame = C.compress(C.LZ4, data)
    assert C.decompress(C.LZ4, frame) == data
    if size:
        with pytest.raises(InvalidRecordBatch):
            C.decompress(C.LZ4, frame, max_output=size - 1)


@settings(max_examples=300, deadline=None)
@given(codec=st.sampled_from(CODECS[1:]), data=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_protocol_error(codec, data):
    try:
        C.decompress(codec, data, max_output=1 << 20)
    except InvalidRecordBatch:
        pass


@settings(max_examples=200, deadline=None)
@given(codec=st.sampled_from(CODECS[1:]), data=st.binary(max_size=2000), flip=st.integers(0, 10_000))
def test_mutated_streams_raise_only_protocol_error(codec, data, flip):
    buf = bytearray(C.compress(codec, data))
    buf[flip % len(buf)] ^= 0x5A
    try:
        C.decompress(codec, bytes(buf), max_output=1 << 20)
    except InvalidRecordBatch:
        pass
