"""DescribeLogDirs (key 35) v1-5: the one log directory, every partition's size on disk, offset lag 0,
(v4) the file system's total and usable bytes, and (v5) never cordoned (KIP-1066: no directory is
closed to new partitions here)."""

from __future__ import annotations

import shutil

from ..protocol.errors import ErrorCode
from ..protocol.messages import DescribeLogDirsRequest, DescribeLogDirsResponse
from .registry import Handler


async def handle_describe_log_dirs(ctx, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse:
    Result = DescribeLogDirsResponse.DescribeLogDirsResult
    TopicResult = DescribeLogDirsResponse.DescribeLogDirsTopic
    PartitionResult = DescribeLogDirsResponse.DescribeLogDirsPartition
    if request.topics is None:
        wanted = {t.name: range(t.partitions) for t in ctx.metadata.topics()}
    else:
        wanted = {}
        for t in request.topics:
            wanted.setdefault(t.topic, [])
            wanted[t.topic] = list(dict.fromkeys([*wanted[t.topic], *t.partitions]))
    topics = []
    for name, partitions in wanted.items():
        topic = ctx.metadata.get(name)
        if topic is None:
            continue
        found = []
        for index in partitions:
            partition_log = ctx.partitions.logs.get(name, index) if 0 <= index < topic.partitions else None
            if partition_log is not None:
                found.append(PartitionResult(partition_index=index, partition_size=partition_log.size_in_bytes,
                                             offset_lag=0, is_future_key=False))
        if found:
            topics.append(TopicResult(name=name, partitions=found))
    total = usable = -1
    if ctx.api_version >= 4:
        try:
            usage = shutil.disk_usage(ctx.node.data_dir)
            total, usable = usage.total, usage.free
        except OSError:
            pass
    return DescribeLogDirsResponse(error_code=ErrorCode.NONE, results=[
        Result(error_code=ErrorCode.NONE, log_dir=str(ctx.node.data_dir.resolve()), topics=topics,
               total_bytes=total, usable_bytes=usable)])


HANDLERS = [
    Handler(DescribeLogDirsRequest, 1, 5, handle_describe_log_dirs),
]
