"""What topic administration is checked against, shared by CreateTopics, CreatePartitions and
AlterPartitionReassignments: Kafka's controller's bound on one operation, names that collide, the
rules for a manual replica assignment, and Kafka's default messages for unknown topics."""

from __future__ import annotations

from ..protocol.errors import ApiError, ErrorCode

CLUSTER_METADATA_TOPIC = "__cluster_metadata"
# Kafka's controller writes at most this many records for one request (a topic, each of its partitions
# and configs are one record each); a larger request fails whole with POLICY_VIOLATION
MAX_RECORDS_PER_USER_OP = 10_000

# Kafka's default messages for errors answered without a specific one
UNKNOWN_TOPIC_MESSAGE = "This server does not host this topic-partition."
UNKNOWN_TOPIC_ID_MESSAGE = "This server does not host this topic ID."


def colliding_topic(ctx, name: str) -> str | None:
    """An existing topic that differs from `name` only by '.' versus '_' (Kafka forbids both)."""
    if "." not in name and "_" not in name:
        return None
    unified = name.replace(".", "_")
    for other in ctx.metadata.names():  # topics being created included
        if other != name and other.replace(".", "_") == unified:
            return other
    return None


def registered_brokers(ctx) -> set[int]:
    """The brokers a replica may be assigned to: the live ones (this one, alone)."""
    return {b.node_id for b in ctx.cluster.brokers()} or {ctx.node.node_id}


def check_manual_assignment(ctx, replicas: list[int], replication_factor: int | None) -> None:
    """Kafka's checks of one partition's manual replica list."""
    if not replicas:
        raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                       "The manual partition assignment includes an empty replica list.")
    previous = None
    for broker_id in sorted(replicas):
        if broker_id not in registered_brokers(ctx):
            raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                           f"The manual partition assignment includes broker {broker_id}, but no such "
                           "broker is registered.")
        if broker_id == previous:
            raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                           f"The manual partition assignment includes the broker {broker_id} more than once.")
        previous = broker_id
    if replication_factor is not None and len(replicas) != replication_factor:
        raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                       f"The manual partition assignment includes a partition with {len(replicas)} "
                       "replica(s), but this is not consistent with previous partitions, which have "
                       f"{replication_factor} replica(s).")
