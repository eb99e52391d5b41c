import struct

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbroker.protocol import compression as C
from kbroker.protocol.errors import ErrorCode, ProtocolError

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
        except ProtocolError as e:
            assert e.error_code == ErrorCode.CORRUPT_MESSAGE
        else:  # a mutation that still decodes must at least not be the original
            assert out != b"some payload " * 100 or bad == good


@pytest.mark.parametrize("codec", [C.GZIP, C.SNAPPY, C.LZ4, C.ZSTD])
def test_decompression_bomb_is_capped(codec):
    bomb = C.compress(codec, bytes(4 * 1024 * 1024))
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ProtocolError) as e:
        C.decompress(codec, bomb, max_output=1024 * 1024)
    assert e.value.error_code == ErrorCode.CORRUPT_MESSAGE
    assert len(C.decompress(codec, bomb, max_output=4 * 1024 * 1024)) == 4 * 1024 * 1024


@settings(max_examples=300, deadline=None)
@given(codec=st.sampled_from(CODECS[1:]), data=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_protocol_error(codec, data):
    try:
        C.decompress(codec, data, max_output=1 << 20)
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(codec=st.sampled_from(CODECS[1:]), data=st.binary(max_size=2000), flip=st.integers(0, 10_000))
def test_mutated_streams_raise_only_protocol_error(codec, data, flip):
    buf = bytearray(C.compress(codec, data))
    buf[flip % len(buf)] ^= 0x5A
    try:
        C.decompress(codec, bytes(buf), max_output=1 << 20)
    except ProtocolError:
        pass
