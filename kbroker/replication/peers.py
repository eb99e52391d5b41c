"""PeerRequests: requests this broker sends to the other brokers of its cluster on behalf of its
coordinators and handlers (a transaction's markers, the check of a transactional batch's partition
with its transaction coordinator) -- the inter-broker calls of Kafka's send threads.

One BrokerChannel per peer, opened on first use at the address the cluster view gives for it and
kept; requests to one peer take turns (a channel carries one request at a time) and each is bounded
by its timeout. A failed request (refused, reset, timed out, undecodable) closes the channel and
raises ``PeerUnavailable``; the next request opens a new one, at the address known then.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ..metadata.cluster_info import ClusterInfo
from .client import BrokerChannel, ChannelClosed

log = logging.getLogger("kbroker.replication")


class PeerUnavailable(Exception):
    pass


class _Peer:
    __slots__ = ("lock", "channel", "address")

    def __init__(self) -> None:
        self.lock = trio.Lock()
        self.channel: BrokerChannel | None = None
        self.address: tuple[str, int] | None = None


class PeerRequests:
    def __init__(self, local_id: int, cluster: ClusterInfo):
        self._local_id = local_id
        self._cluster = cluster
        self._peers: dict[int, _Peer] = {}

    def _address(self, node_id: int) -> tuple[str, int] | None:
        for broker in self._cluster.brokers():
            if broker.node_id == node_id:
                return broker.host, broker.port
        return None

    async def request(self, node_id: int, body: Any, version: int, timeout_s: float) -> Any:
        peer = self._peers.setdefault(node_id, _Peer())
        async with peer.lock:
            address = self._address(node_id)
            if address is None:
                raise PeerUnavailable(f"broker {node_id} is not registered")
            if peer.channel is not None and peer.address != address:
                await self._close(peer)
            with trio.move_on_after(timeout_s) as scope:
                try:
                    if peer.channel is None:
                        peer.channel = await BrokerChannel.connect(
                            *address, client_id=f"broker-{self._local_id}-coordinator")
                        peer.address = address
                    return await peer.channel.request(body, version)
                except ChannelClosed as exc:
                    await self._close(peer)
                    raise PeerUnavailable(f"broker {node_id}: {exc}") from exc
            if scope.cancelled_caught:
                await self._close(peer)
                raise PeerUnavailable(f"broker {node_id} did not answer within {timeout_s} s")
        raise AssertionError("unreachable")

    @staticmethod
    async def _close(peer: _Peer) -> None:
        channel, peer.channel = peer.channel, None
        if channel is not None:
            await channel.aclose()

    async def aclose(self) -> None:
        for peer in self._peers.values():
            await self._close(peer)
