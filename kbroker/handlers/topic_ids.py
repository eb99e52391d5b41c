"""Topic ids on the wire (KIP-516): from some version on, a request names its topics by id and the
response answers by id (Produce v13, OffsetCommit v10, OffsetFetch v10, TxnOffsetCommit v6).

The handlers keep working on names: they resolve each id to its topic's name as the request comes
in, answer an id no topic has with UNKNOWN_TOPIC_ID for each of its partitions (as Kafka does,
without asking the coordinator), and put the id back beside the name in the response.
"""

from __future__ import annotations

import uuid

from ..protocol.primitives import ZERO_UUID


def name_of(ctx, name: str, topic_id: uuid.UUID, by_id: bool) -> str | None:
    """The topic the request means: its own name before topic ids, else the name of the topic with
    that id (None when there is none)."""
    if not by_id:
        return name
    topic = ctx.metadata.get_by_id(topic_id)
    return None if topic is None else topic.name


def id_of(ctx, name: str) -> uuid.UUID:
    """The id of the topic with this name (the zero uuid when it is gone)."""
    topic = ctx.metadata.get(name)
    return ZERO_UUID if topic is None else topic.topic_id
