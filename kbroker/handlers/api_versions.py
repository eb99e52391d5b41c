"""ApiVersions (key 18), versions 0-4: what the broker serves.

Clients send it first on every connection and pick, per API, the highest version both sides know.
The list comes from the handler registry. A request for a version the broker does not know is
answered by the server (see kbroker.server.dispatch) with UNSUPPORTED_VERSION and a v0 body, so the
client can retry with a version listed there.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import ApiVersionsRequest, ApiVersionsResponse
from .registry import Handler, Registry

# name -> (min supported, max supported = finalized level); metadata.version 25 is Kafka 4.0-IV3
FEATURES = {"metadata.version": (7, 25)}


def api_versions_response(registry: Registry, error: ErrorCode = ErrorCode.NONE) -> ApiVersionsResponse:
    return ApiVersionsResponse(
        error_code=error,
        api_keys=[ApiVersionsResponse.ApiVersion(key, low, high) for key, low, high in registry.advertised()],
    )


async def handle_api_versions(ctx, request: ApiVersionsRequest) -> ApiVersionsResponse:
    response = api_versions_response(ctx.registry)
    if ctx.api_version >= 3:
        response.supported_features = [
            ApiVersionsResponse.SupportedFeatureKey(name, low, high) for name, (low, high) in FEATURES.items()]
        response.finalized_features_epoch = 0
        response.finalized_features = [
            ApiVersionsResponse.FinalizedFeatureKey(name, high, high) for name, (_, high) in FEATURES.items()]
    return response


HANDLERS = [Handler(ApiVersionsRequest, 0, 4, handle_api_versions)]
