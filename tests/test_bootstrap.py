"""A user points their usual Kafka clients at kbroker: they connect, negotiate versions, and see the
broker, the cluster and its topics."""

from __future__ import annotations

import asyncio
import json
import subprocess

from kbroker.protocol.errors import ErrorCode
from kbroker.protocol.messages import ApiVersionsRequest, MetadataRequest
from tests.kafka_wire import WireClient


def create_topics_by_metadata(bootstrap: str, *names: str) -> None:
    """Auto-creation through Metadata, as an old producer would trigger it."""
    with WireClient(bootstrap) as client:
        response = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=n) for n in names],
                                                  allow_auto_topic_creation=True), version=9)
    assert all(t.error_code == 0 for t in response.topics), response


def test_api_versions_advertises_what_is_served(kbroker):
    with WireClient(kbroker.bootstrap) as client:
        for version in range(0, 6):
            response = client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), version)
            assert response.error_code == 0
            served = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
            assert served[18] == (0, 5) and served[3] == (0, 13)
            assert served == {h.api_key: (h.advertised_min_version if h.advertised_min_version is not None
                                          else h.min_version, h.max_version)
                              for h in kbroker.broker.registry.handlers()}


def test_too_new_api_versions_request_gets_a_v0_unsupported_version_answer(kbroker):
    with WireClient(kbroker.bootstrap) as client:
        client.correlation_id = 0
        # ApiVersions v9 does not exist; Kafka answers in v0 with error 35 and its ranges.
        from kbroker.protocol.codec import encode_request
        frame = bytearray(encode_request(77, 4, ApiVersionsRequest()))
        frame[6:8] = (9).to_bytes(2, "big")
        client.send_raw(bytes(frame))
        from kbroker.protocol.codec import decode_response
        correlation_id, response = decode_response(client.read_frame(), 18, 0)
        assert correlation_id == 77
        assert response.error_code == ErrorCode.UNSUPPORTED_VERSION
        assert any(k.api_key == 18 and k.max_version == 5 for k in response.api_keys)


def test_kcat_lists_the_broker_and_its_topics(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "orders", "payments")
    result = subprocess.run(["kcat", "-b", kbroker.bootstrap, "-L", "-J"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert [b["id"] for b in listing["brokers"]] == [1]
    assert {t["topic"] for t in listing["topics"]} >= {"orders", "payments"}


def test_confluent_kafka_list_topics(kbroker):
    from confluent_kafka.admin import AdminClient

    create_topics_by_metadata(kbroker.bootstrap, "orders")
    metadata = AdminClient({"bootstrap.servers": kbroker.bootstrap}).list_topics(timeout=10)
    assert list(metadata.brokers) == [1]
    assert metadata.cluster_id == kbroker.broker.cluster_id
    assert metadata.controller_id == 1
    assert len(metadata.topics["orders"].partitions) == 1


def test_kafka_python_bootstraps_and_checks_the_version(kbroker):
    from kafka import KafkaConsumer

    create_topics_by_metadata(kbroker.bootstrap, "orders")
    consumer = KafkaConsumer(bootstrap_servers=kbroker.bootstrap)
    try:
        # kafka-python infers the broker's version from the APIs and versions advertised
        assert consumer.config["api_version"] >= (4, 0)
        assert "orders" in consumer.topics()
        assert consumer.partitions_for_topic("orders") == {0}
    finally:
        consumer.close()


def test_aiokafka_bootstraps(kbroker):
    from aiokafka import AIOKafkaClient

    create_topics_by_metadata(kbroker.bootstrap, "orders")

    async def bootstrap():
        client = AIOKafkaClient(bootstrap_servers=kbroker.bootstrap)
        await client.bootstrap()
        try:
            cluster = await client.fetch_all_metadata()
            return [b.nodeId for b in cluster.brokers()], cluster.topics()
        finally:
            await client.close()

    brokers, topics = asyncio.run(bootstrap())
    assert brokers == [1] and "orders" in topics
