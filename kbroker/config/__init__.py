"""kbroker's configuration layer: Kafka 4.x broker and topic configs.

Modules: `types` (value types, validators, ConfigError), `broker_defs` and
`topic_defs` (the definition tables), `properties` (server.properties and
``--override`` parsing), `listeners`, `broker` (BrokerConfig), `topic` (topic
config resolution, validation, describe) and `describe` (DescribeConfigs
entries and sources).
"""

from .broker import BrokerConfig, load_broker_config, update_mode
from .describe import ConfigEntry, ConfigSource, Synonym
from .listeners import Endpoint
from .properties import load_properties, parse_overrides, parse_properties
from .topic import (broker_topic_defaults, describe_topic_configs, effective_topic_config,
                    unimplemented_topic_configs, validate_topic_configs)
from .types import ConfigError, ConfigKey, Password

__all__ = [
    "BrokerConfig", "ConfigEntry", "ConfigError", "ConfigKey", "ConfigSource", "Endpoint",
    "Password", "Synonym", "broker_topic_defaults", "describe_topic_configs",
    "effective_topic_config", "load_broker_config", "load_properties", "parse_overrides",
    "parse_properties", "unimplemented_topic_configs", "update_mode", "validate_topic_configs",
]
