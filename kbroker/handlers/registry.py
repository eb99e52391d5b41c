"""The handler registry: which API keys and versions this broker serves, and who serves them.

The ApiVersions response is built from this registry, so what is advertised is exactly what is
implemented. A handler may advertise a lower minimum than it serves (Kafka does this for Produce so
that older librdkafka keeps compression enabled); requests below the served minimum get
UNSUPPORTED_VERSION like any other version the broker does not serve.

A registry can know an API before its handler module is imported: a `Served` entry says what the
module's `Handler` will say (key, versions), and the module is imported when a request for one of its
APIs first arrives. The broker's default registry works this way (see kbroker.handlers), so a broker
starts without importing the handlers, and the message classes, of APIs no client has used yet.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

# (context, request) -> response; the context is kbroker.handlers.context.RequestContext, which knows
# the registry (for ApiVersions), so the registry does not name it back
HandlerFunction = Callable[[Any, Any], Awaitable[Any]]


class CloseConnection(Exception):
    """Raised by the server or a handler when Kafka would answer a request by closing the connection."""


class StaleIndex(RuntimeError):
    """A handler module does not serve what the registry was told (kbroker/handlers/served.py)."""

    def __init__(self, message: str):
        super().__init__(f"{message}: run `python -m kbroker.api_table --write`")


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

    def served(self, module: str) -> Served:
        """This handler as an index entry, for a module's HANDLERS."""
        return Served(self.api_key, module, self.min_version, self.max_version, self.advertised_min_version)


@dataclass(frozen=True)
class Served:
    """An API as the registry knows it before its handler module (kbroker.handlers.<module>) is imported."""
    api_key: int
    module: str
    min_version: int
    max_version: int
    advertised_min_version: int | None = None


class Registry:
    def __init__(self, handlers: Iterable[Handler] = (), served: Iterable[Served] = ()):
        self._handlers: dict[int, Handler] = {}
        self._not_loaded: dict[int, Served] = {}
        for handler in handlers:
            self._add(handler)
        for entry in served:
            if entry.api_key in self._handlers or entry.api_key in self._not_loaded:
                raise ValueError(f"two handlers for api key {entry.api_key}")
            self._not_loaded[entry.api_key] = entry

    def _add(self, handler: Handler) -> None:
        low, high = handler.request_class.VERSIONS
        if not low <= handler.min_version <= handler.max_version <= high:
            raise ValueError(f"{handler.request_class.__name__}: versions {handler.min_version}-"
                             f"{handler.max_version} are outside the schema's {low}-{high}")
        if handler.api_key in self._handlers:
            raise ValueError(f"two handlers for api key {handler.api_key}")
        self._handlers[handler.api_key] = handler

    def _load(self, module_name: str) -> None:
        """Import a handler module and take its handlers, which must be what the entries said."""
        module = importlib.import_module(f"{__package__}.{module_name}")
        for handler in module.HANDLERS:
            expected = self._not_loaded.pop(handler.api_key, None)
            if expected != handler.served(module_name):
                raise StaleIndex(f"kbroker.handlers.{module_name} serves {handler.served(module_name)}, "
                                 f"but the index says {expected}")
            self._add(handler)
        for entry in self._not_loaded.values():
            if entry.module == module_name:
                raise StaleIndex(f"kbroker.handlers.{module_name} has no handler for {entry}")

    def get(self, api_key: int) -> Handler | None:
        handler = self._handlers.get(api_key)
        if handler is None and api_key in self._not_loaded:
            self._load(self._not_loaded[api_key].module)
            handler = self._handlers[api_key]
        return handler

    def advertised(self) -> list[tuple[int, int, int]]:
        """(api key, min version, max version) for every served API, by key."""
        entries = [*self._handlers.values(), *self._not_loaded.values()]
        return sorted((e.api_key, e.min_version if e.advertised_min_version is None else e.advertised_min_version,
                       e.max_version) for e in entries)

    def handlers(self) -> list[Handler]:
        """Every handler, by key (importing the modules not imported yet)."""
        for module_name in sorted({entry.module for entry in self._not_loaded.values()}):
            self._load(module_name)
        return [self._handlers[key] for key in sorted(self._handlers)]
