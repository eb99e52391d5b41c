"""Hostile bytes: whatever arrives, the decoder raises ProtocolError or returns a message — nothing else."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kbroker.protocol.codec import decode_request_body, decode_request_header, encode_request
from kbroker.protocol.errors import ProtocolError
from kbroker.protocol.framing import Framer, FrameTooLarge, TruncatedFrame
from kbroker.protocol.messages import REQUESTS
from tests.schema_strategies import all_versions, message_value

REQUEST_CASES = [(d, v) for d, v in all_versions() if d.kind == "request"]


def decode_or_protocol_error(frame: bytes) -> None:
    try:
        header, reader = decode_request_header(frame)
        decode_request_body(header, reader)
    except ProtocolError:
        pass


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_protocol_error(data):
    decode_or_protocol_error(data)


@settings(max_examples=2000, deadline=None)
@given(api_key=st.sampled_from(sorted(REQUESTS)), version=st.integers(-2, 20), body=st.binary(max_size=120))
def test_arbitrary_bodies_behind_a_plausible_header(api_key, version, body):
    decode_or_protocol_error(struct.pack(">hhih", api_key, version, 1, 3) + b"abc" + b"\x00" + body)


@pytest.mark.parametrize("definition,version", REQUEST_CASES[::3], ids=lambda x: getattr(x, "name", str(x)))
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_valid_requests(definition, version, data):
    frame = bytearray(encode_request(5, version, data.draw(message_value(definition, version)))[4:])
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
        position = data.draw(st.integers(0, max(len(frame) - 1, 0)))
        if action == "flip" and frame:
            frame[position] ^= data.draw(st.integers(1, 255))
        elif action == "truncate":
            del frame[position:]
        else:
            frame[position:position] = data.draw(st.binary(min_size=1, max_size=4))
    decode_or_protocol_error(bytes(frame))


def test_huge_lengths_do_not_allocate():
    # a Metadata v12 request claiming 2^31 topics, and a classic string claiming 32 KB in 3 bytes
    with pytest.raises(ProtocolError):
        decode_or_raise(struct.pack(">hhih", 3, 4, 1, -1) + b"\x7f\xff\xff\xff")
    with pytest.raises(ProtocolError):
        decode_or_raise(struct.pack(">hhih", 3, 1, 1, 0x7FFF) + b"abc")


def metadata_v4_naming(topics: int) -> bytes:
    return struct.pack(">hhih", 3, 4, 1, -1) + struct.pack(">i", topics) + b"\x00\x00" * topics + b"\x00"


def api_versions_v3_with_tagged_fields(count: int) -> bytes:
    fields = b"".join(bytes([0x80 | (tag & 0x7F), tag >> 7, 0]) for tag in range(count))  # tag, size 0
    varint_count = bytes([0x80 | (count & 0x7F), count >> 7])
    return struct.pack(">hhih", 18, 3, 1, -1) + b"\x00" + b"\x02a\x021" + varint_count + fields


def test_a_million_elements_is_the_most_an_array_may_claim():
    # Kafka 4.4's MessageUtil.MAX_ARRAY_LENGTH: a frame big enough for more is still refused
    with pytest.raises(ProtocolError, match="1000001 elements exceeds the maximum of 1000000"):
        decode_or_raise(metadata_v4_naming(1_000_001))


def test_ten_thousand_tagged_fields_is_the_most_a_struct_may_carry():
    header, reader = decode_request_header(api_versions_v3_with_tagged_fields(10_000))
    assert decode_request_body(header, reader).client_software_name == "a"
    with pytest.raises(ProtocolError, match="10001 tagged fields exceed the maximum of 10000"):
        decode_or_raise(api_versions_v3_with_tagged_fields(10_001))


def decode_or_raise(frame: bytes) -> None:
    header, reader = decode_request_header(frame)
    decode_request_body(header, reader)


FRAMES = [b"one", b"", b"three" * 20, b"4", b"x" * 40_000]  # the last is larger than the small buffer


@given(chunks=st.lists(st.integers(1, 50_000), min_size=1, max_size=40), buffer_bytes=st.sampled_from([8, 64, 16384]))
def test_frames_split_in_any_chunking(chunks, buffer_bytes):
    stream = b"".join(struct.pack(">i", len(p)) + p for p in FRAMES)
    framer, frames, pos = Framer(1 << 20, buffer_bytes), [], 0
    for size in chunks + [len(stream)]:
        frames += framer.feed(stream[pos:pos + size])
        pos += size
    assert [bytes(f) for f in frames] == FRAMES
    framer.end_of_stream()  # a clean end: between frames


@given(split=st.integers(1, 99))
def test_frames_received_in_place_as_a_transport_does(split):
    """The transport writes into the buffer the framer lends: a large frame's bytes go straight into
    the frame (recv_into), a small one is copied once out of the small buffer."""
    stream = struct.pack(">i", 5) + b"small" + struct.pack(">i", 90) + bytes(range(90))
    framer, frames, pos = Framer(1 << 20, buffer_bytes=16), [], 0
    while pos < len(stream):
        while (frame := framer.next_frame()) is not None:
            frames.append(bytes(frame))
        buffer = framer.receive_buffer()
        count = min(len(buffer), split, len(stream) - pos)
        buffer[:count] = stream[pos:pos + count]
        framer.received(count)
        pos += count
    while (frame := framer.next_frame()) is not None:
        frames.append(bytes(frame))
    assert frames == [b"small", bytes(range(90))]


@pytest.mark.parametrize("size", [-1, -(1 << 31), (1 << 20) + 1])
def test_negative_and_oversized_frames_are_protocol_errors(size):
    framer = Framer(1 << 20)
    with pytest.raises(FrameTooLarge) as raised:
        framer.feed(struct.pack(">i", size))
    assert isinstance(raised.value, ProtocolError)
    assert f"frame of {size} bytes" in str(raised.value)


@pytest.mark.parametrize("stream", [b"\x00\x00", struct.pack(">i", 10) + b"abc", struct.pack(">i", 40_000) + b"x"])
def test_a_stream_ending_inside_a_frame_is_truncated(stream):
    framer = Framer(1 << 20)
    assert framer.feed(stream) == []
    with pytest.raises(TruncatedFrame):
        framer.end_of_stream()


@pytest.mark.parametrize("size", [(1 << 20) + 1, 3 * (1 << 20) + 5, 9_000_001])
@pytest.mark.parametrize("chunk", [4096, 1 << 16, 1 << 22])
def test_frames_above_a_mebibyte_are_received_in_growing_chunks(size, chunk):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    stream = struct.pack(">i", size) + payload + struct.pack(">i", 3) + b"abc"
    framer, frames = Framer(16 << 20), []
    for start in range(0, len(stream), chunk):
        frames += framer.feed(stream[start:start + chunk])
    assert [bytes(f) for f in frames] == [payload, b"abc"]
    framer.end_of_stream()
    truncated = Framer(16 << 20)
    truncated.feed(stream[:size // 2])
    with pytest.raises(TruncatedFrame):
        truncated.end_of_stream()
