"""Kafka's own CLI (kafka-topics, kafka-configs from Apache Kafka 4.4, run as Java) against kbroker.
Skipped where Java or the cached Maven jars are not available (`python -m compat.kafka install`)."""

from __future__ import annotations

import shutil

import pytest

from compat.kafka import oracle


@pytest.fixture(scope="module")
def tools():
    if shutil.which("java") is None and not oracle.os.environ.get("JAVA_HOME"):
        pytest.skip("no java")
    try:
        oracle.install()
    except Exception as exc:  # no Maven, no network, no cached jars
        pytest.skip(f"Kafka jars not available: {exc}")

    def run(tool, *args):
        result = oracle.run_tool(tool, *args, timeout=120)
        return result.returncode, result.stdout + result.stderr
    return run


def test_kafka_topics_and_kafka_configs(kbroker, tools):
    b = ("--bootstrap-server", kbroker.bootstrap)
    code, out = tools("kafka-topics", *b, "--create", "--topic", "cli", "--partitions", "3",
                      "--config", "retention.ms=1000")
    assert code == 0 and "Created topic cli." in out, out
    code, out = tools("kafka-topics", *b, "--describe", "--topic", "cli")
    assert code == 0 and "PartitionCount: 3" in out and "Configs: min.insync.replicas=1,retention.ms=1000" in out, out
    assert out.count("Leader: 1\tReplicas: 1\tIsr: 1") == 3, out
    code, out = tools("kafka-topics", *b, "--alter", "--topic", "cli", "--partitions", "5")
    assert code == 0, out
    code, out = tools("kafka-topics", *b, "--alter", "--topic", "cli", "--partitions", "2")
    assert "InvalidPartitionsException: The topic cli currently has 5 partition(s); 2 would not be an increase." in out
    code, out = tools("kafka-topics", *b, "--create", "--topic", "bad!name")
    assert code != 0 and "InvalidTopicException" in out, out

    code, out = tools("kafka-configs", *b, "--entity-type", "topics", "--entity-name", "cli", "--alter",
                      "--add-config", "retention.ms=5000,cleanup.policy=[compact,delete]")
    assert code == 0 and "Completed updating config for topic cli." in out, out
    code, out = tools("kafka-configs", *b, "--entity-type", "topics", "--entity-name", "cli", "--describe")
    assert "cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact," \
           "delete, DEFAULT_CONFIG:log.cleanup.policy=delete}" in out, out
    assert "retention.ms=5000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=5000}" in out, out
    code, out = tools("kafka-configs", *b, "--entity-type", "brokers", "--entity-default", "--alter",
                      "--add-config", "log.cleaner.threads=2")
    assert code == 0 and "Completed updating default config for brokers in the cluster." in out, out
    code, out = tools("kafka-configs", *b, "--entity-type", "brokers", "--entity-name", "1", "--describe", "--all")
    assert "log.cleaner.threads=2 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleaner.threads=2, " \
           "DEFAULT_CONFIG:log.cleaner.threads=1}" in out, out

    code, out = tools("kafka-topics", *b, "--delete", "--topic", "cli")
    assert code == 0, out
    code, out = tools("kafka-topics", *b, "--list")
    assert code == 0 and "cli" not in out.split(), out
