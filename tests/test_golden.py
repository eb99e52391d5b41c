"""Golden frames captured from real clients talking to Apache Kafka (see tests/golden/capture.py).

Every stored request and response frame must decode with our codec, consume every byte, and
re-encode (header + body) to the identical bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kbroker.protocol.codec import (
    decode_request_body, decode_request_header, decode_response, encode_request, encode_response,
    request_header_version, response_header_version)
from kbroker.protocol.messages import RESPONSES
from kbroker.protocol.primitives import Reader, Writer

GOLDEN = Path(__file__).resolve().parent / "golden"


def _cases() -> list:
    cases = []
    for index_path in sorted(GOLDEN.glob("*/index.json")):
        index = json.loads(index_path.read_text())
        for entry in index["frames"]:
            path = index_path.parent / entry["file"]
            cases.append(pytest.param(path, entry, id=f"{index_path.parent.name}/{entry['file'][:-4]}"))
    return cases


CASES = _cases()


def test_golden_frames_present():
    clients = {p.parent.name for p in GOLDEN.glob("*/index.json")}
    assert {"kafka-python", "confluent-kafka", "kcat"} <= clients
    assert len(CASES) > 100


def test_golden_frames_cover_the_versions_kafka_4_4_clients_negotiate():
    captured = {(e["api"], e["version"]) for index in GOLDEN.glob("*/index.json")
                for e in json.loads(index.read_text())["frames"]}
    newest = {("Produce", 13), ("Fetch", 18), ("Metadata", 13), ("ListOffsets", 11), ("ApiVersions", 5),
              ("OffsetCommit", 10), ("OffsetFetch", 10), ("TxnOffsetCommit", 6), ("EndTxn", 5),
              ("DescribeCluster", 2), ("DescribeGroups", 6), ("DeleteGroups", 3), ("UpdateFeatures", 2),
              # transactions v1 from the same client once transaction.version is downgraded (java-tv1)
              ("Produce", 11), ("AddPartitionsToTxn", 3), ("AddOffsetsToTxn", 4), ("EndTxn", 4),
              ("TxnOffsetCommit", 4)}
    assert newest <= captured, sorted(newest - captured)


def _librdkafka_5049(frame: bytes, header, body, reader: Reader) -> bytes:
    """librdkafka (confluentinc/librdkafka#5049, unfixed in 2.16) sends an all-topics Metadata v9+
    request with the null Topics array written as a 4-byte int32 placeholder 00 00 00 00 instead of the
    single varint 00. Kafka (and we) read: Topics=null, AllowAutoTopicCreation=false,
    IncludeTopicAuthorizedOperations=false, no tags, and 3 trailing bytes (the intended
    AllowAutoTopicCreation, IncludeTopicAuthorizedOperations and tags) that Kafka ignores. Check exactly
    that shape, consume the trailing bytes, and return the frame our codec must reproduce."""
    assert header.request_api_key == 3 and header.request_api_version >= 9
    assert body.topics is None and not body.allow_auto_topic_creation and not body.include_topic_authorized_operations
    trailing = frame[len(frame) - reader.remaining():]
    assert len(trailing) == 3 and trailing[0] in (0, 1) and trailing[1] in (0, 1) and trailing[2] == 0
    assert frame[-7:-3] == bytes(4)  # the placeholder, read as null Topics + two false bools + no tags
    reader.skip(3)
    return frame[:-3]


@pytest.mark.parametrize("path,entry", CASES)
def test_golden_frame_round_trips(path: Path, entry: dict):
    frame = path.read_bytes()
    api_key, version = entry["api_key"], entry["version"]

    if entry["kind"] == "request":
        header, reader = decode_request_header(frame)
        assert (header.request_api_key, header.request_api_version) == (api_key, version)
        assert header.correlation_id == entry["correlation_id"]
        body = decode_request_body(header, reader)
        if entry.get("quirk", "").startswith("librdkafka#5049"):
            frame = _librdkafka_5049(frame, header, body, reader)
        assert reader.remaining() == 0, f"{reader.remaining()} bytes left after the body"
        # header + body, field by field
        writer = Writer()
        header.encode(writer, request_header_version(api_key, version))
        body.encode(writer, version)
        assert writer.getvalue() == frame
        # and through the public framing entry point
        assert encode_request(header.correlation_id, version, body, header.client_id)[4:] == frame
    else:
        reader = Reader(frame)
        correlation_id = reader.int32()
        if response_header_version(api_key, version) >= 1:
            assert list(reader.tagged_fields()) == [], "response header carries tagged fields"
        body = RESPONSES[api_key].decode(reader, version)
        assert reader.remaining() == 0, f"{reader.remaining()} bytes left after the body"
        assert correlation_id == entry["correlation_id"]
        assert decode_response(frame, api_key, version) == (correlation_id, body)
        encoded = b"".join(bytes(p) for p in encode_response(correlation_id, api_key, version, body))
        assert encoded[4:] == frame
