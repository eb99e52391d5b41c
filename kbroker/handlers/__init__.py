"""Request handlers, one module per API family; each module lists its handlers in HANDLERS."""

from __future__ import annotations

from . import api_versions, fetch, metadata, offsets, produce, producer_ids
from . import cluster, configs, topics_admin
from . import groups, offsets_commit, transactions
from .registry import Handler, Registry

HANDLER_MODULES = (api_versions, metadata, produce, fetch, offsets, producer_ids,
                   topics_admin, configs, cluster, groups, offsets_commit, transactions)


def default_registry() -> Registry:
    return Registry(handler for module in HANDLER_MODULES for handler in module.HANDLERS)


__all__ = ["Handler", "Registry", "default_registry"]
