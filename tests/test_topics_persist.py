"""Topics outlive the broker process: after a restart the same names, ids and partition counts are there."""

from __future__ import annotations

from kbroker.protocol.messages import MetadataRequest
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata


def describe(bootstrap: str) -> dict:
    with WireClient(bootstrap) as client:
        response = client.request(MetadataRequest(topics=None), 12)
    return {t.name: (t.topic_id, len(t.partitions)) for t in response.topics}, response.cluster_id


def test_topics_and_cluster_id_survive_a_restart(kbroker_process):
    broker = kbroker_process(**{"num.partitions": 3})
    create_topics_by_metadata(broker.bootstrap, "orders", "audit")
    before = describe(broker.bootstrap)
    assert before[0]["orders"][1] == 3
    broker.restart()
    assert describe(broker.bootstrap) == before


def test_auto_creation_can_be_disabled(kbroker_factory):
    broker = kbroker_factory(**{"auto.create.topics.enable": "false"})
    with WireClient(broker.bootstrap) as client:
        response = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="nope")]), 12)
    assert response.topics[0].error_code == 3  # UNKNOWN_TOPIC_OR_PARTITION


def test_invalid_topic_names_are_never_created(kbroker):
    with WireClient(kbroker.bootstrap) as client:
        response = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=n)
                                                          for n in ("bad name", "..", "x" * 250)]), 12)
        assert [t.error_code for t in response.topics] == [17, 17, 17]
        assert client.request(MetadataRequest(topics=None), 12).topics == []
