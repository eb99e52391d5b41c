"""ApiVersions (key 18), versions 0-5: what the broker serves, and its feature flags.

Clients send it first on every connection and pick, per API, the highest version both sides know.
The list comes from the handler registry. A request for a version the broker does not know is
answered by the server (see kbroker.server.dispatch) with UNSUPPORTED_VERSION and a v0 body, so the
client can retry with a version listed there.

v3+ also carries the supported and finalized feature levels (kbroker.handlers.features): the admin
client's describeFeatures (`kafka-features describe`) reads them here, producers read
transaction.version to choose transactions v2. As Kafka does, v3 leaves out supported features whose
minimum is 0 (older clients could not parse them, KAFKA-17011) and the finalized list leaves out
level 0. (Kafka also refuses a v3+ client software name or version outside its pattern, an empty one
included, with INVALID_REQUEST; kbroker answers those, as it always has.) v5
(KIP-1242) may name the cluster and node the client believes it talks to: naming only one of them is
INVALID_REQUEST, naming others than ours is REBOOTSTRAP_REQUIRED.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import ApiVersionsRequest, ApiVersionsResponse
from .features import finalized_features, supported_features
from .registry import Handler, Registry

def api_versions_response(registry: Registry, error: ErrorCode = ErrorCode.NONE) -> ApiVersionsResponse:
    return ApiVersionsResponse(
        error_code=error,
        api_keys=[ApiVersionsResponse.ApiVersion(key, low, high) for key, low, high in registry.advertised()],
    )


def _refusal(ctx, request: ApiVersionsRequest) -> ErrorCode | None:
    version = ctx.api_version
    if version >= 5:
        if (request.cluster_id is None) != (request.node_id == -1):
            return ErrorCode.INVALID_REQUEST
        if request.cluster_id is not None and (request.cluster_id != ctx.node.cluster_id
                                               or request.node_id != ctx.node.node_id):
            return ErrorCode.REBOOTSTRAP_REQUIRED
    return None


async def handle_api_versions(ctx, request: ApiVersionsRequest) -> ApiVersionsResponse:
    refusal = _refusal(ctx, request)
    if refusal is not None:
        return ApiVersionsResponse(error_code=refusal)
    response = api_versions_response(ctx.registry)
    if ctx.api_version >= 3:
        response.supported_features = [
            ApiVersionsResponse.SupportedFeatureKey(name, low, high)
            for name, (low, high) in supported_features(ctx.registry).items() if low > 0 or ctx.api_version >= 4]
        response.finalized_features_epoch = ctx.features.epoch
        response.finalized_features = [ApiVersionsResponse.FinalizedFeatureKey(name, level, level)
                                       for name, level in finalized_features(ctx).items() if level > 0]
    return response


HANDLERS = [Handler(ApiVersionsRequest, 0, 5, handle_api_versions)]
