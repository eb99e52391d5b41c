"""Topic and config administration through real admin clients: confluent-kafka (librdkafka),
kafka-python and aiokafka. Each change is observed by a client, and again after a broker restart."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic)


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _wait(futures: dict, timeout: float = 20) -> dict:
    return {key: future.result(timeout) for key, future in futures.items()}


def _error_code(future) -> int:
    with pytest.raises(KafkaException) as info:
        future.result(20)
    return info.value.args[0].code()


def _produce(bootstrap: str, topic: str, count: int, partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(count):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=partition)  # keyed: some topics are compacted
    assert producer.flush(20) == 0


def _topic_configs(admin: AdminClient, topic: str) -> dict:
    resource = ConfigResource("topic", topic)
    return admin.describe_configs([resource])[resource].result(20)


# ------------------------------------------------------------------------------ confluent-kafka

def test_confluent_admin_topic_lifecycle_survives_restart(kbroker_process):
    broker = kbroker_process()
    admin = _admin(broker.bootstrap)

    # validate_only creates nothing
    _wait(admin.create_topics([NewTopic("orders", 3, 1, config={"retention.ms": "3600000"})], validate_only=True))
    assert "orders" not in admin.list_topics(timeout=10).topics

    _wait(admin.create_topics([NewTopic("orders", 3, 1, config={"retention.ms": "3600000",
                                                                 "cleanup.policy": "compact"})]))
    metadata = admin.list_topics(timeout=10)
    assert len(metadata.topics["orders"].partitions) == 3
    configs = _topic_configs(admin, "orders")
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    # incremental: SET one, DELETE another, APPEND to a list
    resource = ConfigResource("topic", "orders", incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND),
        ConfigEntry("max.message.bytes", "200000", incremental_operation=AlterConfigOpType.SET)])
    _wait(admin.incremental_alter_configs([resource]))
    resource = ConfigResource("topic", "orders", incremental_configs=[
        ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE)])
    _wait(admin.incremental_alter_configs([resource]))
    configs = _topic_configs(admin, "orders")
    assert configs["retention.ms"].value == "7200000"
    assert configs["cleanup.policy"].value == "compact,delete"
    assert configs["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    _wait(admin.create_partitions([NewPartitions("orders", 5)]))
    topic_id = str(admin.describe_topics(TopicCollection(["orders"]))["orders"].result(20).topic_id)
    assert len(admin.list_topics(timeout=10).topics["orders"].partitions) == 5

    broker.restart()
    admin = _admin(broker.bootstrap)
    description = admin.describe_topics(TopicCollection(["orders"]))["orders"].result(20)
    assert len(description.partitions) == 5
    assert str(description.topic_id) == topic_id
    configs = _topic_configs(admin, "orders")
    assert configs["retention.ms"].value == "7200000"
    assert configs["cleanup.policy"].value == "compact,delete"

    _wait(admin.delete_topics(["orders"]))
    assert "orders" not in admin.list_topics(timeout=10).topics
    broker.restart()
    assert "orders" not in _admin(broker.bootstrap).list_topics(timeout=10).topics


def test_confluent_admin_delete_records_moves_the_log_start(kbroker):
    admin = _admin(kbroker.bootstrap)
    _wait(admin.create_topics([NewTopic("events", 1, 1)]))
    _produce(kbroker.bootstrap, "events", 10)
    result = admin.delete_records([TopicPartition("events", 0, 4)])
    deleted = list(result.values())[0].result(20)
    assert deleted.low_watermark == 4

    consumer = Consumer({"bootstrap.servers": kbroker.bootstrap, "group.id": "g", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition("events", 0), timeout=10)
        assert (low, high) == (4, 10)
    finally:
        consumer.close()

    beyond = admin.delete_records([TopicPartition("events", 0, 11)])
    assert _error_code(list(beyond.values())[0]) == KafkaError.OFFSET_OUT_OF_RANGE


def test_confluent_admin_errors(kbroker):
    admin = _admin(kbroker.bootstrap)
    futures = admin.create_topics([
        NewTopic("bad name", 1, 1),
        NewTopic("unknown-config", 1, 1, config={"no.such.config": "1"}),
        NewTopic("wrong-type", 1, 1, config={"retention.ms": "soon"}),
        NewTopic("too-replicated", 1, 3),
    ])
    assert _error_code(futures["bad name"]) == KafkaError.TOPIC_EXCEPTION
    assert _error_code(futures["unknown-config"]) == KafkaError.INVALID_CONFIG
    assert _error_code(futures["wrong-type"]) == KafkaError.INVALID_CONFIG
    assert _error_code(futures["too-replicated"]) == KafkaError.INVALID_REPLICATION_FACTOR

    _wait(admin.create_topics([NewTopic("fixed", 2, 1)]))
    assert _error_code(admin.create_topics([NewTopic("fixed", 2, 1)])["fixed"]) == KafkaError.TOPIC_ALREADY_EXISTS
    assert _error_code(admin.create_partitions([NewPartitions("fixed", 1)])["fixed"]) == KafkaError.INVALID_PARTITIONS
    assert _error_code(admin.create_partitions([NewPartitions("fixed", 2)])["fixed"]) == KafkaError.INVALID_PARTITIONS
    assert _error_code(admin.delete_topics(["missing"])["missing"]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    resource = ConfigResource("topic", "fixed", incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND)])
    assert _error_code(admin.incremental_alter_configs([resource])[resource]) == KafkaError.INVALID_CONFIG


def test_confluent_admin_broker_configs_and_cluster(kbroker_process):
    broker = kbroker_process()
    admin = _admin(broker.bootstrap)
    cluster = admin.describe_cluster().result(20)
    assert cluster.controller.id == 1 and [n.id for n in cluster.nodes] == [1]

    node = ConfigResource("broker", "1")
    configs = admin.describe_configs([node])[node].result(20)
    assert configs["log.retention.hours"].value == "168"
    assert configs["log.retention.hours"].is_read_only
    assert configs["log.dirs"].source == ConfigSource.STATIC_BROKER_CONFIG.value

    # a dynamic config on this broker (librdkafka cannot name the cluster-default resource "")
    default = ConfigResource("broker", "1", incremental_configs=[
        ConfigEntry("log.retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])
    _wait(admin.incremental_alter_configs([default]))
    read_only = ConfigResource("broker", "1", incremental_configs=[
        ConfigEntry("log.dirs", "/elsewhere", incremental_operation=AlterConfigOpType.SET)])
    assert _error_code(admin.incremental_alter_configs([read_only])[read_only]) == KafkaError.INVALID_REQUEST

    _wait(admin.create_topics([NewTopic("inherits", 1, 1)]))
    assert _topic_configs(admin, "inherits")["retention.ms"].value == "3600000"

    broker.restart()
    admin = _admin(broker.bootstrap)
    configs = admin.describe_configs([node])[node].result(20)
    assert configs["log.retention.ms"].value == "3600000"
    assert configs["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert _topic_configs(admin, "inherits")["retention.ms"].value == "3600000"


# --------------------------------------------------------------------------------- kafka-python

def test_kafka_python_admin(kbroker_process):
    from kafka.admin import AlterConfigOp, ConfigResource as KConfigResource, ConfigResourceType, KafkaAdminClient
    from kafka.admin import NewPartitions as KNewPartitions, NewTopic as KNewTopic
    from kafka.errors import InvalidConfigurationError, InvalidPartitionsError, InvalidTopicError
    from kafka.structs import TopicPartition as KTopicPartition

    broker = kbroker_process()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        result = admin.create_topics([KNewTopic("kp", 2, 1, topic_configs={"retention.ms": "12345"})],
                                     validate_only=True)
        assert result["topics"][0]["error_code"] == 0
        assert "kp" not in admin.list_topics()
        admin.create_topics([KNewTopic("kp", 2, 1, topic_configs={"retention.ms": "12345"})])
        assert "kp" in admin.list_topics()

        admin.alter_configs([KConfigResource(ConfigResourceType.TOPIC, "kp", configs={
            "retention.ms": (AlterConfigOp.SET, "999"), "cleanup.policy": (AlterConfigOp.APPEND, "compact")})],
            incremental=True)
        modified = admin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "kp")])["topic"]["kp"]
        assert modified["retention.ms"]["value"] == "999"
        assert modified["cleanup.policy"]["value"] == "delete,compact"
        # legacy AlterConfigs replaces the whole set; kafka-python re-sends the other overrides itself
        admin.alter_configs([KConfigResource(ConfigResourceType.TOPIC, "kp", configs={"retention.ms": "888"})],
                            incremental=False)
        modified = admin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "kp")])["topic"]["kp"]
        assert modified["retention.ms"]["value"] == "888"
        assert modified["cleanup.policy"]["value"] == "delete,compact"

        admin.create_partitions({"kp": KNewPartitions(4)})
        assert len(admin.describe_topics(["kp"])[0]["partitions"]) == 4
        with pytest.raises(InvalidPartitionsError):
            admin.create_partitions({"kp": KNewPartitions(3)})
        with pytest.raises(InvalidTopicError):
            admin.create_topics([KNewTopic("no/slash", 1, 1)])
        with pytest.raises(InvalidConfigurationError):
            admin.create_topics([KNewTopic("typed", 1, 1, topic_configs={"segment.bytes": "big"})])

        _produce(broker.bootstrap, "kp", 5, partition=1)
        low = admin.delete_records({KTopicPartition("kp", 1): 3})
        assert list(low.values())[0]["low_watermark"] == 3
    finally:
        admin.close()

    broker.restart()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert len(admin.describe_topics(["kp"])[0]["partitions"]) == 4
        modified = admin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "kp")])["topic"]["kp"]
        assert modified["retention.ms"]["value"] == "888"
        admin.delete_topics(["kp"])
        assert "kp" not in admin.list_topics()
    finally:
        admin.close()


# ------------------------------------------------------------------------------------- aiokafka

def test_aiokafka_admin(kbroker):
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions as ANewPartitions, NewTopic as ANewTopic
    from aiokafka.admin import RecordsToDelete
    from aiokafka.admin.config_resource import ConfigResource as AConfigResource, ConfigResourceType as AType
    from aiokafka.structs import TopicPartition as ATopicPartition


    async def scenario():
        admin = AIOKafkaAdminClient(bootstrap_servers=kbroker.bootstrap)
        await admin.start()
        try:
            response = await admin.create_topics([ANewTopic("aio", 2, 1, topic_configs={"retention.ms": "60000"})])
            assert [t[1] for t in response.topic_errors] == [0]
            assert "aio" in await admin.list_topics()
            described = await admin.describe_configs([AConfigResource(AType.TOPIC, "aio")])
            entries = {c[0]: c[1] for c in described[0].resources[0][4]}
            assert entries["retention.ms"] == "60000"
            await admin.alter_configs([AConfigResource(AType.TOPIC, "aio", {"retention.ms": "120000"})])
            described = await admin.describe_configs([AConfigResource(AType.TOPIC, "aio", {"retention.ms": None})])
            assert [(c[0], c[1]) for c in described[0].resources[0][4]] == [("retention.ms", "120000")]
            await admin.create_partitions({"aio": ANewPartitions(3)})
            topics = await admin.describe_topics(["aio"])
            assert len(topics[0]["partitions"]) == 3
            await asyncio.to_thread(_produce, kbroker.bootstrap, "aio", 6)
            lows = await admin.delete_records({ATopicPartition("aio", 0): RecordsToDelete(before_offset=2)})
            assert lows[ATopicPartition("aio", 0)] == 2
            await admin.delete_topics(["aio"])
            assert "aio" not in await admin.list_topics()
        finally:
            await admin.close()

    asyncio.run(scenario())
