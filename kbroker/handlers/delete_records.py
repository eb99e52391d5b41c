"""DeleteRecords (key 21) v0-2: move partitions' log start offsets, as Kafka's admin deleteRecords.

Per partition, through the partition layer (kbroker.partitions): the offset -1 means the high
watermark; beyond the high watermark is OFFSET_OUT_OF_RANGE; an unknown topic or partition is
UNKNOWN_TOPIC_OR_PARTITION; the answer is the new low watermark (log start offset). Whole segments
below it are deleted. A partition named twice counts once (the schema is a map in Kafka). Once any
partition moved, the log start offsets are checkpointed, so they survive a crash.
"""

from __future__ import annotations

from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import DeleteRecordsRequest, DeleteRecordsResponse
from .registry import Handler

TopicResult = DeleteRecordsResponse.DeleteRecordsTopicResult
PartitionResult = DeleteRecordsResponse.DeleteRecordsPartitionResult


def _delete_before(ctx, topic, wanted: DeleteRecordsRequest.DeleteRecordsPartition) -> PartitionResult:
    try:
        if topic is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        low_watermark = ctx.partitions.partition(topic, wanted.partition_index).delete_records_before(wanted.offset)
    except ApiError as exc:
        return PartitionResult(wanted.partition_index, -1, exc.error_code)
    return PartitionResult(wanted.partition_index, low_watermark, ErrorCode.NONE)


async def handle_delete_records(ctx, request: DeleteRecordsRequest) -> DeleteRecordsResponse:
    results = []
    for wanted in request.topics:
        topic = ctx.metadata.get(wanted.name)
        unique = {p.partition_index: p for p in wanted.partitions}.values()  # a map in Kafka's schema
        results.append(TopicResult(name=wanted.name, partitions=[_delete_before(ctx, topic, p) for p in unique]))
    if any(p.error_code == ErrorCode.NONE for t in results for p in t.partitions):
        ctx.partitions.write_checkpoints()  # the new log start offsets survive a crash
    return DeleteRecordsResponse(topics=results)


HANDLERS = [Handler(DeleteRecordsRequest, 0, 2, handle_delete_records)]
