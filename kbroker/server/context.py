"""What a handler gets besides the request: the broker and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..protocol.messages.request_header import RequestHeader

if TYPE_CHECKING:
    from ..broker import Broker


@dataclass(slots=True)
class RequestContext:
    broker: Broker
    header: RequestHeader
    client_host: str
    client_port: int

    @property
    def api_version(self) -> int:
        return self.header.request_api_version

    @property
    def client_id(self) -> str | None:
        return self.header.client_id
