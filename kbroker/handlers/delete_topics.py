"""DeleteTopics (key 20) v1-6: topics removed with their logs and committed offsets.

What Kafka 4 (KRaft, one broker that is also the controller) does, and so what is done here:

DeleteTopics: by name (v1-5, and v6 entries without an id) or by id (v6). Unknown name:
UNKNOWN_TOPIC_OR_PARTITION, unknown id: UNKNOWN_TOPIC_ID, both or neither given, or duplicates:
INVALID_REQUEST; delete.topic.enable=false: INVALID_REQUEST before v3, TOPIC_DELETION_DISABLED from v3
(for every topic). Logs are removed at once; the broker tells its topic-deletion listeners (the group
coordinator drops the topic's committed offsets there).
"""

from __future__ import annotations

import uuid

from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import DeleteTopicsRequest, DeleteTopicsResponse
from ..protocol.primitives import ZERO_UUID
from .registry import Handler
from .topic_rules import UNKNOWN_TOPIC_ID_MESSAGE, UNKNOWN_TOPIC_MESSAGE

async def handle_delete_topics(ctx, request: DeleteTopicsRequest) -> DeleteTopicsResponse:
    Result = DeleteTopicsResponse.DeletableTopicResult
    version = ctx.api_version
    if not ctx.config.delete_topic_enable:
        if version < 3:
            code, message = ErrorCode.INVALID_REQUEST, "Topic deletion is disabled."
        else:
            code, message = ErrorCode.TOPIC_DELETION_DISABLED, "Topic deletion is disabled."
        entries = ([(n, ZERO_UUID) for n in request.topic_names] if version < 6
                   else [(t.name, t.topic_id) for t in request.topics])
        return DeleteTopicsResponse(responses=[Result(name=n, topic_id=i, error_code=code, error_message=message)
                                               for n, i in entries])
    results: list = []
    names: list[str] = []
    ids: list[uuid.UUID] = []
    if version < 6:
        names = list(request.topic_names)
    else:
        for state in request.topics:
            if state.name is None:
                if state.topic_id == ZERO_UUID:
                    results.append(Result(name=None, topic_id=ZERO_UUID, error_code=ErrorCode.INVALID_REQUEST,
                                          error_message="Neither topic name nor id were specified."))
                else:
                    ids.append(state.topic_id)
            elif state.topic_id == ZERO_UUID:
                names.append(state.name)
            else:
                results.append(Result(name=state.name, topic_id=state.topic_id, error_code=ErrorCode.INVALID_REQUEST,
                                      error_message="You may not specify both topic name and topic id."))
    duplicate_names = {n for n in names if names.count(n) > 1}
    duplicate_ids = {i for i in ids if ids.count(i) > 1}
    to_delete: dict[uuid.UUID, str] = {}
    for topic_id in dict.fromkeys(i for i in ids if i not in duplicate_ids):
        topic = ctx.metadata.get_by_id(topic_id)
        if topic is None:
            results.append(Result(name=None, topic_id=topic_id, error_code=ErrorCode.UNKNOWN_TOPIC_ID,
                                  error_message=UNKNOWN_TOPIC_ID_MESSAGE))
        else:
            to_delete[topic_id] = topic.name
    for name in dict.fromkeys(n for n in names if n not in duplicate_names):
        topic = ctx.metadata.get(name)
        if topic is None:
            results.append(Result(name=name, topic_id=ZERO_UUID, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                  error_message=UNKNOWN_TOPIC_MESSAGE))
        elif topic.topic_id in to_delete:
            del to_delete[topic.topic_id]
            results.append(Result(name=name, topic_id=topic.topic_id, error_code=ErrorCode.INVALID_REQUEST,
                                  error_message="The provided topic name maps to an ID that was already supplied."))
        else:
            to_delete[topic.topic_id] = name
    for name in sorted(duplicate_names):
        results.append(Result(name=name, topic_id=ZERO_UUID, error_code=ErrorCode.INVALID_REQUEST,
                              error_message="Duplicate topic name."))
    for topic_id in duplicate_ids:
        results.append(Result(name=None, topic_id=topic_id, error_code=ErrorCode.INVALID_REQUEST,
                              error_message="Duplicate topic id."))
    for topic_id, name in to_delete.items():
        try:
            await ctx.topics.delete_topic(name)
        except ApiError as exc:  # the disk refused
            results.append(Result(name=name, topic_id=topic_id, error_code=exc.error_code, error_message=exc.message))
            continue
        results.append(Result(name=name, topic_id=topic_id, error_code=ErrorCode.NONE, error_message=None))
    return DeleteTopicsResponse(responses=results)


HANDLERS = [Handler(DeleteTopicsRequest, 1, 6, handle_delete_topics)]
