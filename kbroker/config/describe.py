"""DescribeConfigs building blocks shared by broker and topic describes.

Theory of operation: Kafka answers DescribeConfigs with, per config, a value,
a source, read-only and sensitive flags and (v1+) a list of synonyms: every
place the value could come from, highest precedence first.  `ConfigSource`
uses the ids of Kafka's DescribeConfigsResponse.ConfigSource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Mapping, Optional, Sequence


class ConfigSource(IntEnum):
    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1          # Kafka also calls this TOPIC_CONFIG
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


TOPIC_CONFIG = ConfigSource.DYNAMIC_TOPIC_CONFIG


@dataclass(frozen=True)
class Synonym:
    name: str
    value: Optional[str]
    source: ConfigSource


@dataclass(frozen=True)
class ConfigEntry:
    """One DescribeConfigs result entry (wire-ready strings and ids)."""
    name: str
    value: Optional[str]               # None for sensitive configs
    source: ConfigSource
    read_only: bool
    sensitive: bool
    synonyms: list = field(default_factory=list)   # list[Synonym]
    config_type: int = 0               # DescribeConfigs v3+ ConfigType id (0 = unknown)
    documentation: Optional[str] = None

    @property
    def is_default(self) -> bool:
        """DescribeConfigs v0 flag."""
        return self.source == ConfigSource.DEFAULT_CONFIG


def collect_synonyms(primary: str, names: Sequence[str], sensitive: bool,
                     layers: Sequence[tuple[Mapping[str, str], ConfigSource]]) -> list[Synonym]:
    """Kafka's configSynonyms: walk the layers (highest precedence first), and in
    each layer the synonym names in order; then drop leading entries that are not
    ``primary`` itself (so a lower-precedence synonym alone yields nothing)."""
    found = [Synonym(n, None if sensitive else layer[n], source)
             for layer, source in layers for n in names if n in layer]
    while found and found[0].name != primary:
        found.pop(0)
    return found
