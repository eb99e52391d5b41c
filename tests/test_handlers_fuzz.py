"""Whatever well-formed request a client sends, at any served version and with any field values, the
broker answers it (or closes the connection, as Kafka does for requests it cannot serve) — a handler
never fails with an internal error, and the broker keeps serving."""

from __future__ import annotations

import logging
import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kbroker.handlers import default_registry
from kbroker.protocol.codec import decode_response, encode_request
from kbroker.protocol.messages import ApiVersionsRequest
from tests.kafka_wire import WireClient
from tests.schema_strategies import DEFINITIONS, message_value

SERVED = [(handler, version) for handler in default_registry().handlers()
          for version in range(handler.min_version, handler.max_version + 1)]
BY_NAME = {d.name: d for d in DEFINITIONS}


def bounded_waits(request):
    """Keep long polls and rebalance waits short so each example finishes quickly."""
    for name in ("max_wait_ms", "timeout_ms", "rebalance_timeout_ms"):
        if hasattr(request, name):
            setattr(request, name, min(abs(getattr(request, name)), 200))
    return request


@pytest.mark.parametrize("handler,version", SERVED, ids=[f"{h.request_class.__name__}-v{v}" for h, v in SERVED])
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_request_is_answered_without_internal_errors(kbroker, caplog, handler, version, data):
    request = bounded_waits(data.draw(message_value(BY_NAME[handler.request_class.__name__], version)))
    with caplog.at_level(logging.ERROR, logger="kbroker"):
        with WireClient(kbroker.bootstrap, timeout=3) as client:
            client.send_raw(encode_request(1, version, request))
            try:
                frame = client.read_frame()
            except (ConnectionError, socket.timeout):
                frame = None  # closed (Kafka's answer to some requests) or still waiting: both fine here
            if frame is not None:
                decode_response(frame, handler.api_key, version)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a handler failed internally"
    with WireClient(kbroker.bootstrap) as client:
        assert client.request(ApiVersionsRequest(), 3).error_code == 0
