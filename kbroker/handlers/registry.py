"""The handler registry: which API keys and versions this broker serves, and who serves them.

The ApiVersions response is built from this registry, so what is advertised is exactly what is
implemented. A handler may advertise a lower minimum than it serves (Kafka does this for Produce so
that older librdkafka keeps compression enabled); requests below the served minimum get
UNSUPPORTED_VERSION like any other version the broker does not serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

if TYPE_CHECKING:
    from ..server.context import RequestContext

HandlerFunction = Callable[["RequestContext", Any], Awaitable[Any]]


class CloseConnection(Exception):
    """Raised by the server or a handler when Kafka would answer a request by closing the connection."""


@dataclass(frozen=True)
class Handler:
    request_class: type
    min_version: int
    max_version: int
    handle: HandlerFunction
    advertised_min_version: int | None = None

    @property
    def api_key(self) -> int:
        return self.request_class.API_KEY

    def serves(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


class Registry:
    def __init__(self, handlers: Iterable[Handler]):
        self._handlers: dict[int, Handler] = {}
        for handler in handlers:
            low, high = handler.request_class.VERSIONS
            if not low <= handler.min_version <= handler.max_version <= high:
                raise ValueError(f"{handler.request_class.__name__}: versions {handler.min_version}-"
                                 f"{handler.max_version} are outside the schema's {low}-{high}")
            if handler.api_key in self._handlers:
                raise ValueError(f"two handlers for api key {handler.api_key}")
            self._handlers[handler.api_key] = handler

    def get(self, api_key: int) -> Handler | None:
        return self._handlers.get(api_key)

    def advertised(self) -> list[tuple[int, int, int]]:
        """(api key, min version, max version) for every served API, by key."""
        return [(key, h.min_version if h.advertised_min_version is None else h.advertised_min_version,
                 h.max_version) for key, h in sorted(self._handlers.items())]

    def handlers(self) -> list[Handler]:
        return [self._handlers[key] for key in sorted(self._handlers)]
