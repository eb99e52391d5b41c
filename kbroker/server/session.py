"""One connection's session: who is on the other end and how they came in — the client's address,
the listener and its security protocol, the authenticated principal (ANONYMOUS until SASL records
one here), and the client id its requests carry (dispatch records it). Every request's context holds
it, and the connection's log lines name the client by it."""

from __future__ import annotations

from dataclasses import dataclass

ANONYMOUS = "User:ANONYMOUS"


@dataclass(slots=True)
class Session:
    client_host: str
    client_port: int
    listener_name: str = "PLAINTEXT"
    security_protocol: str = "PLAINTEXT"
    principal: str = ANONYMOUS
    client_id: str | None = None

    def __str__(self) -> str:
        client = f" (client id {self.client_id!r})" if self.client_id is not None else ""
        return f"{self.client_host}:{self.client_port} on {self.listener_name}{client}"
