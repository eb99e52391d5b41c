"""DescribeTopicPartitions (key 75) v0: Java Admin's describeTopics (KIP-966). Topics sorted by name,
partitions from the cursor on, at most min(ResponsePartitionLimit, 2000) partitions per response;
NextCursor points at the first partition left out. An empty topic list means all topics (unknown ones
are then not reported); a cursor topic missing from an explicit list, or a negative cursor partition,
is INVALID_REQUEST for every topic, as Kafka answers it."""

from __future__ import annotations

from ..metadata import validate_topic_name
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse
from ..protocol.primitives import ZERO_UUID
from .metadata import TOPIC_AUTHORIZED_OPERATIONS
from .registry import Handler

MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000  # Kafka's max.request.partition.size.limit default

async def handle_describe_topic_partitions(ctx, request: DescribeTopicPartitionsRequest):
    Topic = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
    Partition = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition
    Cursor = DescribeTopicPartitionsResponse.Cursor
    cursor = request.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    all_topics = not request.topics
    if all_topics:
        names = {t.name for t in ctx.metadata.topics() if t.name >= cursor_topic}
    else:
        names = {t.name for t in request.topics if t.name >= cursor_topic}
        if cursor is not None and cursor.topic_name not in names:
            raise ApiError(ErrorCode.INVALID_REQUEST)
    if cursor is not None and cursor.partition_index < 0:
        raise ApiError(ErrorCode.INVALID_REQUEST)
    remaining = max(min(MAX_REQUEST_PARTITION_SIZE_LIMIT, request.response_partition_limit), 1)
    response = DescribeTopicPartitionsResponse(topics=[], next_cursor=None)
    for name in sorted(names):
        if remaining == 0:
            response.next_cursor = Cursor(topic_name=name, partition_index=0)
            break
        topic = ctx.metadata.get(name)
        if topic is None:
            if not all_topics:
                code = (ErrorCode.INVALID_TOPIC_EXCEPTION if validate_topic_name(name) is not None
                        else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                response.topics.append(Topic(error_code=code, name=name, topic_id=ZERO_UUID, is_internal=False,
                                             partitions=[], topic_authorized_operations=TOPIC_AUTHORIZED_OPERATIONS))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor_topic else 0
        upper = min(topic.partitions, start + remaining)
        partitions = [_partition(ctx, topic, i) for i in range(start, upper)]
        response.topics.append(Topic(error_code=ErrorCode.NONE, name=name, topic_id=topic.topic_id,
                                     is_internal=topic.is_internal, partitions=partitions,
                                     topic_authorized_operations=TOPIC_AUTHORIZED_OPERATIONS))
        if upper < topic.partitions:
            response.next_cursor = Cursor(topic_name=name, partition_index=upper)
            break
        remaining -= len(partitions)
    return response


def _partition(ctx, topic, index: int):
    Partition = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition
    info = ctx.cluster.partition(topic, index)
    if info is None:
        return Partition(error_code=ErrorCode.LEADER_NOT_AVAILABLE, partition_index=index, leader_id=-1,
                         leader_epoch=-1, replica_nodes=[], isr_nodes=[], eligible_leader_replicas=[],
                         last_known_elr=[], offline_replicas=[])
    return Partition(error_code=ErrorCode.NONE, partition_index=index, leader_id=info.leader,
                     leader_epoch=info.leader_epoch, replica_nodes=list(info.replicas), isr_nodes=list(info.isr),
                     eligible_leader_replicas=[], last_known_elr=[], offline_replicas=list(info.offline))


async def _describe_topic_partitions(ctx, request):
    try:
        return await handle_describe_topic_partitions(ctx, request)
    except ApiError:
        # Kafka answers an invalid cursor with the request's error response: every topic INVALID_REQUEST
        Topic = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
        return DescribeTopicPartitionsResponse(topics=[
            Topic(error_code=ErrorCode.INVALID_REQUEST, name=t.name, topic_id=ZERO_UUID, partitions=[])
            for t in request.topics])


HANDLERS = [
    Handler(DescribeTopicPartitionsRequest, 0, 0, _describe_topic_partitions),
]
