"""Topic config resolution, validation and DescribeConfigs, as Kafka does them.

Theory of operation: a topic's effective config is, per topic config, the
topic's own override if it has one, else the value the broker supplies via the
synonym table (dynamic per-broker > dynamic cluster default > static >
default, and among synonyms ms over minutes over hours), else the topic
config's own default.  `validate_topic_configs` checks a CreateTopics or
AlterConfigs config set the way Kafka's controller does: null values, then
unknown names, then type and range in definition order (the first failure is
the message returned with INVALID_CONFIG), then cross-field rules.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from .broker import BrokerConfig
from .describe import TOPIC_CONFIG, ConfigEntry, ConfigSource, Synonym, collect_synonyms
from .topic_defs import IMPLEMENTED_TOPIC_CONFIGS, TOPIC_CONFIGS, TOPIC_SYNONYMS
from .types import DESCRIBE_TYPE_ID, ConfigError, ConfigKey, to_kafka_string

TOPIC_KEYS: dict[str, ConfigKey] = {k.name: k for k in TOPIC_CONFIGS}

# How the broker value for each topic config is computed (KafkaConfig.extractLogConfigMap).
_BROKER_VALUE = {
    "segment.ms": lambda c: c.log_roll_ms,
    "segment.jitter.ms": lambda c: c.log_roll_jitter_ms,
    "flush.ms": lambda c: c.log_flush_interval_ms,
    "retention.ms": lambda c: c.log_retention_ms,
}


def broker_topic_defaults(cfg: Optional[BrokerConfig]) -> dict[str, Any]:
    """Parsed topic-config values the broker supplies (topic names as keys)."""
    if cfg is None:
        return {}
    out = {}
    for topic_name, synonyms in TOPIC_SYNONYMS.items():
        fn = _BROKER_VALUE.get(topic_name)
        out[topic_name] = fn(cfg) if fn else cfg.get(synonyms[0][0])
    return out


def effective_topic_config(cfg: Optional[BrokerConfig], overrides: Mapping[str, str]) -> dict[str, Any]:
    """Parsed value of every topic config for a topic with these overrides.
    Overrides are assumed valid (use validate_topic_configs first)."""
    base = broker_topic_defaults(cfg)
    out = {}
    for key in TOPIC_CONFIGS:
        if key.name in overrides and overrides[key.name] is not None:
            out[key.name] = key.parse(overrides[key.name])
        elif key.name in base:
            out[key.name] = base[key.name]
        else:
            out[key.name] = key.parsed_default()
    return out


def validate_topic_configs(configs: Mapping[str, Optional[str]], cfg: Optional[BrokerConfig] = None,
                           *, remote_storage_system_enabled: bool = False) -> Optional[str]:
    """Kafka's message for an invalid topic config set (INVALID_CONFIG), or None if valid."""
    nulls = [k for k, v in configs.items() if v is None]
    if nulls:
        return "Null value not supported for topic configs: " + ",".join(nulls)
    for name in configs:
        if name not in TOPIC_KEYS:
            return f"Unknown topic config name: {name}"
    base = broker_topic_defaults(cfg)
    values: dict[str, Any] = {}
    try:
        for key in TOPIC_CONFIGS:
            if key.name in configs:
                values[key.name] = key.parse(configs[key.name])
            elif key.name in base:
                values[key.name] = base[key.name]
            else:
                values[key.name] = key.parsed_default()
    except ConfigError as e:
        return str(e)
    lo, hi = values["min.compaction.lag.ms"], values["max.compaction.lag.ms"]
    if lo > hi:
        return (f"conflict topic config setting min.compaction.lag.ms ({lo}) > "
                f"max.compaction.lag.ms ({hi})")
    if values["remote.storage.enable"] and not remote_storage_system_enabled:
        return ("Tiered Storage functionality is disabled in the broker. "
                "Topic cannot be configured with remote log storage.")
    return None


def describe_topic_configs(cfg: Optional[BrokerConfig], overrides: Mapping[str, str],
                           names: Optional[Iterable[str]] = None, *, include_synonyms: bool = True,
                           include_documentation: bool = False) -> list[ConfigEntry]:
    """DescribeConfigs entries for one topic, in Kafka's shape."""
    values = effective_topic_config(cfg, overrides)
    layers = cfg._layers() if cfg is not None else []
    wanted = set(names) if names else None
    out = []
    for key in TOPIC_CONFIGS:
        name = key.name
        if key.internal and name not in overrides:
            continue
        if wanted is not None and name not in wanted:
            continue
        sensitive = key.sensitive
        value = None if sensitive else to_kafka_string(values[name], key.type)
        syns: list[Synonym] = []
        if name in overrides:
            syns.append(Synonym(name, value, TOPIC_CONFIG))
        if name in TOPIC_SYNONYMS and layers:
            broker_names = [b for b, _ in TOPIC_SYNONYMS[name]]
            syns += collect_synonyms(broker_names[0], broker_names, sensitive, layers)
        out.append(ConfigEntry(
            name=name, value=value, source=syns[0].source if syns else ConfigSource.DEFAULT_CONFIG,
            read_only=False, sensitive=sensitive, synonyms=syns if include_synonyms else [],
            config_type=DESCRIBE_TYPE_ID[key.type],
            documentation=key.doc if include_documentation else None))
    return out


def unimplemented_topic_configs(overrides: Iterable[str]) -> list[str]:
    """Topic overrides kbroker stores but does not act on."""
    return sorted(n for n in overrides if n in TOPIC_KEYS and n not in IMPLEMENTED_TOPIC_CONFIGS)
