"""DescribeCluster (key 60) v0-2: the cluster as Kafka 4 answers it: every live broker and the
controller (a broker alone is both); endpoint type 1 (BROKER); none fenced (v2 IncludeFencedBrokers
lists no other, IsFenced false). Asking for controller endpoints (type 2) is
MISMATCHED_ENDPOINT_TYPE, as a broker listener answers."""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import DescribeClusterRequest, DescribeClusterResponse
from .metadata import CLUSTER_AUTHORIZED_OPERATIONS, OPERATIONS_NOT_REQUESTED
from .registry import Handler

BROKER_ENDPOINT, CONTROLLER_ENDPOINT = 1, 2

async def handle_describe_cluster(ctx, request: DescribeClusterRequest) -> DescribeClusterResponse:
    if ctx.api_version >= 1 and request.endpoint_type != BROKER_ENDPOINT:
        return DescribeClusterResponse(
            error_code=ErrorCode.MISMATCHED_ENDPOINT_TYPE,
            error_message="The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type "
                          + ("CONTROLLER" if request.endpoint_type == CONTROLLER_ENDPOINT else "UNKNOWN"),
            endpoint_type=BROKER_ENDPOINT, cluster_id="", controller_id=-1, brokers=[])
    return DescribeClusterResponse(
        error_code=ErrorCode.NONE, error_message=None, endpoint_type=BROKER_ENDPOINT,
        cluster_id=ctx.node.cluster_id, controller_id=ctx.cluster.controller_id(),
        brokers=[DescribeClusterResponse.DescribeClusterBroker(b.node_id, b.host, b.port, b.rack)
                 for b in ctx.cluster.brokers()],
        cluster_authorized_operations=(CLUSTER_AUTHORIZED_OPERATIONS if request.include_cluster_authorized_operations
                                       else OPERATIONS_NOT_REQUESTED))


HANDLERS = [
    Handler(DescribeClusterRequest, 0, 2, handle_describe_cluster),
]
