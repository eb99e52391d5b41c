"""Differential scenarios for the versions Kafka 4.4 added to the APIs kbroker serves: the newest
versions themselves (ApiVersions), topic ids in Produce v13 and OffsetCommit/OffsetFetch v10,
Fetch v18, Metadata v13, ListOffsets v11, ApiVersions v5's cluster check, DescribeCluster v2,
AlterPartitionReassignments v1, DescribeGroups v6 / DeleteGroups v3, ListTransactions v2,
ListConfigResources v0-1 and UpdateFeatures (validate only: the oracle's features are left as they
are). Registered into scenarios.SCENARIOS when imported (compat/differential/__main__.py does).
"""
from __future__ import annotations

import time
import uuid

from kbroker.handlers.served import SERVED
from kbroker.protocol.messages.alter_partition_reassignments import AlterPartitionReassignmentsRequest
from kbroker.protocol.messages.api_versions import ApiVersionsRequest
from kbroker.protocol.messages.delete_groups import DeleteGroupsRequest
from kbroker.protocol.messages.describe_cluster import DescribeClusterRequest
from kbroker.protocol.messages.describe_groups import DescribeGroupsRequest
from kbroker.protocol.messages.fetch import FetchRequest
from kbroker.protocol.messages.find_coordinator import FindCoordinatorRequest
from kbroker.protocol.messages.list_config_resources import ListConfigResourcesRequest
from kbroker.protocol.messages.list_transactions import ListTransactionsRequest
from kbroker.protocol.messages.offset_commit import OffsetCommitRequest
from kbroker.protocol.messages.offset_fetch import OffsetFetchRequest
from kbroker.protocol.messages.produce import ProduceRequest
from kbroker.protocol.messages.update_features import UpdateFeaturesRequest

from .scenarios import RECORDS, batch, ensure_topic, list_offsets, metadata, plain, scenario

NAMED = dict(client_software_name="compat-differential", client_software_version="1")
UNKNOWN_ID = uuid.UUID("00000000-0000-0000-0000-00000000abcd")


def topic_id(w, topic: str) -> uuid.UUID:
    return uuid.UUID(str(ensure_topic(w, topic)["topic_id"]))


def first_write(w, request, version: int):
    """A topic's first Produce, retried while Kafka's partition is not ready yet
    (NOT_LEADER_OR_FOLLOWER right after creation, which clients retry too)."""
    deadline = time.monotonic() + 15
    while True:
        response = w.request(request, version)
        if response.responses[0].partition_responses[0].error_code != 6 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


@scenario("api-versions-newest")
def api_versions_newest(b):
    """Kafka's newest version of every API kbroker serves (kbroker's own table names which)."""
    with b.wire() as w:
        r = w.request(ApiVersionsRequest(**NAMED), 4)
    ranges = {k.api_key: (k.min_version, k.max_version) for k in r.api_keys}
    return {str(entry.api_key): ranges.get(entry.api_key) for entry in SERVED}


@scenario("api-versions-v5-cluster-check")
def api_versions_v5(b):
    with b.wire() as w:
        cluster_id = w.request(ApiVersionsRequest(**NAMED), 4) and metadata(w, [])["cluster_id"]
        out = {}
        for name, cid, node in (("ours", cluster_id, -2), ("other cluster", "x" * 22, 1),
                                ("cluster without node", cluster_id, -1), ("node without cluster", None, 1),
                                ("neither", None, -1)):
            if node == -2:
                node = metadata(w, [])["brokers"][0]["node_id"]
            r = w.request(ApiVersionsRequest(**NAMED, cluster_id=cid, node_id=node), 5)
            out[name] = {"error_code": r.error_code, "api_keys_listed": bool(r.api_keys)}
        r = w.request(ApiVersionsRequest(**NAMED), 5)
    features = {f.name: (f.min_version, f.max_version) for f in r.supported_features}
    finalized = {f.name: f.max_version_level for f in r.finalized_features}
    # only the features both brokers have (kbroker serves no share/streams groups, no ELR)
    out["transaction.version"] = (features.get("transaction.version"), finalized.get("transaction.version"))
    return out


@scenario("produce-v13-topic-ids")
def produce_v13(b):
    t = b.topic()
    with b.wire() as w:
        tid = topic_id(w, t)
        out = {}
        for name, wanted in (("known id", tid), ("unknown id", UNKNOWN_ID), ("zero id", uuid.UUID(int=0))):
            r = first_write(w, ProduceRequest(acks=-1, timeout_ms=10000, topic_data=[ProduceRequest.TopicProduceData(
                topic_id=wanted, partition_data=[ProduceRequest.PartitionProduceData(
                    index=0, records=batch(RECORDS[:2]))])]), 13)
            out[name] = plain(r)
        out["v12 by name"] = plain(w.request(ProduceRequest(acks=1, timeout_ms=10000, topic_data=[
            ProduceRequest.TopicProduceData(name=t, partition_data=[ProduceRequest.PartitionProduceData(
                index=0, records=batch(RECORDS[2:3]))])]), 12))
    return out


@scenario("fetch-v18-metadata-v13")
def fetch_v18(b):
    t = b.topic()
    with b.wire() as w:
        tid = topic_id(w, t)
        first_write(w, ProduceRequest(acks=-1, timeout_ms=10000, topic_data=[ProduceRequest.TopicProduceData(
            name=t, partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch(RECORDS))])]), 11)
        out = {}
        for name, wanted in (("known id", tid), ("unknown id", UNKNOWN_ID)):
            r = plain(w.request(FetchRequest(
                max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                topics=[FetchRequest.FetchTopic(topic_id=wanted, partitions=[FetchRequest.FetchPartition(
                    partition=0, fetch_offset=1, partition_max_bytes=1 << 20, high_watermark=5)])]), 18))
            for p in r["responses"][0]["partitions"]:
                p["records"] = len(p["records"]) if isinstance(p["records"], (bytes, str)) else p["records"]
            out[name] = r
        out["metadata v13"] = {name: metadata(w, topics, auto_create=False, version=13)
                               for name, topics in (("known", [t]), ("unknown", [b.topic("missing")]))}
    return out


@scenario("list-offsets-v11")
def list_offsets_v11(b):
    t = b.topic()
    with b.wire() as w:
        ensure_topic(w, t)
        first_write(w, ProduceRequest(acks=-1, timeout_ms=10000, topic_data=[ProduceRequest.TopicProduceData(
            name=t, partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch(RECORDS))])]), 11)
        out = {f"v11 {ts}": list_offsets(w, t, ts, version=11) for ts in (-1, -2, -3, -4, -5, -6)}
        out["v10 -6"] = list_offsets(w, t, -6, version=10)
    return out


def group_coordinator_ready(w, group: str) -> None:
    """Until the group's coordinator answers (a fresh Kafka loads __consumer_offsets first: 14/15/16)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if w.request(FindCoordinatorRequest(key=group, key_type=0), 3).error_code == 0:
            fetched = w.request(OffsetFetchRequest(groups=[OffsetFetchRequest.OffsetFetchRequestGroup(
                group_id=group, topics=None)]), 8)
            if fetched.groups[0].error_code not in (14, 15, 16):
                return
        time.sleep(0.1)


def _commit(w, group, topics, version):
    return plain(w.request(OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=-1, member_id="",
                                               topics=topics), version))


@scenario("offset-commit-fetch-v10-topic-ids")
def offsets_v10(b):
    t, group = b.topic(), b.topic("group")
    Topic, Partition = OffsetCommitRequest.OffsetCommitRequestTopic, OffsetCommitRequest.OffsetCommitRequestPartition
    with b.wire() as w:
        tid = topic_id(w, t)
        group_coordinator_ready(w, group)
        out = {"commit v10": _commit(w, group, [
            Topic(topic_id=tid, partitions=[Partition(partition_index=0, committed_offset=3, committed_metadata="m")]),
            Topic(topic_id=UNKNOWN_ID, partitions=[Partition(partition_index=0, committed_offset=1)])], 10),
            "commit v9": _commit(w, group, [Topic(name=b.topic("gone"), partitions=[
                Partition(partition_index=0, committed_offset=9)])], 9)}
        Group, Topics = OffsetFetchRequest.OffsetFetchRequestGroup, OffsetFetchRequest.OffsetFetchRequestTopics
        for name, topics in (("fetch v10 by id", [Topics(topic_id=tid, partition_indexes=[0, 1]),
                                                  Topics(topic_id=UNKNOWN_ID, partition_indexes=[0])]),
                             ("fetch v10 all", None)):
            out[name] = plain(w.request(OffsetFetchRequest(groups=[Group(group_id=group, topics=topics)]), 10))
        out["fetch v9 all"] = plain(w.request(OffsetFetchRequest(groups=[Group(group_id=group, topics=None)]), 9))
    return out


@scenario("admin-4.4-versions")
def admin_versions(b):
    t = b.topic()
    with b.wire() as w:
        ensure_topic(w, t)
        out = {"describe cluster v2": plain(w.request(DescribeClusterRequest(include_fenced_brokers=True), 2))}
        Reassign = AlterPartitionReassignmentsRequest
        for allow in (True, False):
            out[f"reassign v1 allow={allow}"] = plain(w.request(Reassign(
                allow_replication_factor_change=allow, topics=[Reassign.ReassignableTopic(name=t, partitions=[
                    Reassign.ReassignablePartition(partition_index=0, replicas=None)])]), 1))
        missing = b.topic("no-such-group")
        group_coordinator_ready(w, missing)
        out["describe groups v6"] = plain(w.request(DescribeGroupsRequest(groups=[missing]), 6))
        out["delete groups v3"] = plain(w.request(DeleteGroupsRequest(groups_names=[missing]), 3))
        out["list transactions v2"] = {pattern: plain(w.request(ListTransactionsRequest(
            transactional_id_pattern=pattern), 2))["error_code"] for pattern in (None, "", "abc.*", "(")}
    return out


@scenario("list-config-resources")
def list_config_resources(b):
    t = b.topic()
    with b.wire() as w:
        ensure_topic(w, t)
        out = {}
        for name, types, version in (("v0", [], 0), ("v1 all", [], 1), ("v1 topics", [2], 1),
                                     ("v1 brokers", [4, 8], 1), ("v1 unknown type", [99], 1)):
            r = plain(w.request(ListConfigResourcesRequest(resource_types=types), version))
            # other scenarios' topics and groups exist meanwhile (the brokers are shared); kbroker does
            # not list GROUP (32) or CLIENT_METRICS (16) resources yet (FINDINGS.md)
            r["config_resources"] = [res for res in r["config_resources"]
                                     if res["resource_type"] not in (2, 16, 32) or res["resource_name"] == t]
            out[name] = r
    return out


@scenario("update-features-validate-only")
def update_features(b):
    U = UpdateFeaturesRequest.FeatureUpdateKey
    out = {}
    with b.wire() as w:
        for name, update in (("downgrade tv to 1", U(feature="transaction.version", max_version_level=1, upgrade_type=2)),
                             ("lower without downgrade type", U(feature="transaction.version", max_version_level=1)),
                             ("upgrade to the same level", U(feature="transaction.version", max_version_level=2)),
                             ("beyond the supported range", U(feature="transaction.version", max_version_level=9)),
                             ("unknown feature", U(feature="no.such.version", max_version_level=1)),
                             ("unknown upgrade type", U(feature="transaction.version", max_version_level=1,
                                                        upgrade_type=7))):
            for version in (1, 2):
                out[f"{name} v{version}"] = plain(w.request(UpdateFeaturesRequest(
                    feature_updates=[update], validate_only=True), version))
    return out

