"""Strings on the wire that are not UTF-8 are read as Kafka (Java's String(bytes, UTF_8)) reads them,
with U+FFFD for each bad sequence, never by closing the connection (issue 14, defect 6: found by
fuzzing; a client id in Latin-1 used to cost the client its connection). Checked against Apache
Kafka 4.4 by hand: the same two answers."""

from __future__ import annotations

import struct

from kbroker.protocol.codec import decode_response
from kbroker.protocol.messages import ApiVersionsResponse
from kbroker.protocol.primitives import Writer
from tests.kafka_wire import WireClient


def _frame(api_key: int, version: int, correlation_id: int, client_id: bytes, body: bytes = b"") -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(header) + len(body)) + header + body


def test_a_client_id_that_is_not_utf8_is_served(kbroker):
    with WireClient(kbroker.bootstrap) as client:
        client.send_raw(_frame(18, 1, 7, b"\xff\xfe-latin1-caf\xe9"))
        correlation_id, response = decode_response(client.read_frame(), 18, 1)
        assert (correlation_id, response.error_code) == (7, 0)
        assert isinstance(response, ApiVersionsResponse) and response.api_keys


def test_a_topic_name_that_is_not_utf8_is_an_invalid_topic(kbroker):
    body = Writer()
    body.int32(1)  # Metadata v1: one topic, its name "a\xffb"
    body.int16(3)
    body.buf += b"a\xffb"
    with WireClient(kbroker.bootstrap) as client:
        client.send_raw(_frame(3, 1, 8, b"wire-test", bytes(body.buf)))
        correlation_id, response = decode_response(client.read_frame(), 3, 1)
        assert correlation_id == 8
        assert [(t.name, t.error_code) for t in response.topics] == [("a\ufffdb", 17)]  # INVALID_TOPIC_EXCEPTION
        client.send_raw(_frame(18, 1, 9, b"wire-test"))  # and the connection goes on
        assert decode_response(client.read_frame(), 18, 1)[0] == 9
