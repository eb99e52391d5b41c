"""A request for more partitions than Kafka's controller takes in one operation is refused whole with
POLICY_VIOLATION, as Kafka refuses it, and nothing of it is created (issue 14, defect 4: such a
request used to run the broker out of file descriptors). The exact rules are checked against Apache
Kafka by the differential scenario create-topics-over-the-controller-bounds."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


def _error_of(future) -> KafkaError:
    with pytest.raises(KafkaException) as raised:
        future.result(timeout=30)
    return raised.value.args[0]


def test_creating_100000_partitions_is_a_policy_violation(kbroker):
    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    futures = admin.create_topics([NewTopic("huge", 100_000, 1), NewTopic("small", 1, 1)])
    for name in ("huge", "small"):
        error = _error_of(futures[name])
        assert error.code() == KafkaError.POLICY_VIOLATION
        assert error.str() == "Excessively large number of partitions per request."
    assert not {"huge", "small"} & set(admin.list_topics(timeout=10).topics)


def test_topics_within_the_bound_are_created_and_an_oversized_increase_is_refused(kbroker):
    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic("orders", 2, 1)])["orders"].result(timeout=30)
    error = _error_of(admin.create_partitions([NewPartitions("orders", 10_003)])["orders"])
    assert error.code() == KafkaError.POLICY_VIOLATION
    assert error.str() == "Excessively large number of additional partitions per request."
    assert len(admin.list_topics(timeout=10).topics["orders"].partitions) == 2
    admin.create_partitions([NewPartitions("orders", 4)])["orders"].result(timeout=30)
    assert len(admin.list_topics(timeout=10).topics["orders"].partitions) == 4
