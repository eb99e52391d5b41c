"""BrokerConfig: the broker's typed, validated view of its configuration.

Theory of operation: a broker starts from server.properties plus
``--override`` pairs (`load_broker_config`).  Every key must be a Kafka broker
config (or a pattern Kafka accepts, such as ``listener.name.<l>.<config>``);
anything else is a typo and stops startup with a "did you mean" hint.  Known
configs kbroker does not honour are accepted and summed up in one warning
line.  Each defined config is parsed and validated in table order (the first
error wins, as in Kafka); defaults are Kafka's.  kbroker's own settings —
`KBROKER_DEFAULT_OVERRIDES` plus what the caller passes as ``builtin_settings``
(the CLI's listener, node id and data dir) — act like the server.properties
Kafka ships: static configs beneath the user's, reported as STATIC_BROKER_CONFIG
with Kafka's default as a synonym.  Dynamic values (per-broker and cluster
default, from AlterConfigs) layer on top for `get` and `describe`.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional, Union
from pathlib import Path

from . import broker_defs as defs
from .describe import ConfigEntry, ConfigSource, collect_synonyms
from .listeners import Endpoint, effective_protocol_map, parse_endpoints
from .properties import load_properties, parse_overrides
from .types import (DESCRIBE_TYPE_ID, REQUIRED, ConfigError, ConfigKey,
                    to_kafka_string)

BROKER_KEYS: dict[str, ConfigKey] = {k.name: k for k in defs.BROKER_CONFIGS}
DYNAMIC_ONLY_KEYS: dict[str, ConfigKey] = {k.name: k for k in defs.DYNAMIC_ONLY_BROKER_CONFIGS}
ALL_DYNAMIC = defs.PER_BROKER_CONFIGS | defs.CLUSTER_WIDE_CONFIGS
_ACCEPTED = [re.compile(p + r"\Z") for p in defs.ACCEPTED_KEY_PATTERNS]
_LISTENER_OVERRIDE = re.compile(r"listener\.name\.[^.]*\.(.*)\Z")
_MECHANISM_CONFIGS = ("sasl.jaas.config", "sasl.login.callback.handler.class", "sasl.login.class",
                      "sasl.server.callback.handler.class", "connections.max.reauth.ms")


def update_mode(name: str) -> str:
    """'read-only', 'per-broker' or 'cluster-wide', as Kafka's docs classify configs."""
    if name in defs.PER_BROKER_CONFIGS:
        return "per-broker"
    if name in defs.CLUSTER_WIDE_CONFIGS:
        return "cluster-wide"
    return "read-only"


def broker_synonyms(name: str) -> list[str]:
    """Kafka's DynamicBrokerConfig.brokerConfigSynonyms."""
    for group in (("log.roll.ms", "log.roll.hours"), ("log.roll.jitter.ms", "log.roll.jitter.hours"),
                  ("log.retention.ms", "log.retention.minutes", "log.retention.hours")):
        if name in group:
            return list(group)
    if name == "log.flush.interval.ms":
        return ["log.flush.interval.ms", "log.flush.scheduler.interval.ms"]
    m = _LISTENER_OVERRIDE.match(name)
    if m:
        base = m.group(1)
        mech = next((c for c in _MECHANISM_CONFIGS if base.endswith(c)), None)
        return [name, mech or base]
    return [name]


def key_for(name: str) -> Optional[ConfigKey]:
    """The definition of a broker config name, following listener prefixes."""
    for n in [name] + broker_synonyms(name)[1:]:
        k = BROKER_KEYS.get(n) or DYNAMIC_ONLY_KEYS.get(n)
        if k:
            return k
    return None


def suggest(name: str) -> Optional[str]:
    """Closest known broker config name, for "did you mean" hints."""
    import difflib  # only for a mistyped name, so not at every start

    close = difflib.get_close_matches(name, list(BROKER_KEYS) + list(DYNAMIC_ONLY_KEYS), n=1, cutoff=0.75)
    return close[0] if close else None


def _is_known(name: str) -> bool:
    return name in BROKER_KEYS or name in DYNAMIC_ONLY_KEYS or any(p.match(name) for p in _ACCEPTED)


def _default_strings(defaults: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in defaults.items():
        if value is REQUIRED or value is None:
            continue
        key = BROKER_KEYS.get(name) or DYNAMIC_ONLY_KEYS.get(name)
        s = value if isinstance(value, str) else to_kafka_string(value, key.type if key else None)
        out[name] = s
    return out


class BrokerConfig:
    """Parsed broker configuration.  Raises ConfigError when invalid."""

    def __init__(self, props: Optional[Mapping[str, str]] = None, *,
                 builtin_settings: Optional[Mapping[str, Any]] = None,
                 dynamic_broker: Optional[Mapping[str, str]] = None,
                 dynamic_default: Optional[Mapping[str, str]] = None):
        user = {str(k): str(v) for k, v in (props or {}).items()}
        unknown = [k for k in user if not _is_known(k)]
        if unknown:
            raise ConfigError(_unknown_message(unknown), unknown[0])
        # Kafka treats broker.id and node.id as synonyms when only one is set.
        if "broker.id" in user and "node.id" not in user:
            user["node.id"] = user["broker.id"]
        # kbroker's built-in settings play the part of the server.properties Kafka ships: static
        # configs under the user's own, so DescribeConfigs reports them as Kafka reports that file's.
        builtin = {k: str(v) for k, v in {**defs.KBROKER_DEFAULT_OVERRIDES, **(builtin_settings or {})}.items()
                   if k not in user}
        static = {**builtin, **user}
        if "node.id" in static and "broker.id" not in static:
            static["broker.id"] = static["node.id"]
        self.builtin = frozenset(builtin)
        self.static: dict[str, str] = static
        self.dynamic_broker: dict[str, str] = dict(dynamic_broker or {})
        self.dynamic_default: dict[str, str] = dict(dynamic_default or {})
        defaults: dict[str, Any] = {k.name: k.default for k in defs.BROKER_CONFIGS}
        defaults.update({k.name: k.default for k in defs.DYNAMIC_ONLY_BROKER_CONFIGS})
        self.defaults = defaults
        self._values: dict[str, Any] = {}
        for key in list(defs.BROKER_CONFIGS) + list(defs.DYNAMIC_ONLY_BROKER_CONFIGS):
            raw = self._raw(key.name)
            if raw is REQUIRED:
                raise ConfigError(f'Missing required configuration "{key.name}" which has no default value.',
                                  key.name)
            self._values[key.name] = key.parse(raw) if raw is not None else None
        self._check_cross_field()

    # ---- raw layering --------------------------------------------------------
    def _raw(self, name: str) -> Any:
        for layer in (self.dynamic_broker, self.dynamic_default, self.static):
            if name in layer and (layer is self.static or name in ALL_DYNAMIC or name in DYNAMIC_ONLY_KEYS):
                return layer[name]
        return self.defaults.get(name)

    # ---- typed access ----------------------------------------------------------
    def get(self, name: str) -> Any:
        """Parsed value of a defined broker config (KeyError if not defined)."""
        if name in self._values:
            return self._values[name]
        raise KeyError(f"Unknown broker config {name}")

    __getitem__ = get

    def is_set(self, name: str) -> bool:
        """True when the config was given explicitly (statically or dynamically)."""
        return name in self.static or name in self.dynamic_broker or name in self.dynamic_default

    def listener_override(self, listener: str, name: str) -> Any:
        """Value of ``listener.name.<listener>.<name>`` if set, else ``name``'s value."""
        raw = self.static.get(f"listener.name.{listener.lower()}.{name}")
        return BROKER_KEYS[name].parse(raw) if raw is not None else self.get(name)

    @property
    def unimplemented(self) -> list[str]:
        """Explicitly set configs kbroker accepts but does not honour."""
        skip = defs.IMPLEMENTED_BROKER_CONFIGS | defs.NOT_APPLICABLE_BROKER_CONFIGS
        return sorted(k for k in self.static if k not in skip and k not in self.builtin)

    def warning(self) -> Optional[str]:
        """One log line naming the unimplemented configs, or None."""
        names = self.unimplemented
        if not names:
            return None
        return ("kbroker accepts but does not implement these Kafka configs; they have no effect: "
                + ", ".join(names))

    # ---- convenience properties -----------------------------------------------
    node_id = property(lambda self: self.get("node.id"))
    broker_id = property(lambda self: self.get("broker.id"))
    process_roles = property(lambda self: list(self.get("process.roles")))
    num_partitions = property(lambda self: self.get("num.partitions"))
    default_replication_factor = property(lambda self: self.get("default.replication.factor"))
    auto_create_topics_enable = property(lambda self: self.get("auto.create.topics.enable"))
    delete_topic_enable = property(lambda self: self.get("delete.topic.enable"))
    socket_request_max_bytes = property(lambda self: self.get("socket.request.max.bytes"))
    socket_send_buffer_bytes = property(lambda self: self.get("socket.send.buffer.bytes"))
    socket_receive_buffer_bytes = property(lambda self: self.get("socket.receive.buffer.bytes"))
    connections_max_idle_ms = property(lambda self: self.get("connections.max.idle.ms"))
    message_max_bytes = property(lambda self: self.get("message.max.bytes"))
    fetch_max_bytes = property(lambda self: self.get("fetch.max.bytes"))
    log_retention_check_interval_ms = property(lambda self: self.get("log.retention.check.interval.ms"))
    log_flush_scheduler_interval_ms = property(lambda self: self.get("log.flush.scheduler.interval.ms"))
    log_cleaner_enable = property(lambda self: self.get("log.cleaner.enable"))
    log_cleaner_backoff_ms = property(lambda self: self.get("log.cleaner.backoff.ms"))
    # groups
    group_min_session_timeout_ms = property(lambda self: self.get("group.min.session.timeout.ms"))
    group_max_session_timeout_ms = property(lambda self: self.get("group.max.session.timeout.ms"))
    group_initial_rebalance_delay_ms = property(lambda self: self.get("group.initial.rebalance.delay.ms"))
    group_max_size = property(lambda self: self.get("group.max.size"))
    # offsets topic
    offsets_topic_num_partitions = property(lambda self: self.get("offsets.topic.num.partitions"))
    offsets_topic_replication_factor = property(lambda self: self.get("offsets.topic.replication.factor"))
    offsets_topic_segment_bytes = property(lambda self: self.get("offsets.topic.segment.bytes"))
    offsets_retention_minutes = property(lambda self: self.get("offsets.retention.minutes"))
    offsets_retention_check_interval_ms = property(lambda self: self.get("offsets.retention.check.interval.ms"))
    offsets_commit_timeout_ms = property(lambda self: self.get("offsets.commit.timeout.ms"))
    offsets_load_buffer_size = property(lambda self: self.get("offsets.load.buffer.size"))
    offset_metadata_max_bytes = property(lambda self: self.get("offset.metadata.max.bytes"))
    # transactions
    transaction_max_timeout_ms = property(lambda self: self.get("transaction.max.timeout.ms"))
    transactional_id_expiration_ms = property(lambda self: self.get("transactional.id.expiration.ms"))
    transaction_state_log_num_partitions = property(lambda self: self.get("transaction.state.log.num.partitions"))
    producer_id_expiration_ms = property(lambda self: self.get("producer.id.expiration.ms"))

    @property
    def offsets_retention_ms(self) -> int:
        return self.get("offsets.retention.minutes") * 60 * 1000

    @property
    def log_dirs(self) -> list[str]:
        """log.dirs, else log.dir (which the CLI sets among its builtin_settings)."""
        dirs = self.get("log.dirs")
        if dirs is None:
            dirs = (self.get("log.dir") or "").split(",")
        return [d.strip() for d in dirs if d.strip()]

    @property
    def log_retention_ms(self) -> int:
        """log.retention.ms > .minutes > .hours; any negative result means -1 (forever)."""
        ms = self.get("log.retention.ms")
        if ms is None:
            minutes = self.get("log.retention.minutes")
            ms = minutes * 60_000 if minutes is not None else self.get("log.retention.hours") * 3_600_000
        return -1 if ms < 0 else ms

    @property
    def log_roll_ms(self) -> int:
        ms = self.get("log.roll.ms")
        return ms if ms is not None else self.get("log.roll.hours") * 3_600_000

    @property
    def log_roll_jitter_ms(self) -> int:
        ms = self.get("log.roll.jitter.ms")
        return ms if ms is not None else self.get("log.roll.jitter.hours") * 3_600_000

    @property
    def log_flush_interval_ms(self) -> int:
        ms = self.get("log.flush.interval.ms")
        return ms if ms is not None else self.get("log.flush.scheduler.interval.ms")

    @property
    def controller_listener_names(self) -> list[str]:
        v = self.get("controller.listener.names") or ""
        return [s.strip().upper() for s in v.split(",") if s.strip()]

    @property
    def listener_security_protocol_map(self) -> dict[str, str]:
        explicit = self.static.get("listener.security.protocol.map")
        if "listener.security.protocol.map" in self.dynamic_broker:
            explicit = self.dynamic_broker["listener.security.protocol.map"]
        return effective_protocol_map(explicit, self.defaults["listener.security.protocol.map"],
                                      self.controller_listener_names)

    @property
    def all_listeners(self) -> list[Endpoint]:
        """Every endpoint in ``listeners``, controller listeners included."""
        return parse_endpoints(self.get("listeners"), self.listener_security_protocol_map)

    @property
    def listeners(self) -> list[Endpoint]:
        """The listeners kbroker serves (controller listeners are left out)."""
        return [e for e in self.all_listeners if e.listener not in self.controller_listener_names]

    @property
    def controller_listeners(self) -> list[Endpoint]:
        """Controller listeners from ``listeners``; accepted but not served by kbroker."""
        return [e for e in self.all_listeners if e.listener in self.controller_listener_names]

    @property
    def advertised_listeners(self) -> list[Endpoint]:
        """What Metadata tells clients: advertised.listeners, else listeners (broker ones only)."""
        raw = self.get("advertised.listeners")
        eps = (parse_endpoints(raw, self.listener_security_protocol_map, "advertised.listeners",
                               require_distinct_ports=False) if raw is not None else self.all_listeners)
        return [e for e in eps if e.listener not in self.controller_listener_names]

    @property
    def inter_broker_listener_name(self) -> str:
        name = self.get("inter.broker.listener.name")
        return name.upper() if name else self.get("security.inter.broker.protocol")

    # ---- validation across fields (subset of KafkaConfig.validateValues) -------
    def _check_cross_field(self) -> None:
        if self.node_id != self.broker_id:
            raise ConfigError("You must set `node.id` to the same value as `broker.id`.", "node.id")
        if "inter.broker.listener.name" in self.static and "security.inter.broker.protocol" in self.static:
            raise ConfigError("Only one of inter.broker.listener.name and security.inter.broker.protocol "
                              "should be set.", "inter.broker.listener.name")
        if not self.log_dirs:
            raise ConfigError("At least one log directory must be defined via log.dirs or log.dir.", "log.dirs")
        if self.get("log.retention.ms") is not None and not (self.log_retention_ms >= 1 or self.log_retention_ms == -1):
            raise ConfigError("log.retention.ms must be unlimited (-1) or, greater than or equal to 1",
                              "log.retention.ms")
        if self.log_roll_ms < 1:
            raise ConfigError("log.roll.ms must be greater than or equal to 1", "log.roll.ms")
        if self.log_roll_jitter_ms < 0:
            raise ConfigError("log.roll.jitter.ms must be greater than or equal to 0", "log.roll.jitter.ms")
        roles = self.process_roles
        if len(set(roles)) != len(roles):
            raise ConfigError(f"Duplicate role names found in `process.roles`: {roles}", "process.roles")
        if "controller" in roles and not self.controller_listener_names:
            raise ConfigError("controller.listener.names must contain at least one value when running "
                              "KRaft with just the broker role", "controller.listener.names")
        pmap = self.listener_security_protocol_map
        for name in self.controller_listener_names:
            if name not in pmap:
                raise ConfigError(f"Controller listener with name {name} defined in controller.listener.names "
                                  "not found in listener.security.protocol.map  (an explicit security mapping "
                                  "for each controller listener is required if "
                                  "listener.security.protocol.map is non-empty, or if there are security "
                                  "protocols other than PLAINTEXT in use)", "controller.listener.names")
        served = self.listeners
        advertised = self.advertised_listeners
        if "controller" in roles:
            if not self.controller_listeners:
                raise ConfigError("The listeners config must contain at least one value that is in "
                                  "controller.listener.names when the process roles include controller",
                                  "listeners")
        names = {e.listener for e in served}
        if not {e.listener for e in advertised} <= names:
            raise ConfigError("advertised.listeners listener names must be equal to or a subset of the ones "
                              "defined in listeners. Found "
                              f"{','.join(sorted(e.listener for e in advertised))}. "
                              f"The valid options based on the current configuration are {','.join(sorted(names))}",
                              "advertised.listeners")
        if "broker" in roles:
            ib = self.inter_broker_listener_name
            if ib not in {e.listener for e in advertised}:
                raise ConfigError("inter.broker.listener.name must be a listener name defined in "
                                  f"advertised.listeners. The valid options based on currently configured "
                                  f"listeners are {','.join(sorted(e.listener for e in advertised))}",
                                  "inter.broker.listener.name")
        for e in served:
            if e.security_protocol != "PLAINTEXT":
                raise ConfigError(f"kbroker serves only PLAINTEXT listeners for now; listener {e.listener} "
                                  f"uses {e.security_protocol}", "listeners")
        if self.get("advertised.listeners") is not None:
            for e in advertised:
                if e.host in ("0.0.0.0", "::"):
                    raise ConfigError(f"advertised.listeners cannot use the nonroutable meta-address {e.host}. "
                                      "Use a routable IP address.", "advertised.listeners")
        # Port 0 in listeners means "any free port": the server must advertise the bound port.

    # ---- DescribeConfigs -----------------------------------------------------------
    def _layers(self) -> list:
        dyn = lambda m: {k: v for k, v in m.items() if k in ALL_DYNAMIC or k in DYNAMIC_ONLY_KEYS}
        return [(dyn(self.dynamic_broker), ConfigSource.DYNAMIC_BROKER_CONFIG),
                (dyn(self.dynamic_default), ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
                (self.static, ConfigSource.STATIC_BROKER_CONFIG),
                (_default_strings(self.defaults), ConfigSource.DEFAULT_CONFIG)]

    def describe(self, names: Optional[Iterable[str]] = None, *, include_synonyms: bool = True,
                 include_documentation: bool = False, default_resource: bool = False) -> list[ConfigEntry]:
        """Entries for DescribeConfigs on this broker (resource name = node id), or, with
        ``default_resource``, on the cluster-default broker resource (empty name)."""
        layers = self._layers()
        if default_resource:
            pairs: dict[str, Optional[str]] = dict(self.dynamic_default)
        else:
            pairs = {k: v for k, v in self.static.items()}
            for k, v in self.dynamic_default.items():
                pairs.setdefault(k, v)
            for k, v in self.dynamic_broker.items():
                pairs.setdefault(k, v)
            for key in defs.BROKER_CONFIGS:
                if not key.internal:
                    pairs[key.name] = to_kafka_string(self._values[key.name], key.type)
            for k in list(pairs):
                if k in BROKER_KEYS:
                    pairs[k] = to_kafka_string(self._values[k], BROKER_KEYS[k].type)
        wanted = set(names) if names else None
        out = []
        for name, value in pairs.items():
            if wanted is not None and name not in wanted:
                continue
            key = key_for(name)
            sensitive = key is None or key.sensitive
            syns = collect_synonyms(name, broker_synonyms(name), sensitive, layers)
            if default_resource:
                syns = [s for s in syns if s.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG]
            out.append(ConfigEntry(
                name=name, value=None if sensitive else value,
                source=syns[0].source if syns else ConfigSource.DEFAULT_CONFIG,
                read_only=name not in ALL_DYNAMIC, sensitive=sensitive,
                synonyms=syns if include_synonyms else [],
                config_type=DESCRIBE_TYPE_ID.get(key.type, 0) if key else 0,
                documentation=(key.doc if key else None) if include_documentation else None))
        return out


def _unknown_message(unknown: list[str]) -> str:
    parts = []
    for name in unknown:
        hint = suggest(name)
        parts.append(f"'{name}'" + (f" (did you mean '{hint}'?)" if hint else ""))
    return ("Unknown configuration " if len(parts) == 1 else "Unknown configurations ") + ", ".join(parts) \
        + "; this is not a Kafka broker config"


def load_broker_config(path: Union[str, Path, None] = None, overrides: Iterable[str] = (), *,
                       builtin_settings: Optional[Mapping[str, Any]] = None) -> BrokerConfig:
    """server.properties (optional) + ``--override key=value`` pairs -> BrokerConfig."""
    props = load_properties(path) if path is not None else {}
    props.update(parse_overrides(overrides))
    return BrokerConfig(props, builtin_settings=builtin_settings)
