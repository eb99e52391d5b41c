"""An operator looks at and changes the cluster's feature flags with Kafka's own `kafka-features`, and
clients read them from ApiVersions, as against Kafka 4.4 (KIP-584)."""

from __future__ import annotations

import shutil

import pytest

from compat.kafka import oracle
from kbroker.protocol.errors import ErrorCode
from kbroker.protocol.messages import ApiVersionsRequest, UpdateFeaturesRequest
from tests.kafka_wire import WireClient
from tests.replication_story import cluster_factory, wait_until  # noqa: F401

NAMED = dict(client_software_name="t", client_software_version="1")


def features(bootstrap: str, version: int = 4) -> tuple[dict, dict, int]:
    with WireClient(bootstrap) as client:
        r = client.request(ApiVersionsRequest(**NAMED), version)
    return ({f.name: (f.min_version, f.max_version) for f in r.supported_features},
            {f.name: f.max_version_level for f in r.finalized_features}, r.finalized_features_epoch)


def update(bootstrap: str, feature: str, level: int, upgrade_type: int = 1, version: int = 1, validate_only=False):
    with WireClient(bootstrap) as client:
        return client.request(UpdateFeaturesRequest(feature_updates=[UpdateFeaturesRequest.FeatureUpdateKey(
            feature=feature, max_version_level=level, upgrade_type=upgrade_type)], validate_only=validate_only),
            version)


def test_a_new_broker_finalizes_transactions_v2_and_advertises_only_what_it_serves(kbroker):
    supported, finalized, _ = features(kbroker.bootstrap)
    assert supported == {"group.version": (0, 1), "kraft.version": (0, 0), "metadata.version": (7, 25),
                         "transaction.version": (0, 2)}
    # group.version 1: the consumer group protocol (KIP-848) is served; no share, streams or ELR features
    assert finalized == {"group.version": 1, "metadata.version": 25, "transaction.version": 2}
    # ApiVersions v3 leaves out supported features whose minimum is 0, as Kafka does (KAFKA-17011)
    assert features(kbroker.bootstrap, version=3)[0] == {"metadata.version": (7, 25)}


def test_a_downgrade_is_kept_across_a_restart(kbroker_factory):
    broker = kbroker_factory()
    refused = update(broker.bootstrap, "transaction.version", 1)  # a lower level needs a downgrade type
    assert refused.error_code == ErrorCode.INVALID_UPDATE_VERSION
    assert refused.error_message.endswith("Can't downgrade the version of this feature without setting the "
                                          "upgrade type to either safe or unsafe downgrade.")
    assert update(broker.bootstrap, "transaction.version", 1, 2, validate_only=True).results[0].error_code == 0
    assert features(broker.bootstrap)[1]["transaction.version"] == 2  # validate_only changed nothing
    done = update(broker.bootstrap, "transaction.version", 1, upgrade_type=2, version=2)
    assert (done.error_code, done.results) == (0, [])  # v2 answers only at the top
    _, finalized, epoch = features(broker.bootstrap)
    assert finalized["transaction.version"] == 1 and epoch == 1
    broker.restart()
    assert features(broker.bootstrap)[1:] == (finalized, epoch)


def test_unknown_features_and_out_of_range_levels_fail_the_whole_request(kbroker):
    unknown = update(kbroker.bootstrap, "nope.version", 1)
    assert (unknown.error_code, unknown.error_message) == (
        ErrorCode.INVALID_UPDATE_VERSION, "The update failed for all features since the following feature had an "
        "error: Invalid update version 1 for feature nope.version. Local controller 1 does not support this feature.")
    assert "only supports versions 0-2" in update(kbroker.bootstrap, "transaction.version", 3).error_message
    assert "only supports versions 0-1" in update(kbroker.bootstrap, "group.version", 2).error_message
    assert "share.version. Local controller 1 does not support" in update(kbroker.bootstrap, "share.version", 1).error_message


def test_api_versions_v5_checks_which_cluster_the_client_means(kbroker):
    cluster_id = kbroker.broker.node.cluster_id
    with WireClient(kbroker.bootstrap) as client:
        ours = client.request(ApiVersionsRequest(**NAMED, cluster_id=cluster_id, node_id=1), 5)
        other = client.request(ApiVersionsRequest(**NAMED, cluster_id="another-cluster", node_id=1), 5)
        other_node = client.request(ApiVersionsRequest(**NAMED, cluster_id=cluster_id, node_id=2), 5)
        half = client.request(ApiVersionsRequest(**NAMED, cluster_id=None, node_id=1), 5)
    assert ours.error_code == 0 and ours.api_keys
    assert other.error_code == other_node.error_code == ErrorCode.REBOOTSTRAP_REQUIRED
    assert half.error_code == ErrorCode.INVALID_REQUEST and half.api_keys == []


@pytest.fixture(scope="module")
def kafka_features():
    if shutil.which("java") is None and not oracle.os.environ.get("JAVA_HOME"):
        pytest.skip("no java")
    try:
        oracle.install()
    except Exception as exc:  # no Maven, no network, no cached jars
        pytest.skip(f"Kafka jars not available: {exc}")

    def run(bootstrap, *args):
        result = oracle.run_tool("kafka-features", "--bootstrap-server", bootstrap, *args, timeout=120)
        return result.returncode, result.stdout + result.stderr
    return run


def test_kafka_features_describe_downgrade_upgrade(kbroker_factory, kafka_features):
    broker = kbroker_factory()
    code, out = kafka_features(broker.bootstrap, "describe")
    assert code == 0, out
    assert _columns(out, "transaction.version") == ["0", "2", "2"], out
    assert _columns(out, "metadata.version") == ["3.3-IV3", "4.0-IV3", "4.0-IV3"], out
    code, out = kafka_features(broker.bootstrap, "downgrade", "--feature", "transaction.version=1")
    assert code == 0 and "transaction.version was downgraded to 1." in out, out
    broker.restart()
    assert _columns(kafka_features(broker.bootstrap, "describe")[1], "transaction.version") == ["0", "2", "1"]
    code, out = kafka_features(broker.bootstrap, "upgrade", "--feature", "transaction.version=2")
    assert code == 0 and "transaction.version was upgraded to 2." in out, out
    code, out = kafka_features(broker.bootstrap, "downgrade", "--metadata", "3.9")
    assert code != 0 and "Refusing to perform the requested downgrade" in out, out


def _columns(describe_output: str, feature: str) -> list[str]:
    """SupportedMinVersion, SupportedMaxVersion, FinalizedVersionLevel of one feature's line."""
    line = next(line for line in describe_output.splitlines() if line.startswith(f"Feature: {feature} "))
    words = line.split()
    return [words[words.index(key) + 1] for key in ("SupportedMinVersion:", "SupportedMaxVersion:",
                                                      "FinalizedVersionLevel:")]


def test_group_version_is_offered_only_where_consumer_group_heartbeat_is_served():
    from kbroker.handlers.features import supported_features
    from kbroker.handlers.registry import Registry, Served

    classic_only = Registry(served=[Served(11, "groups", 0, 9)])
    with_kip848 = Registry(served=[Served(11, "groups", 0, 9), Served(68, "consumer_groups", 0, 1)])
    assert supported_features(classic_only)["group.version"] == (0, 0)
    assert supported_features(with_kip848)["group.version"] == (0, 1)


def test_a_cluster_finalizes_one_set_of_levels_whichever_broker_is_asked(cluster_factory):
    cluster = cluster_factory(3)
    first, second, third = cluster.bootstrap.split(",")
    assert update(first, "transaction.version", 1, upgrade_type=2).error_code == ErrorCode.NONE  # safe downgrade
    wait_until(lambda: all(features(b)[1]["transaction.version"] == 1 for b in (first, second, third)),
               what="every broker to finalize transaction.version 1")
    epochs = {features(b)[2] for b in (first, second, third)}
    assert len(epochs) == 1 and epochs != {0}
    assert update(third, "group.version", 0, upgrade_type=2).error_code == ErrorCode.NONE
    wait_until(lambda: all(features(b)[1].get("group.version") is None for b in (first, second, third)),
               what="every broker to turn group.version off")
    assert features(second)[1]["transaction.version"] == 1  # the earlier change stays
    # a broker that was down while they changed comes back with the cluster's levels
    cluster.stop_broker(2)
    assert update(first, "transaction.version", 2).error_code == ErrorCode.NONE
    cluster.start_broker(2)
    wait_until(lambda: features(second)[1]["transaction.version"] == 2,
               what="the restarted broker to finalize the cluster's transaction.version")


def _heartbeat(bootstrap: str):
    from kbroker.protocol.messages import ConsumerGroupHeartbeatRequest
    with WireClient(bootstrap) as client:
        return client.request(ConsumerGroupHeartbeatRequest(
            group_id="g", member_id="m-1", member_epoch=0, rebalance_timeout_ms=30000,
            subscribed_topic_names=["t"], topic_partitions=[]), 1)


def test_the_consumer_group_protocol_is_refused_while_group_version_is_0(kbroker):
    """Kafka's isConsumerGroupProtocolEnabled: a downgrade of group.version to 0 turns KIP-848 off."""
    from kbroker.protocol.messages import ConsumerGroupDescribeRequest
    assert update(kbroker.bootstrap, "group.version", 0, upgrade_type=2).results[0].error_code == 0
    assert _heartbeat(kbroker.bootstrap).error_code == ErrorCode.UNSUPPORTED_VERSION
    with WireClient(kbroker.bootstrap) as client:
        described = client.request(ConsumerGroupDescribeRequest(group_ids=["g"]), 1)
    assert [(g.group_id, g.error_code) for g in described.groups] == [("g", ErrorCode.UNSUPPORTED_VERSION)]
    assert update(kbroker.bootstrap, "group.version", 1).results[0].error_code == 0
    assert _heartbeat(kbroker.bootstrap).error_code == ErrorCode.NONE
