"""KIP-951: a Produce or Fetch answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH tells the client
the partition's current leader and epoch (Produce v10+, Fetch v12+) and that leader's endpoint
(Produce v10+, Fetch v16+), so it can go there without a Metadata round trip first."""

from __future__ import annotations

from ..protocol.errors import ErrorCode

MOVED = {ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.FENCED_LEADER_EPOCH}


def current_leader(ctx, topic_name: str, index: int) -> tuple[int, int] | None:
    """(leader id, leader epoch) of the partition as the cluster has it, None when unknown."""
    topic = ctx.metadata.get(topic_name)
    info = ctx.cluster.partition(topic, index) if topic is not None else None
    if info is None or info.leader < 0:
        return None
    return info.leader, info.leader_epoch


def endpoints(ctx, node_ids: set[int]):
    """The brokers among ``node_ids``, for the NodeEndpoints of the answer."""
    return [b for b in ctx.cluster.brokers() if b.node_id in node_ids]
