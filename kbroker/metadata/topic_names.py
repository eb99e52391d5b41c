"""Kafka's rules for topic names (same as Kafka's Topic.validate)."""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 249
_LEGAL = re.compile(r"^[a-zA-Z0-9._-]+$")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


def validate_topic_name(name: str | None) -> str | None:
    """None when the name is legal, else the message Kafka 4.4's controller gives with
    INVALID_TOPIC_EXCEPTION."""
    if not name:
        return "Topic name is invalid: the empty string is not allowed"
    if name in (".", ".."):
        return f"Topic name is invalid: '{name}' is not allowed"
    if len(name) > MAX_NAME_LENGTH:
        return (f"Topic name is invalid: the length of '{name}' is longer than the max allowed length "
                f"{MAX_NAME_LENGTH}")
    if not _LEGAL.match(name):
        return (f"Topic name is invalid: '{name}' contains one or more characters other than ASCII "
                "alphanumerics, '.', '_' and '-'")
    return None
