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
from ..protocol.errors import ErrorCode

if TYPE_CHECKING:
    from ..broker import Broker

NO_EPOCH = -1


class PartitionError(Exception):
    def __init__(self, error_code: ErrorCode):
        super().__init__(error_code.name)
        self.error_code = error_code


def find_topic(broker: Broker, name: str | None, topic_id: uuid.UUID | None = None) -> Topic:
    if name is None or name == "":
        topic = broker.metadata.get_by_id(topic_id) if topic_id is not None else None
        if topic is None:
            raise PartitionError(ErrorCode.UNKNOWN_TOPIC_ID)
        return topic
    topic = broker.metadata.get(name)
    if topic is None:
        raise PartitionError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return topic


def find_partition_log(broker: Broker, topic: Topic, partition: int, current_leader_epoch: int = NO_EPOCH) -> PartitionLog:
    if not 0 <= partition < topic.partitions:
        raise PartitionError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    if current_leader_epoch != NO_EPOCH:
        if current_leader_epoch > topic.leader_epoch:
            raise PartitionError(ErrorCode.UNKNOWN_LEADER_EPOCH)
        if current_leader_epoch < topic.leader_epoch:
            raise PartitionError(ErrorCode.FENCED_LEADER_EPOCH)
    return broker.partition_log(topic, partition)
