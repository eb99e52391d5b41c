"""From one request frame to its response frame: decode, find the handler, run it, encode.

Kafka's rules for requests the broker cannot serve:
- ApiVersions at a version the broker does not know: answer UNSUPPORTED_VERSION with a v0 body that
  lists what is supported (KIP-511), so the client retries with a version it finds there;
- any other unknown API key or unsupported version, or bytes that do not decode: close the connection.

A request whose handling appended to a coordinator's internal partition is answered only once
every in-sync replica has those records (kbroker.partitions.coordinator_writes); if that does not
happen in time the connection is closed instead, and the client retries.

Each request runs in a RequestContext holding its connection's Session (client address, listener,
security protocol, principal); dispatch records there the client id the request carries.
"""

from __future__ import annotations

from typing import Any

from ..handlers.api_versions import api_versions_response
from ..handlers.context import RequestContext, Services
from ..handlers.registry import CloseConnection
from ..protocol.codec import API_VERSIONS_KEY, decode_request_body, decode_request_header, encode_response
from ..partitions import coordinator_writes
from ..protocol.errors import ErrorCode
from .session import Session

COORDINATOR_WRITE_TIMEOUT_S = 5.0  # Kafka's offsets.commit.timeout.ms


async def dispatch(services: Services, session: Session, frame: memoryview | bytes) -> list[Any] | None:
    """The response frame's buffers, or None when the request gets no response (acks=0 produce)."""
    header, reader = decode_request_header(frame)
    api_key, version = header.request_api_key, header.request_api_version
    session.client_id = header.client_id
    registry = services.registry
    handler = registry.get(api_key)
    if handler is None or not handler.serves(version):
        if api_key == API_VERSIONS_KEY:
            body = api_versions_response(registry, ErrorCode.UNSUPPORTED_VERSION)
            return encode_response(header.correlation_id, API_VERSIONS_KEY, 0, body)
        what = "unknown api key" if handler is None else "unsupported version of api key"
        raise CloseConnection(f"{what} {api_key} (version {version}) from client {header.client_id!r}")
    request = decode_request_body(header, reader)
    writes = coordinator_writes.collecting()
    response = await handler.handle(RequestContext(services, header, session), request)
    if writes and not await coordinator_writes.replicated(writes, COORDINATOR_WRITE_TIMEOUT_S):
        # not on every in-sync replica: a success answer could be lost in a failover; the client retries
        raise CloseConnection(f"a coordinator write of api key {api_key} was not replicated in time")
    if response is None:
        return None
    return encode_response(header.correlation_id, api_key, version, response)
