"""PeerRequests: requests this broker sends to the other brokers of its cluster on behalf of its
coordinators and handlers (a transaction's markers, the check of a transactional batch's partition
with its transaction coordinator) -- the inter-broker calls of Kafka's send threads.

A broker answers one request of a connection at a time, so requests to one peer in parallel (the
markers of several transactions) each take a connection: an idle one kept from an earlier request
at the address the cluster view gives now, or a new one. Each request is bounded by its timeout. A
failed request (refused, reset, timed out, undecodable) closes its connection and raises
``PeerUnavailable``; the next one connects again, at the address known then.
"""

from __future__ import annotations

from typing import Any

import trio

from ..metadata.cluster_info import ClusterInfo
from .client import BrokerChannel, ChannelClosed

IDLE_CHANNELS_PER_PEER = 4


class PeerUnavailable(Exception):
    pass


class PeerRequests:
    def __init__(self, local_id: int, cluster: ClusterInfo):
        self._local_id = local_id
        self._cluster = cluster
        self._idle: dict[tuple[str, int], list[BrokerChannel]] = {}

    def _address(self, node_id: int) -> tuple[str, int] | None:
        for broker in self._cluster.brokers():
            if broker.node_id == node_id:
                return broker.host, broker.port
        return None

    async def request(self, node_id: int, body: Any, version: int, timeout_s: float) -> Any:
        address = self._address(node_id)
        if address is None:
            raise PeerUnavailable(f"broker {node_id} is not registered")
        idle = self._idle.setdefault(address, [])
        channel = idle.pop() if idle else None
        with trio.move_on_after(timeout_s):
            try:
                if channel is None:
                    channel = await BrokerChannel.connect(*address, client_id=f"broker-{self._local_id}-coordinator")
                response = await channel.request(body, version)
            except ChannelClosed as exc:
                if channel is not None:
                    await channel.aclose()
                raise PeerUnavailable(f"broker {node_id}: {exc}") from exc
            if len(idle) < IDLE_CHANNELS_PER_PEER:
                idle.append(channel)
            else:
                await channel.aclose()
            return response
        if channel is not None:
            await channel.aclose()
        raise PeerUnavailable(f"broker {node_id} did not answer within {timeout_s} s")

    async def aclose(self) -> None:
        for channels in self._idle.values():
            for channel in channels:
                await channel.aclose()
        self._idle.clear()
