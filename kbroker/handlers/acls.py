"""DescribeAcls (key 29) v1-3: SECURITY_DISABLED, as Kafka answers without an authorizer. (ACLs come with
the security issue: CreateAcls and DeleteAcls will live here too.)"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import DescribeAclsRequest, DescribeAclsResponse
from .registry import Handler


async def handle_describe_acls(ctx, request: DescribeAclsRequest) -> DescribeAclsResponse:
    return DescribeAclsResponse(error_code=ErrorCode.SECURITY_DISABLED,
                                error_message="No Authorizer is configured on the broker", resources=[])


HANDLERS = [
    Handler(DescribeAclsRequest, 1, 3, handle_describe_acls),
]
