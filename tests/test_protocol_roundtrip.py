"""Every message of every API, in every version the schemas define: encode then decode gives it back."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kbroker.protocol.codec import decode_request_body, decode_request_header, decode_response, encode_request, encode_response
from kbroker.protocol.primitives import Reader, Writer
from tests.schema_strategies import all_versions, message_class, message_value

CASES = all_versions()


def test_every_request_and_response_is_covered():
    kinds = {d.kind for d, _ in CASES}
    assert {"request", "response", "header", "data"} <= kinds
    assert len(CASES) > 600


@pytest.mark.parametrize("definition,version", CASES, ids=[f"{d.name}-v{v}" for d, v in CASES])
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_round_trip(definition, version, data):
    value = data.draw(message_value(definition, version))
    writer = Writer()
    value.encode(writer, version)
    encoded = writer.getvalue()
    reader = Reader(encoded)
    decoded = message_class(definition).decode(reader, version)
    assert reader.remaining() == 0
    assert decoded == value
    again = Writer()
    decoded.encode(again, version)
    assert again.getvalue() == encoded


@pytest.mark.parametrize("definition,version", [(d, v) for d, v in CASES if d.kind == "request"][::7])
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_request_frames_round_trip_with_headers(definition, version, data):
    value = data.draw(message_value(definition, version))
    frame = encode_request(42, version, value, client_id="rt")
    header, reader = decode_request_header(memoryview(frame)[4:])
    assert (header.request_api_key, header.request_api_version, header.correlation_id, header.client_id) == (
        definition.api_key, version, 42, "rt")
    assert decode_request_body(header, reader) == value


@pytest.mark.parametrize("definition,version", [(d, v) for d, v in CASES if d.kind == "response"][::7])
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_response_frames_round_trip_with_headers(definition, version, data):
    value = data.draw(message_value(definition, version))
    frame = b"".join(bytes(p) for p in encode_response(9, definition.api_key, version, value))
    correlation_id, decoded = decode_response(memoryview(frame)[4:], definition.api_key, version)
    assert correlation_id == 9 and decoded == value
