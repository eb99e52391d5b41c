"""Headers and bodies: from a frame to (header, message) and back. Sans-IO.

A Kafka frame is an int32 size followed by that many bytes: kbroker.protocol.framing cuts a stream
into frames, and this module puts the size prefix on what it encodes. A request frame holds a request
header (v1, or v2 for flexible request versions: client_id stays a classic int16 string, then tagged
fields) and the body; a response frame holds a response header (v0, or v1 for flexible versions — except
ApiVersions responses, which always use v0 so an old client can read the error) and the body.

Every decoding failure is raised as ProtocolError; nothing else escapes these entry points.
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import ErrorCode, ProtocolError
from .messages import REQUESTS, RESPONSES
from .messages.request_header import RequestHeader
from .primitives import Reader, Writer

API_VERSIONS_KEY = 18
_SIZE = struct.Struct(">i")
_DECODE_FAILURES = (struct.error, IndexError, ValueError, OverflowError, MemoryError, TypeError)


def _is_flexible(message_class: type, version: int) -> bool:
    flexible_from = message_class.FLEXIBLE_FROM
    return flexible_from is not None and version >= flexible_from


def request_header_version(api_key: int, api_version: int) -> int:
    request_class = REQUESTS.get(api_key)
    if request_class is None:
        return 1
    if api_key == 7 and api_version == 0:  # ControlledShutdown v0 predates client ids
        return 0
    return 2 if _is_flexible(request_class, api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    if api_key == API_VERSIONS_KEY:
        return 0
    return 1 if _is_flexible(RESPONSES[api_key], api_version) else 0


def _decode(message_class: type, reader: Reader, version: int) -> Any:
    try:
        return message_class.decode(reader, version)
    except ProtocolError:
        raise
    except _DECODE_FAILURES as exc:
        raise ProtocolError(f"malformed {message_class.__name__} v{version}: {exc}") from None


def decode_request_header(frame: bytes | memoryview) -> tuple[RequestHeader, Reader]:
    """Parse the header; the returned reader is positioned at the body."""
    reader = Reader(frame)
    try:
        api_key = reader.int16()
        api_version = reader.int16()
    except struct.error:
        raise ProtocolError("request frame shorter than its header") from None
    reader.pos = 0
    header = _decode(RequestHeader, reader, request_header_version(api_key, api_version))
    return header, reader


def decode_request_body(header: RequestHeader, reader: Reader) -> Any:
    request_class = REQUESTS.get(header.request_api_key)
    if request_class is None:
        raise ProtocolError(f"unknown api key {header.request_api_key}", ErrorCode.INVALID_REQUEST)
    return _decode(request_class, reader, header.request_api_version)


def decode_response(frame: bytes | memoryview, api_key: int, api_version: int) -> tuple[int, Any]:
    """For clients (tests): (correlation id, decoded response body)."""
    reader = Reader(frame)
    try:
        correlation_id = reader.int32()
        if response_header_version(api_key, api_version) >= 1:
            for _tag, size in reader.tagged_fields():
                reader.skip(size)
    except _DECODE_FAILURES as exc:
        raise ProtocolError(f"malformed response header: {exc}") from None
    return correlation_id, _decode(RESPONSES[api_key], reader, api_version)


def _framed(writer: Writer) -> list[Any]:
    parts = writer.parts()
    return [_SIZE.pack(sum(len(p) for p in parts)), *parts]


def encode_response(correlation_id: int, api_key: int, api_version: int, body: Any) -> list[Any]:
    """The whole response frame as a list of buffers (record payloads are passed through uncopied)."""
    writer = Writer()
    writer.int32(correlation_id)
    if response_header_version(api_key, api_version) >= 1:
        writer.uvarint(0)
    body.encode(writer, api_version)
    return _framed(writer)


def encode_request(correlation_id: int, api_version: int, body: Any, client_id: str | None = "kbroker") -> bytes:
    """For clients (tests): a complete request frame."""
    api_key = body.API_KEY
    writer = Writer()
    header = RequestHeader(api_key, api_version, correlation_id, client_id)
    header.encode(writer, request_header_version(api_key, api_version))
    body.encode(writer, api_version)
    return b"".join(bytes(p) for p in _framed(writer))
