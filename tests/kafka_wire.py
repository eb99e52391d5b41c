"""A tiny blocking Kafka wire client built on kbroker's own codec, for tests that need to send exact
requests (or exact garbage) and see exact responses. Real client libraries are used everywhere else."""

from __future__ import annotations

import socket
import struct
from typing import Any

from kbroker.protocol.codec import decode_response, encode_request


class WireClient:
    def __init__(self, bootstrap: str, timeout: float = 10):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "WireClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> bytes:
        size = struct.unpack(">i", self._read_exactly(4))[0]
        return self._read_exactly(size)

    def _read_exactly(self, n: int) -> bytes:
        chunks, remaining = [], n
        while remaining:
            chunk = self.sock.recv(remaining)
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def request(self, body: Any, version: int, client_id: str | None = "wire-test") -> Any:
        self.correlation_id += 1
        self.send_raw(encode_request(self.correlation_id, version, body, client_id))
        correlation_id, response = decode_response(self.read_frame(), body.API_KEY, version)
        assert correlation_id == self.correlation_id
        return response

    def is_closed_by_peer(self, timeout: float = 5) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
