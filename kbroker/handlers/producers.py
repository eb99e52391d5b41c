"""DescribeProducers (key 61) v0: the active idempotent and transactional producers of each partition,
from the log's producer state (with an open transaction's start offset and the coordinator epoch of
the producer's last transaction marker)."""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import DescribeProducersRequest, DescribeProducersResponse
from .registry import Handler
from .topic_rules import UNKNOWN_TOPIC_MESSAGE


async def handle_describe_producers(ctx, request: DescribeProducersRequest) -> DescribeProducersResponse:
    TopicResponse = DescribeProducersResponse.TopicResponse
    PartitionResponse = DescribeProducersResponse.PartitionResponse
    ProducerState = DescribeProducersResponse.ProducerState
    topics = []
    for wanted in request.topics:
        topic = ctx.metadata.get(wanted.name)
        partitions = []
        for index in wanted.partition_indexes:
            if topic is None:
                partitions.append(PartitionResponse(partition_index=index,
                                                    error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                    error_message=UNKNOWN_TOPIC_MESSAGE, active_producers=[]))
                continue
            if not 0 <= index < topic.partitions:
                partitions.append(PartitionResponse(partition_index=index,
                                                    error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                    error_message=None, active_producers=[]))
                continue
            partition_log = ctx.partitions.partition_log(topic, index)
            producers = [
                ProducerState(producer_id=pid, producer_epoch=entry.epoch, last_sequence=entry.last_seq,
                              last_timestamp=entry.last_timestamp, coordinator_epoch=entry.coordinator_epoch,
                              current_txn_start_offset=entry.txn_first_offset)
                for pid, entry in sorted(partition_log.producer_state.producers.items())]
            partitions.append(PartitionResponse(partition_index=index, error_code=ErrorCode.NONE,
                                                error_message=None, active_producers=producers))
        topics.append(TopicResponse(name=wanted.name, partitions=partitions))
    return DescribeProducersResponse(topics=topics)


HANDLERS = [
    Handler(DescribeProducersRequest, 0, 0, handle_describe_producers),
]
