"""Finding the partition a request names, with the errors Kafka gives on the way.

Shared by the data-path handlers (Produce, Fetch, ListOffsets, OffsetForLeaderEpoch): an unknown
topic or partition index is UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when named by id), and a
client's current leader epoch newer than ours is UNKNOWN_LEADER_EPOCH, older is FENCED_LEADER_EPOCH.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ..log import PartitionLog
from ..metadata import Topic
from ..protocol.errors import ApiError, ErrorCode

if TYPE_CHECKING:
    from .context import RequestContext

NO_EPOCH = -1


def find_topic(ctx: RequestContext, name: str | None, topic_id: uuid.UUID | None = None) -> Topic:
    if name is None or name == "":
        topic = ctx.metadata.get_by_id(topic_id) if topic_id is not None else None
        if topic is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_ID)
        return topic
    topic = ctx.metadata.get(name)
    if topic is None:
        raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return topic


def find_partition_log(ctx: RequestContext, topic: Topic, partition: int, current_leader_epoch: int = NO_EPOCH) -> PartitionLog:
    if not 0 <= partition < topic.partitions:
        raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    if current_leader_epoch != NO_EPOCH:
        if current_leader_epoch > topic.leader_epoch:
            raise ApiError(ErrorCode.UNKNOWN_LEADER_EPOCH)
        if current_leader_epoch < topic.leader_epoch:
            raise ApiError(ErrorCode.FENCED_LEADER_EPOCH)
    return ctx.partitions.partition_log(topic, partition)
