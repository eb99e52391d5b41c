"""The broker: configuration, identity, stores and handlers wired together, and its listeners served.

Broker.serve() binds every PLAINTEXT listener, reports the broker as started (with the real ports
when port 0 was asked for), and accepts connections until cancelled. A trio nursery owns every
connection task; cancelling serve() closes them all.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import trio

from .handlers import Registry, default_registry
from .metadata import FileMetadataStore, Topic
from .metadata.node_identity import load_or_format
from .server.connection import Connection

log = logging.getLogger("kbroker")


class Broker:
    def __init__(self, config, registry: Registry | None = None):
        self.config = config
        self.node_id: int = config.node_id
        self.rack: str | None = config.get("broker.rack")
        self.data_dir = Path(config.log_dirs[0])
        self.cluster_id = load_or_format(self.data_dir, self.node_id)
        self.metadata = FileMetadataStore(self.data_dir)
        self.registry = registry or default_registry()
        self.socket_request_max_bytes: int = config.socket_request_max_bytes
        self.connections_max_idle_ms: int = config.connections_max_idle_ms
        self.advertised_endpoints: list[tuple[str, int]] = []
        self.bound_endpoints: list[tuple[str, int]] = []

    # -- topics ------------------------------------------------------------------------------
    @property
    def auto_create_topics(self) -> bool:
        return self.config.auto_create_topics_enable

    def create_topic_with_defaults(self, name: str) -> Topic:
        topic = self.metadata.create_topic(name, self.config.num_partitions, 1)
        log.info("auto-created topic %s with %d partitions", name, topic.partitions)
        return topic

    # -- serving -----------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        host, port = self.advertised_endpoints[0]
        return f"{host}:{port}"

    async def _open_listeners(self) -> list[trio.SocketListener]:
        listeners: list[trio.SocketListener] = []
        for listener in self.config.listeners:
            host = listener.host  # None: every interface
            opened = await trio.open_tcp_listeners(listener.port, host=host)
            if listener.port == 0:
                opened = opened[:1]  # each address family would get its own random port
            listeners.extend(opened)
            port = opened[0].socket.getsockname()[1]
            self.bound_endpoints.append((listener.host, port))
        self.advertised_endpoints = self._advertised()
        return listeners

    def _advertised(self) -> list[tuple[str, int]]:
        advertised = self.config.advertised_listeners or self.config.listeners
        endpoints = []
        for i, listener in enumerate(advertised):
            port = listener.port or self.bound_endpoints[min(i, len(self.bound_endpoints) - 1)][1]
            endpoints.append((listener.host or socket.getfqdn(), port))
        return endpoints

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await self._open_listeners()
        log.info("kbroker node %d of cluster %s serving on %s (data in %s)", self.node_id, self.cluster_id,
                 ", ".join(f"{h}:{p}" for h, p in self.advertised_endpoints), self.data_dir)
        async with trio.open_nursery() as nursery:
            task_status.started(self)
            await trio.serve_listeners(self._serve_connection, listeners, handler_nursery=nursery)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        await Connection(self, stream).serve()
