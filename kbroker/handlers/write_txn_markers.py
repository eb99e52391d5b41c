"""WriteTxnMarkers (key 27) v1-2: a transaction coordinator on another broker of the cluster asks
this broker, the leader of some of the transaction's partitions, to write the transaction's COMMIT
or ABORT marker there (kbroker.replication.txn_markers sends it; v2 adds the transaction version,
KIP-1228, which the marker's epoch already reflects). Each marker goes through this broker's
MarkerWriter (kbroker.txn.markers), so a marker on `__consumer_offsets` also commits or drops the
transaction's pending offsets in the group coordinator here. Per partition: UNKNOWN_TOPIC_OR_PARTITION,
NOT_LEADER_OR_FOLLOWER (the coordinator retries at the new leader), KAFKA_STORAGE_ERROR, or the
log's refusal (INVALID_PRODUCER_EPOCH for a marker older than the producer's epoch). Like every
coordinator write, the answer waits until the in-sync replicas have the markers
(kbroker.partitions.coordinator_writes)."""

from __future__ import annotations

from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import WriteTxnMarkersRequest, WriteTxnMarkersResponse
from .registry import Handler

_Result = WriteTxnMarkersResponse.WritableTxnMarkerResult
_TopicResult = WriteTxnMarkersResponse.WritableTxnMarkerTopicResult
_PartitionResult = WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult


def _write(ctx, marker, topic_name: str, index: int) -> int:
    try:
        ctx.txns.marker_writer.write(topic_name, index, marker.producer_id, marker.producer_epoch,
                                     marker.transaction_result, marker.coordinator_epoch)
    except ApiError as exc:
        return exc.error_code
    return ErrorCode.NONE


async def handle_write_txn_markers(ctx, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse:
    return WriteTxnMarkersResponse(markers=[
        _Result(producer_id=marker.producer_id, topics=[
            _TopicResult(name=topic.name, partitions=[
                _PartitionResult(partition_index=index, error_code=_write(ctx, marker, topic.name, index))
                for index in topic.partition_indexes])
            for topic in marker.topics])
        for marker in request.markers])


HANDLERS = [Handler(WriteTxnMarkersRequest, 1, 2, handle_write_txn_markers)]
