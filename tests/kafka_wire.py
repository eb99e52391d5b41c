"""A tiny blocking Kafka wire client built on kbroker's own codec and framer, for tests that need to
send exact requests (or exact garbage) and see exact responses, in plain text or over TLS (pass an
ssl.SSLContext). Real client libraries are used everywhere else."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from kbroker.protocol.codec import decode_response, encode_request
from kbroker.protocol.framing import Framer

MAX_RESPONSE_BYTES = 1 << 30


class WireClient:
    def __init__(self, bootstrap: str, timeout: float = 10, ssl_context: ssl.SSLContext | None = None):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=host)
        self.framer = Framer(MAX_RESPONSE_BYTES)
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
        while (frame := self.framer.next_frame()) is None:
            received = self.sock.recv_into(self.framer.receive_buffer())
            if not received:
                raise ConnectionError("connection closed by the broker")
            self.framer.received(received)
        return bytes(frame)

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
