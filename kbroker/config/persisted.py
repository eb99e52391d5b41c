"""Dynamic broker configs (AlterConfigs on the BROKER resource) kept in the data directory.

They live in `kbroker-dynamic-configs.json`, so they are layered over server.properties again after a
restart. Kafka 4.4's storage format writes the cluster's min.insync.replicas as a dynamic cluster
default (eligible leader replicas, KIP-966); a new kbroker data directory starts the same.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..durable_files import write_atomically
from .broker import BrokerConfig
from .types import ConfigError

log = logging.getLogger("kbroker.configs")

DYNAMIC_CONFIGS_FILE = "kbroker-dynamic-configs.json"


def rebuild(config: BrokerConfig, dynamic_broker: dict[str, str], dynamic_default: dict[str, str]) -> BrokerConfig:
    """The same static config with other dynamic layers; raises ConfigError for an invalid value."""
    return BrokerConfig(config.static, dynamic_broker=dynamic_broker, dynamic_default=dynamic_default)


def _formatted_cluster_defaults(config: BrokerConfig) -> dict[str, str]:
    """What Kafka 4.4's storage format writes as cluster-level configs: with eligible leader replicas
    (KIP-966, on by default) the cluster's min.insync.replicas becomes a dynamic cluster default, so
    DescribeConfigs shows it with source DYNAMIC_DEFAULT_BROKER_CONFIG and kafka-topics --describe
    lists it among every topic's configs."""
    return {"min.insync.replicas": str(config.get("min.insync.replicas"))}


def with_persisted_dynamic_configs(config: BrokerConfig, data_dir: Path) -> BrokerConfig:
    """`config` with the dynamic broker configs saved by earlier AlterConfigs layered on top; a new
    data directory starts with the cluster-level configs Kafka's format writes."""
    path = Path(data_dir) / DYNAMIC_CONFIGS_FILE
    if not path.exists():
        try:
            formatted = rebuild(config, {}, _formatted_cluster_defaults(config))
            save_dynamic_configs(data_dir, formatted)
            return formatted
        except (OSError, ConfigError) as exc:
            log.warning("cannot write %s: %s", path, exc)
            return config
    try:
        data = json.loads(path.read_text())
        return rebuild(config, dict(data.get("broker", {})), dict(data.get("cluster_default", {})))
    except (OSError, ValueError, ConfigError) as exc:
        log.warning("ignoring dynamic broker configs in %s: %s", path, exc)
        return config


def save_dynamic_configs(data_dir: Path, config: BrokerConfig) -> None:
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    write_atomically(Path(data_dir) / DYNAMIC_CONFIGS_FILE, json.dumps(
        {"version": 1, "broker": config.dynamic_broker, "cluster_default": config.dynamic_default},
        indent=1, sort_keys=True).encode())
