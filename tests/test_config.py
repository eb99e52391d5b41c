"""Tests for kbroker.config: server.properties parsing, validation, synonyms, describe."""

import pytest

from kbroker.config import (BrokerConfig, ConfigError, ConfigSource, describe_topic_configs,
                            effective_topic_config, load_broker_config, parse_properties,
                            update_mode, validate_topic_configs)
from kbroker.config.broker_defs import BROKER_CONFIGS, KBROKER_DEFAULT_OVERRIDES
from kbroker.config.topic_defs import TOPIC_CONFIGS, TOPIC_SYNONYMS

# A KRaft combined-mode server.properties in the shape Kafka 4.x ships, written for these tests.
SERVER_PROPERTIES = r"""
# Node identity and roles -------------------------------------------------
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093

! Listeners
listeners = PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name: PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,\
    SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL

# Threads and sockets
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600

log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1

offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
"""


@pytest.fixture
def props_file(tmp_path):
    p = tmp_path / "server.properties"
    p.write_text(SERVER_PROPERTIES)
    return p


def test_realistic_server_properties(props_file):
    cfg = load_broker_config(props_file)
    assert cfg.node_id == 1 and cfg.broker_id == 1
    assert cfg.process_roles == ["broker", "controller"]
    assert [str(e) for e in cfg.listeners] == ["PLAINTEXT://:9092"]
    assert [str(e) for e in cfg.controller_listeners] == ["CONTROLLER://:9093"]
    assert [str(e) for e in cfg.advertised_listeners] == ["PLAINTEXT://localhost:9092"]
    assert cfg.listener_security_protocol_map["SSL"] == "SSL"
    assert cfg.log_dirs == ["/tmp/kraft-combined-logs"]
    assert cfg.get("num.partitions") == 1
    assert cfg.socket_request_max_bytes == 104857600
    assert cfg.log_retention_ms == 168 * 3600 * 1000
    assert cfg.get("log.retention.check.interval.ms") == 300000
    # the sample file names only share-group settings kbroker lacks
    assert cfg.unimplemented == ["share.coordinator.state.topic.min.isr",
                                 "share.coordinator.state.topic.replication.factor"]
    assert "share.coordinator.state.topic.min.isr" in cfg.warning()


def test_overrides_win(props_file):
    cfg = load_broker_config(props_file, ["num.partitions=6", "log.dirs=/data/a, /data/b"])
    assert cfg.num_partitions == 6
    assert cfg.log_dirs == ["/data/a", "/data/b"]


def test_properties_syntax():
    text = "a=1\n  b : 2\nc 3\n# x=1\n!y=2\nd=line\\\n   continued\ne=tab\\there\\u0041\nf\n"
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3", "d": "linecontinued",
                                      "e": "tab\there" + "A", "f": ""}


def test_typo_key_has_suggestion():
    with pytest.raises(ConfigError) as e:
        BrokerConfig({"node.id": "1", "process.roles": "broker,controller",
                      "controller.listener.names": "CONTROLLER",
                      "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093",
                      "log.retension.hours": "5"})
    assert "log.retension.hours" in str(e.value)
    assert "did you mean 'log.retention.hours'" in str(e.value)
    assert e.value.key == "log.retension.hours"


def minimal(**extra):
    props = {"node.id": "1", "process.roles": "broker,controller",
             "controller.listener.names": "CONTROLLER",
             "listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://:9093"}
    props.update({k.replace("_", "."): v for k, v in extra.items()})
    return props


def test_listener_override_prefix_is_accepted():
    cfg = BrokerConfig(minimal(**{"listener.name.plaintext.max.connections": "5"}))
    assert cfg.listener_override("PLAINTEXT", "max.connections") == 5
    assert cfg.listeners[0].port == 0 and cfg.listeners[0].host == "127.0.0.1"


@pytest.mark.parametrize("key,value,message", [
    ("num.partitions", "abc", "Invalid value abc for configuration num.partitions: Not a number of type INT"),
    ("num.partitions", "0", "Invalid value 0 for configuration num.partitions: Value must be at least 1"),
    ("auto.create.topics.enable", "yes",
     "Invalid value yes for configuration auto.create.topics.enable: Expected value to be either true or false"),
    ("log.cleanup.policy", "remove",
     "Invalid value remove for configuration log.cleanup.policy: String must be one of: compact, delete"),
    ("num.partitions", "99999999999", "Not a number of type INT"),
])
def test_bad_types_and_ranges(key, value, message):
    with pytest.raises(ConfigError) as e:
        BrokerConfig(minimal(**{key: value}))
    assert message in str(e.value)
    assert e.value.key == key


def test_missing_node_id():
    props = minimal()
    del props["node.id"]
    with pytest.raises(ConfigError, match='Missing required configuration "node.id"'):
        BrokerConfig(props)


def test_ssl_listener_rejected_but_controller_ignored():
    props = minimal(listeners="SSL://:9094,CONTROLLER://:9093", **{"inter.broker.listener.name": "SSL"})
    with pytest.raises(ConfigError, match="PLAINTEXT"):
        BrokerConfig(props)


def test_bad_listener_syntax():
    with pytest.raises(ConfigError, match="Unable to parse PLAINTEXT:9092 to a broker endpoint"):
        BrokerConfig(minimal(listeners="PLAINTEXT:9092,CONTROLLER://:9093"))


def test_retention_precedence():
    assert BrokerConfig(minimal()).log_retention_ms == 7 * 24 * 3600 * 1000
    assert BrokerConfig(minimal(**{"log.retention.hours": "1", "log.retention.minutes": "2"})).log_retention_ms == 120000
    assert BrokerConfig(minimal(**{"log.retention.minutes": "2", "log.retention.ms": "5"})).log_retention_ms == 5
    assert BrokerConfig(minimal(**{"log.retention.ms": "-1"})).log_retention_ms == -1


def test_kbroker_defaults_and_hook():
    cfg = BrokerConfig(minimal(), builtin_settings={"log.dir": "/var/lib/kbroker"})
    for name, value in KBROKER_DEFAULT_OVERRIDES.items():
        assert cfg.get(name) == value
    assert cfg.log_dirs == ["/var/lib/kbroker"]
    # reported as Kafka reports the replication factor its sample server.properties sets
    entry = cfg.describe(["offsets.topic.replication.factor"])[0]
    assert entry.value == "1" and entry.source == ConfigSource.STATIC_BROKER_CONFIG
    assert [(s.value, s.source) for s in entry.synonyms] == [
        ("1", ConfigSource.STATIC_BROKER_CONFIG), ("3", ConfigSource.DEFAULT_CONFIG)]
    assert cfg.warning() is None


def test_tables_are_consistent():
    names = [k.name for k in BROKER_CONFIGS]
    assert len(names) == len(set(names))
    for key in BROKER_CONFIGS + TOPIC_CONFIGS:
        assert key.doc
        if key.default is not None and not key.required:
            key.parsed_default()
    assert {"process.roles", "controller.quorum.voters", "controller.listener.names",
            "listener.security.protocol.map", "inter.broker.listener.name",
            "num.network.threads", "log.retention.check.interval.ms"} <= set(names)
    assert set(TOPIC_SYNONYMS) <= {k.name for k in TOPIC_CONFIGS}
    assert update_mode("log.retention.ms") == "cluster-wide"
    assert update_mode("listeners") == "per-broker"
    assert update_mode("node.id") == "read-only"


def test_broker_describe_sources_and_passwords():
    cfg = BrokerConfig(minimal(**{"ssl.keystore.password": "secret", "log.retention.hours": "24"}),
                       dynamic_broker={"log.retention.ms": "1000"})
    entries = {e.name: e for e in cfg.describe()}
    pw = entries["ssl.keystore.password"]
    assert pw.sensitive and pw.value is None and pw.synonyms[0].value is None
    ret = entries["log.retention.ms"]
    assert ret.value == "1000" and ret.source == ConfigSource.DYNAMIC_BROKER_CONFIG
    assert [(s.name, s.source) for s in ret.synonyms] == [
        ("log.retention.ms", ConfigSource.DYNAMIC_BROKER_CONFIG),
        ("log.retention.hours", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.hours", ConfigSource.DEFAULT_CONFIG)]
    assert not ret.read_only and entries["node.id"].read_only
    assert entries["num.partitions"].source == ConfigSource.DEFAULT_CONFIG
    assert cfg.log_retention_ms == 1000


def test_topic_resolution_and_synonyms():
    cfg = BrokerConfig(minimal(**{"log.retention.ms": "3600000", "log.segment.bytes": "2097152"}))
    eff = effective_topic_config(cfg, {"cleanup.policy": "compact"})
    assert eff["retention.ms"] == 3600000 and eff["segment.bytes"] == 2097152
    assert eff["cleanup.policy"] == ["compact"] and eff["max.message.bytes"] == 1048588
    entries = {e.name: e for e in describe_topic_configs(cfg, {"cleanup.policy": "compact"})}
    cp = entries["cleanup.policy"]
    assert cp.source == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert [(s.name, s.value, s.source) for s in cp.synonyms] == [
        ("cleanup.policy", "compact", ConfigSource.DYNAMIC_TOPIC_CONFIG),
        ("log.cleanup.policy", "delete", ConfigSource.DEFAULT_CONFIG)]
    rm = entries["retention.ms"]
    assert rm.value == "3600000" and rm.source == ConfigSource.STATIC_BROKER_CONFIG
    assert [(s.name, s.source) for s in rm.synonyms] == [
        ("log.retention.ms", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.hours", ConfigSource.DEFAULT_CONFIG)]
    assert entries["min.cleanable.dirty.ratio"].value == "0.5"
    assert "internal.segment.bytes" not in entries


def test_topic_retention_from_hours_only_reports_default_source():
    # Kafka drops synonyms that precede the primary broker name: with only
    # log.retention.hours set, retention.ms is reported as DEFAULT_CONFIG.
    cfg = BrokerConfig(minimal(**{"log.retention.hours": "1"}))
    rm = describe_topic_configs(cfg, {}, ["retention.ms"])[0]
    assert rm.value == "3600000" and rm.source == ConfigSource.DEFAULT_CONFIG and rm.synonyms == []


@pytest.mark.parametrize("configs,message", [
    ({"retention.ms": "abc"}, "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    ({"segment.bytes": "100"}, "Invalid value 100 for configuration segment.bytes: Value must be at least 1048576"),
    ({"retension.ms": "1"}, "Unknown topic config name: retension.ms"),
    ({"message.downconversion.enable": "true"}, "Unknown topic config name: message.downconversion.enable"),
    ({"cleanup.policy": "compact,bogus"},
     "Invalid value bogus for configuration cleanup.policy: String must be one of: compact, delete"),
    ({"min.cleanable.dirty.ratio": "2"},
     "Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
    ({"compression.type": "brotli"}, "Invalid value brotli for configuration compression.type: "
                                     "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
    ({"compression.gzip.level": "0"},
     "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1"),
    ({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"},
     "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"),
    ({"retention.ms": None}, "Null value not supported for topic configs: retention.ms"),
    ({"leader.replication.throttled.replicas": "x"}, "leader.replication.throttled.replicas must be the literal '*'"),
    ({"remote.storage.enable": "true"}, "Tiered Storage functionality is disabled in the broker."),
])
def test_topic_validation_messages(configs, message):
    assert message in validate_topic_configs(configs, BrokerConfig(minimal()))


def test_topic_validation_accepts_good_values():
    assert validate_topic_configs({"retention.ms": "-1", "cleanup.policy": "compact,delete",
                                   "min.insync.replicas": " 2 ", "leader.replication.throttled.replicas": "0:1,1:1",
                                   "message.timestamp.type": "LogAppendTime"}) is None
