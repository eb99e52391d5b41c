"""One connection's session: who is on the other end and how they came in. Dispatch hands it to
every request's context; authentication (SASL) will record the principal here."""

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
