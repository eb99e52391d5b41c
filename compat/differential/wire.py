"""A blocking raw Kafka client on kbroker's own codec (kbroker.protocol), for the differential runner:
exact requests, exact responses, turned into plain data that can be normalised and compared."""
from __future__ import annotations

import dataclasses
import socket
import struct
import uuid
from typing import Any

from kbroker.protocol import records as rec
from kbroker.protocol.codec import decode_response, encode_request
from kbroker.protocol.message_base import Message


class Closed(Exception):
    """The broker closed the connection (or reset it) instead of answering."""


class Wire:
    def __init__(self, bootstrap: str, timeout: float = 15):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Wire":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, body: Any, version: int, client_id: str | None = "compat-differential") -> int:
        self.correlation_id += 1
        self.sock.sendall(encode_request(self.correlation_id, version, body, client_id))
        return self.correlation_id

    def receive(self, body_class: Any, version: int, correlation_id: int | None = None) -> Any:
        frame = self.read_frame()
        cid, response = decode_response(frame, body_class.API_KEY, version)
        want = self.correlation_id if correlation_id is None else correlation_id
        if cid != want:
            raise AssertionError(f"correlation id {cid}, expected {want}")
        return response

    def request(self, body: Any, version: int, **kw) -> Any:
        cid = self.send(body, version, **kw)
        return self.receive(body, version, cid)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> bytes:
        size = struct.unpack(">i", self._read_exactly(4))[0]
        return self._read_exactly(size)

    def _read_exactly(self, n: int) -> bytes:
        chunks, remaining = [], n
        while remaining:
            try:
                chunk = self.sock.recv(remaining)
            except ConnectionResetError:
                raise Closed("connection reset by the broker") from None
            if not chunk:
                raise Closed("connection closed by the broker")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def plain(obj: Any) -> Any:
    """Messages and dataclasses -> dicts, UUIDs -> str, bytes -> a short description; recursively."""
    if isinstance(obj, Message):
        return {name: plain(getattr(obj, name)) for name in obj.__slots__}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [plain(x) for x in obj]
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"bytes": len(obj)}
    return obj


def decode_records(buf) -> dict:
    """Fetched records -> batches with their header fields and decoded records; a trailing partial
    batch is reported by size (clients discard it)."""
    if buf is None:
        return {"records": None}
    mv = memoryview(bytes(buf))
    out, pos = [], 0
    partial = 0
    while pos < len(mv):
        if len(mv) - pos < rec.LOG_OVERHEAD:
            partial = len(mv) - pos
            break
        length = struct.unpack_from(">i", mv, pos + rec.LENGTH_OFFSET)[0]
        size = length + rec.LOG_OVERHEAD
        if len(mv) - pos < size:
            partial = len(mv) - pos
            break
        h = rec.parse_header(mv, pos)
        one = mv[pos:pos + size]
        batch = {
            "base_offset": h.base_offset, "last_offset_delta": h.last_offset_delta,
            "partition_leader_epoch": h.partition_leader_epoch, "magic": h.magic,
            "crc_ok": rec.compute_crc(one, 0, size) == h.crc,
            "compression": h.compression, "timestamp_type": h.timestamp_type,
            "transactional": h.is_transactional, "control": h.is_control,
            "base_timestamp": h.base_timestamp, "max_timestamp": h.max_timestamp,
            "producer_id": h.producer_id, "producer_epoch": h.producer_epoch,
            "base_sequence": h.base_sequence, "record_count": h.record_count, "size": size,
        }
        try:
            batch["records"] = [
                {"offset": h.base_offset + i if r.offset < 0 else r.offset, "timestamp": r.timestamp,
                 "key": _b(r.key), "value": _b(r.value), "headers": [[k, _b(v)] for k, v in r.headers]}
                for i, r in enumerate(rec.decode_batch_records(one))]
        except Exception as exc:  # noqa: BLE001 - a broken batch is an observation too
            batch["records"] = f"undecodable: {exc}"
        out.append(batch)
        pos += size
    return {"batches": out, "partial_tail_bytes": partial}


def _b(v):
    if v is None:
        return None
    v = bytes(v)
    if len(v) > 64:
        return {"len": len(v), "head": v[:16].decode("latin-1")}
    try:
        return v.decode()
    except UnicodeDecodeError:
        return v.hex()
