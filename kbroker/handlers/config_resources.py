"""ListConfigResources (key 74) v0-1: which resources have configs (KIP-1142; v0 was
ListClientMetricsResources, KIP-714, and lists only client metrics resources).

As Kafka 4.4 answers: no resource types asked means every type the version knows; a type it does not
know is UNSUPPORTED_VERSION for the whole request. Listed, in Kafka's order: groups with dynamic
configs and client metrics resources (kbroker has neither, so none), this broker's id as a
BROKER_LOGGER and as a BROKER resource, then every topic, internal ones included.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import ListConfigResourcesRequest, ListConfigResourcesResponse
from .registry import Handler

TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32
_TYPES_BY_VERSION = {0: (CLIENT_METRICS,), 1: (TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP)}


async def handle_list_config_resources(ctx, request: ListConfigResourcesRequest) -> ListConfigResourcesResponse:
    known = _TYPES_BY_VERSION[ctx.api_version]
    wanted = set(request.resource_types) if ctx.api_version >= 1 and request.resource_types else set(known)
    if not wanted <= set(known):
        return ListConfigResourcesResponse(error_code=ErrorCode.UNSUPPORTED_VERSION)
    Resource = ListConfigResourcesResponse.ConfigResource
    found = []
    node = str(ctx.node.node_id)
    for resource_type in (BROKER_LOGGER, BROKER):
        if resource_type in wanted:
            found.append(Resource(resource_name=node, resource_type=resource_type))
    if TOPIC in wanted:
        found.extend(Resource(resource_name=t.name, resource_type=TOPIC) for t in ctx.metadata.topics())
    return ListConfigResourcesResponse(error_code=ErrorCode.NONE, config_resources=found)


HANDLERS = [Handler(ListConfigResourcesRequest, 0, 1, handle_list_config_resources)]
