"""DescribeClientQuotas (key 48) v0-1: no quotas are configured, so no entries."""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import DescribeClientQuotasRequest, DescribeClientQuotasResponse
from .registry import Handler


async def handle_describe_client_quotas(ctx, request: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse:
    return DescribeClientQuotasResponse(error_code=ErrorCode.NONE, error_message="", entries=[])


HANDLERS = [
    Handler(DescribeClientQuotasRequest, 0, 1, handle_describe_client_quotas),
]
