"""Admin APIs on the wire: the exact error codes and messages Apache Kafka 4.4 gives (captured from a
running Kafka with the same requests), pagination, log dir sizes, producer state, and the parts no
client library exposes directly."""

from __future__ import annotations

import uuid

from confluent_kafka import Producer

from kbroker.protocol.messages import (AlterConfigsRequest, CreatePartitionsRequest, CreateTopicsRequest,
                                       DeleteRecordsRequest, DeleteTopicsRequest, DescribeClusterRequest,
                                       DescribeConfigsRequest, DescribeLogDirsRequest, DescribeProducersRequest,
                                       DescribeTopicPartitionsRequest, ElectLeadersRequest,
                                       IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest,
                                       MetadataRequest)
from tests.kafka_wire import WireClient

CT = CreateTopicsRequest
AC = AlterConfigsRequest
IAC = IncrementalAlterConfigsRequest
DC = DescribeConfigsRequest
CP = CreatePartitionsRequest
DT = DeleteTopicsRequest


def create(client, name, partitions=1, rf=1, configs=(), assignments=(), validate_only=False, version=7):
    request = CT(topics=[CT.CreatableTopic(name=name, num_partitions=partitions, replication_factor=rf,
                                           configs=[CT.CreatableTopicConfig(k, v) for k, v in configs],
                                           assignments=[CT.CreatableReplicaAssignment(i, b) for i, b in assignments])],
                 validate_only=validate_only)
    return client.request(request, version).topics[0]


def alter(client, resource_type, name, configs, version=2):
    request = AC(resources=[AC.AlterConfigsResource(resource_type, name, [AC.AlterableConfig(k, v) for k, v in configs])])
    r = client.request(request, version).responses[0]
    return r.error_code, r.error_message


def incremental(client, resource_type, name, ops, validate_only=False):
    request = IAC(resources=[IAC.AlterConfigsResource(resource_type, name, [IAC.AlterableConfig(k, op, v)
                                                                            for k, op, v in ops])],
                  validate_only=validate_only)
    r = client.request(request, 1).responses[0]
    return r.error_code, r.error_message


def describe(client, resource_type, name, keys=None, synonyms=True, version=4):
    request = DC(resources=[DC.DescribeConfigsResource(resource_type, name, keys)], include_synonyms=synonyms,
                 include_documentation=True)
    return client.request(request, version).results[0]


def partitions(client, name, count, assignments=None, validate_only=False):
    request = CP(topics=[CP.CreatePartitionsTopic(name, count, assignments)], timeout_ms=5000,
                 validate_only=validate_only)
    r = client.request(request, 3).results[0]
    return r.error_code, r.error_message


def test_create_topics_errors_as_kafka(kbroker):
    with WireClient(kbroker.bootstrap) as c:
        assert create(c, "a.b").error_code == 0
        cases = [
            (dict(name="a.b"), 36, "Topic 'a.b' already exists."),
            (dict(name="a_b"), 17, "Topic 'a_b' collides with existing topic: a.b"),
            (dict(name="bad name"), 17, "Topic name is invalid: 'bad name' contains one or more characters other "
                                        "than ASCII alphanumerics, '.', '_' and '-'"),
            (dict(name=""), 17, "Topic name is invalid: the empty string is not allowed"),
            (dict(name=".."), 17, "Topic name is invalid: '..' is not allowed"),
            (dict(name="x" * 250), 17, f"Topic name is invalid: the length of '{'x' * 250}' is longer than the max "
                                       "allowed length 249"),
            (dict(name="t", rf=3), 38, "Unable to replicate the partition 3 time(s): The target replication factor "
                                       "of 3 cannot be reached because only 1 broker(s) are registered or some "
                                       "brokers have all their log directories cordoned."),
            (dict(name="t", partitions=0), 37, "Number of partitions was set to an invalid non-positive value."),
            (dict(name="t", rf=0), 38, "Replication factor must be larger than 0, or -1 to use the default value."),
            (dict(name="t", configs=[("nope", "1")]), 40, "Unknown topic config name: nope"),
            (dict(name="t", configs=[("retention.ms", "abc")]), 40,
             "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
            (dict(name="t", configs=[("retention.ms", None)]), 40, "Null value not supported for topic configs: "
                                                                   "retention.ms"),
            (dict(name="t", configs=[("cleanup.policy", "bogus")]), 40,
             "Invalid value bogus for configuration cleanup.policy: String must be one of: compact, delete"),
            # configs are checked before the partition count, as the controller does
            (dict(name="t", partitions=0, configs=[("nope", "1")]), 40, "Unknown topic config name: nope"),
            (dict(name="t", partitions=2, rf=-1, assignments=[(0, [1])]), 42,
             "A manual partition assignment was specified, but numPartitions was not set to -1."),
            (dict(name="t", partitions=-1, rf=-1, assignments=[(0, [2])]), 39,
             "The manual partition assignment includes broker 2, but no such broker is registered."),
            (dict(name="t", partitions=-1, rf=-1, assignments=[(0, [1, 1])]), 39,
             "The manual partition assignment includes the broker 1 more than once."),
            (dict(name="t", partitions=-1, rf=-1, assignments=[(1, [1])]), 39,
             "partitions should be a consecutive 0-based integer sequence"),
        ]
        for args, code, message in cases:
            result = create(c, **args)
            assert (result.error_code, result.error_message) == (code, message), args
        assert "t" not in {t.name for t in c.request(MetadataRequest(topics=None), 12).topics}

        request = CT(topics=[CT.CreatableTopic(name=n, num_partitions=1, replication_factor=1)
                             for n in ("dup", "ok", "dup", "__cluster_metadata")], validate_only=True)
        results = [(t.name, t.error_code, t.error_message) for t in c.request(request, 7).topics]
        assert results == [("ok", 0, None), ("dup", 42, "Duplicate topic name."),
                           ("__cluster_metadata", 42, "Creation of internal topic __cluster_metadata is prohibited.")]


def test_create_topics_defaults_assignments_and_v5_fields(kbroker_factory):
    broker = kbroker_factory(**{"num.partitions": 3})
    with WireClient(broker.bootstrap) as c:
        result = create(c, "defaults", partitions=-1, rf=-1, configs=[("retention.ms", "5000")])
        assert (result.error_code, result.num_partitions, result.replication_factor) == (0, 3, 1)
        configs = {x.name: x for x in result.configs}
        assert (configs["retention.ms"].value, configs["retention.ms"].config_source) == ("5000", 1)
        assert (configs["cleanup.policy"].value, configs["cleanup.policy"].config_source) == ("delete", 5)
        assert [x.name for x in result.configs] == sorted(configs)
        manual = create(c, "manual", partitions=-1, rf=-1, assignments=[(0, [1]), (1, [1])])
        assert (manual.error_code, manual.num_partitions) == (0, 2)
        validated = create(c, "only-validated", partitions=5, validate_only=True)
        assert (validated.error_code, validated.num_partitions) == (0, 5)
        old = create(c, "old", version=4)
        assert (old.error_code, old.num_partitions) == (0, -1)  # v5 fields are not in v4
        topics = {t.name: t for t in c.request(MetadataRequest(topics=None), 12).topics}
        assert sorted(topics) == ["defaults", "manual", "old"]
        assert topics["defaults"].topic_id == result.topic_id


def test_delete_topics_by_name_and_id(kbroker):
    with WireClient(kbroker.bootstrap) as c:
        ids = {n: create(c, n, partitions=2).topic_id for n in ("r1", "r2", "r3", "r4")}
        unknown_id = uuid.uuid4()
        request = DT(topics=[DT.DeleteTopicState(name="r1"), DT.DeleteTopicState(topic_id=ids["r2"]),
                             DT.DeleteTopicState(name="nosuch"), DT.DeleteTopicState(topic_id=unknown_id),
                             DT.DeleteTopicState(name="r3", topic_id=ids["r3"]), DT.DeleteTopicState(),
                             DT.DeleteTopicState(name="r4"), DT.DeleteTopicState(name="r4")], timeout_ms=5000)
        results = {(r.name, r.topic_id): (r.error_code, r.error_message) for r in c.request(request, 6).responses}
        zero = uuid.UUID(int=0)
        assert results == {
            ("r1", ids["r1"]): (0, None),
            ("r2", ids["r2"]): (0, None),
            ("nosuch", zero): (3, "This server does not host this topic-partition."),
            (None, unknown_id): (100, "This server does not host this topic ID."),
            ("r3", ids["r3"]): (42, "You may not specify both topic name and topic id."),
            (None, zero): (42, "Neither topic name nor id were specified."),
            ("r4", zero): (42, "Duplicate topic name."),
        }
        r = c.request(DT(topic_names=["r3"], timeout_ms=5000), 4).responses
        assert [(x.name, x.error_code) for x in r] == [("r3", 0)]
        assert [t.name for t in c.request(MetadataRequest(topics=None), 12).topics] == ["r4"]
        # a re-created topic is a new topic: new id, no data
        again = create(c, "r1")
        assert again.error_code == 0 and again.topic_id != ids["r1"]


def test_delete_topics_disabled(kbroker_factory):
    broker = kbroker_factory(**{"delete.topic.enable": "false"})
    with WireClient(broker.bootstrap) as c:
        create(c, "kept")
        r = c.request(DT(topic_names=["kept"], timeout_ms=5000), 5).responses[0]
        assert r.error_code == 73  # TOPIC_DELETION_DISABLED
        r = c.request(DT(topic_names=["kept"], timeout_ms=5000), 2).responses[0]
        assert r.error_code == 42
        assert [t.name for t in c.request(MetadataRequest(topics=None), 12).topics] == ["kept"]


def test_create_partitions_as_kafka(kbroker):
    with WireClient(kbroker.bootstrap) as c:
        create(c, "q1", partitions=2)
        assert partitions(c, "q1", 4) == (0, None)
        assert partitions(c, "q1", 4) == (37, "Topic already has 4 partition(s).")
        assert partitions(c, "q1", 2) == (37, "The topic q1 currently has 4 partition(s); 2 would not be an increase.")
        assert partitions(c, "nosuch", 2) == (3, None)
        assert partitions(c, "q1", 6, validate_only=True) == (0, None)
        assert partitions(c, "q1", 6, [CP.CreatePartitionsAssignment([1])]) == (
            39, "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.")
        assert partitions(c, "q1", 5, [CP.CreatePartitionsAssignment([3])]) == (
            39, "The manual partition assignment includes broker 3, but no such broker is registered.")
        assert partitions(c, "q1", 5, [CP.CreatePartitionsAssignment([1])]) == (0, None)
        request = CP(topics=[CP.CreatePartitionsTopic("q1", 9, None), CP.CreatePartitionsTopic("q1", 9, None)],
                     timeout_ms=5000)
        assert [(r.name, r.error_code, r.error_message) for r in c.request(request, 3).results] == [
            ("q1", 42, "Duplicate topic name.")]
        topic = c.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="q1")]), 12).topics[0]
        assert len(topic.partitions) == 5


def test_topic_config_alterations_as_kafka(kbroker):
    with WireClient(kbroker.bootstrap) as c:
        create(c, "q1", configs=[("segment.bytes", "1048576")])
        assert alter(c, 2, "q1", [("retention.ms", "5000")]) == (0, None)
        # legacy AlterConfigs replaces the whole set: segment.bytes is back to its default
        overrides = {x.name: x.value for x in describe(c, 2, "q1").configs if x.config_source == 1}
        assert overrides == {"retention.ms": "5000"}
        assert alter(c, 2, "nosuch", [("retention.ms", "5000")]) == (3, "The topic 'nosuch' does not exist.")
        assert alter(c, 2, "bad name", [("retention.ms", "5")])[0] == 17
        assert alter(c, 2, "q1", [("nope", "5000")]) == (40, "Unknown topic config name: nope")
        assert alter(c, 2, "q1", [("retention.ms", "x")]) == (
            40, "Invalid value x for configuration retention.ms: Not a number of type LONG")
        assert alter(c, 2, "q1", [("retention.ms", None)]) == (42, "Null value not supported for : retention.ms")
        assert alter(c, 99, "x", [("a", "b")]) == (42, "Unknown resource type 99")

        SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
        assert incremental(c, 2, "q1", [("retention.ms", SET, "7000"), ("cleanup.policy", APPEND, "compact")]) == (0, None)
        assert describe(c, 2, "q1", ["cleanup.policy"]).configs[0].value == "delete,compact"
        assert incremental(c, 2, "q1", [("cleanup.policy", SUBTRACT, "delete")]) == (0, None)
        assert describe(c, 2, "q1", ["cleanup.policy"]).configs[0].value == "compact"
        assert incremental(c, 2, "q1", [("retention.ms", APPEND, "1")]) == (
            40, "Can't APPEND to key retention.ms because its type is not LIST.")
        assert incremental(c, 2, "q1", [("nope", DELETE, None)]) == (0, None)
        assert incremental(c, 2, "q1", [("nope", SET, "1")]) == (40, "Unknown topic config name: nope")
        assert incremental(c, 2, "q1", [("retention.ms", 7, "1")]) == (-1, None)
        assert incremental(c, 2, "q1", [("retention.ms", SET, "1"), ("retention.ms", SET, "2")]) == (
            42, "Error due to duplicate config keys")
        assert incremental(c, 2, "q1", [("retention.ms", SET, None)]) == (42, "Null value not supported for : retention.ms")
        assert incremental(c, 2, "q1", [("min.compaction.lag.ms", SET, "10"), ("max.compaction.lag.ms", SET, "5")]) == (
            40, "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)")
        assert incremental(c, 2, "q1", [("retention.ms", SET, "1")], validate_only=True) == (0, None)
        entry = describe(c, 2, "q1", ["retention.ms", "cleanup.policy", "nope"])
        assert (entry.error_code, entry.error_message) == (0, "")
        values = {x.name: (x.value, x.config_source, [(s.name, s.value, s.source) for s in x.synonyms])
                  for x in entry.configs}
        assert values == {"retention.ms": ("7000", 1, [("retention.ms", "7000", 1)]),
                          "cleanup.policy": ("compact", 1, [("cleanup.policy", "compact", 1),
                                                            ("log.cleanup.policy", "delete", 5)])}
        assert all(x.documentation for x in entry.configs) and {x.config_type for x in entry.configs} == {5, 7}


def test_describe_configs_errors_as_kafka(kbroker):
    with WireClient(kbroker.bootstrap) as c:
        cases = [
            ((2, "nosuch"), 3, ""),
            ((2, "bad name"), 17, "Topic name is invalid: 'bad name' contains one or more characters other than "
                                  "ASCII alphanumerics, '.', '_' and '-'"),
            ((2, ""), 17, "Topic name is invalid: the empty string is not allowed"),
            ((4, "7"), 42, "Unexpected broker id, expected 1 or empty string, but received 7"),
            ((4, "abc"), 42, "Broker id must be an integer, but it is: abc"),
        ]
        for (resource_type, name), code, message in cases:
            result = describe(c, resource_type, name)
            assert (result.error_code, result.error_message, result.configs) == (code, message, []), name
        broker = describe(c, 4, "1", ["log.retention.hours", "log.retention.ms", "num.io.threads", "log.dirs"])
        entries = {x.name: (x.value, x.read_only, x.config_source) for x in broker.configs}
        assert entries["log.retention.hours"] == ("168", True, 5)
        assert entries["log.retention.ms"] == (None, False, 5)
        assert entries["num.io.threads"] == ("8", False, 5)
        assert entries["log.dirs"][1:] == (True, 4)


def test_dynamic_broker_configs_persist(kbroker_process):
    broker = kbroker_process()
    SET, DELETE = 0, 1
    with WireClient(broker.bootstrap) as c:
        assert incremental(c, 4, "", [("log.cleaner.threads", SET, "2")]) == (0, None)
        assert incremental(c, 4, "1", [("log.retention.ms", SET, "100000000")]) == (0, None)
        assert incremental(c, 4, "1", [("log.dirs", SET, "/x")]) == (42, "Cannot update these configs dynamically: "
                                                                         "[log.dirs]")
        assert incremental(c, 4, "", [("log.cleaner.threads", SET, "x")]) == (
            42, "Invalid value x for configuration log.cleaner.threads: Not a number of type INT")
        assert incremental(c, 4, "5", [("log.cleaner.threads", SET, "2")]) == (
            42, "Unexpected broker id, expected 1, but received 5")
        assert alter(c, 4, "abc", [("log.cleaner.threads", "2")]) == (42, "Node id must be an integer, but it is: abc")
        create(c, "inherits")
    broker.restart()
    with WireClient(broker.bootstrap) as c:
        default = describe(c, 4, "")
        # Kafka 4.4's format writes min.insync.replicas as a cluster default (ELR), and so does kbroker
        assert sorted((x.name, x.value, x.config_source) for x in default.configs) == [
            ("log.cleaner.threads", "2", 3), ("min.insync.replicas", "1", 3)]
        assert alter(c, 4, "", [("log.cleaner.threads", "3")]) == (
            40, "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.")
        node = {x.name: x for x in describe(c, 4, "1", ["log.cleaner.threads", "log.retention.ms"]).configs}
        assert [(s.value, s.source) for s in node["log.cleaner.threads"].synonyms] == [("2", 3), ("1", 5)]
        assert (node["log.retention.ms"].value, node["log.retention.ms"].config_source) == ("100000000", 2)
        topic = describe(c, 2, "inherits", ["retention.ms"]).configs[0]
        assert (topic.value, topic.config_source) == ("100000000", 2)
        assert incremental(c, 4, "1", [("log.retention.ms", DELETE, None)]) == (0, None)
        assert describe(c, 2, "inherits", ["retention.ms"]).configs[0].value == "604800000"


def _produce(bootstrap, topic, count, partition=0, idempotent=False):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": idempotent})
    for i in range(count):
        producer.produce(topic, value=b"x" * 100, partition=partition)
    assert producer.flush(20) == 0


def test_delete_records_log_dirs_and_producers(kbroker):
    with WireClient(kbroker.bootstrap) as c:
        create(c, "r1", partitions=2)
        _produce(kbroker.bootstrap, "r1", 10, partition=1, idempotent=True)
        dirs = c.request(DescribeLogDirsRequest(topics=None), 4)
        assert len(dirs.results) == 1 and dirs.results[0].total_bytes > 0 and dirs.results[0].usable_bytes > 0
        sizes = {(t.name, p.partition_index): p.partition_size for t in dirs.results[0].topics for p in t.partitions}
        assert sizes[("r1", 0)] == 0 and sizes[("r1", 1)] > 1000
        only = c.request(DescribeLogDirsRequest(topics=[DescribeLogDirsRequest.DescribableLogDirTopic("r1", [1, 9])]), 1)
        assert [(t.name, [p.partition_index for p in t.partitions]) for t in only.results[0].topics] == [("r1", [1])]

        DR = DeleteRecordsRequest
        request = DR(topics=[DR.DeleteRecordsTopic("r1", [DR.DeleteRecordsPartition(0, 0), DR.DeleteRecordsPartition(1, 4),
                                                          DR.DeleteRecordsPartition(7, 0)]),
                             DR.DeleteRecordsTopic("nosuch", [DR.DeleteRecordsPartition(0, 0)])], timeout_ms=5000)
        results = {(t.name, p.partition_index): (p.low_watermark, p.error_code)
                   for t in c.request(request, 2).topics for p in t.partitions}
        assert results == {("r1", 0): (0, 0), ("r1", 1): (4, 0), ("r1", 7): (-1, 3), ("nosuch", 0): (-1, 3)}
        request = DR(topics=[DR.DeleteRecordsTopic("r1", [DR.DeleteRecordsPartition(1, 11)])], timeout_ms=5000)
        assert c.request(request, 1).topics[0].partitions[0].error_code == 1  # OFFSET_OUT_OF_RANGE
        request = DR(topics=[DR.DeleteRecordsTopic("r1", [DR.DeleteRecordsPartition(1, -1)])], timeout_ms=5000)
        assert c.request(request, 0).topics[0].partitions[0].low_watermark == 10  # -1: the high watermark
        dirs = c.request(DescribeLogDirsRequest(topics=None), 4)
        sizes = {(t.name, p.partition_index): p.partition_size for t in dirs.results[0].topics for p in t.partitions}
        assert sizes[("r1", 1)] == 0  # every segment below the new log start is gone


        DP = DescribeProducersRequest
        response = c.request(DP(topics=[DP.TopicRequest("r1", [1, 99]), DP.TopicRequest("nosuch", [0])]), 0)
        p1, p99 = response.topics[0].partitions
        assert p1.error_code == 0
        # the producer's batches were all deleted above, so it is no longer active
        assert p1.active_producers == []
        assert (p99.error_code, p99.error_message) == (3, None)
        assert response.topics[1].partitions[0].error_message == "This server does not host this topic-partition."
        _produce(kbroker.bootstrap, "r1", 3, partition=0, idempotent=True)
        active = c.request(DP(topics=[DP.TopicRequest("r1", [0])]), 0).topics[0].partitions[0].active_producers
        assert len(active) == 1 and active[0].producer_id >= 0 and active[0].last_sequence == 2


def test_cluster_partitions_and_elections(kbroker):
    with WireClient(kbroker.bootstrap) as c:
        create(c, "q1", partitions=5)
        create(c, "a.b")
        cluster = c.request(DescribeClusterRequest(include_cluster_authorized_operations=True), 1)
        assert (cluster.error_code, cluster.controller_id, [b.broker_id for b in cluster.brokers]) == (0, 1, [1])
        assert cluster.cluster_authorized_operations == 8096
        mismatched = c.request(DescribeClusterRequest(endpoint_type=2), 1)
        assert mismatched.error_code == 114 and mismatched.brokers == []

        DTP = DescribeTopicPartitionsRequest
        r = c.request(DTP(topics=[DTP.TopicRequest("q1"), DTP.TopicRequest("nosuch"), DTP.TopicRequest("bad name")],
                          response_partition_limit=3), 0)
        assert [(t.name, t.error_code, len(t.partitions)) for t in r.topics] == [("bad name", 17, 0), ("nosuch", 3, 0),
                                                                                  ("q1", 0, 3)]
        assert (r.next_cursor.topic_name, r.next_cursor.partition_index) == ("q1", 3)
        assert r.topics[2].topic_authorized_operations == 3576
        r = c.request(DTP(topics=[DTP.TopicRequest("q1")], response_partition_limit=2, cursor=DTP.Cursor("q1", 3)), 0)
        assert [p.partition_index for p in r.topics[0].partitions] == [3, 4] and r.next_cursor is None
        r = c.request(DTP(topics=[], response_partition_limit=1), 0)
        assert [t.name for t in r.topics] == ["a.b"] and r.next_cursor.topic_name == "q1"

        EL = ElectLeadersRequest
        r = c.request(EL(election_type=0, topic_partitions=[EL.TopicPartitions("q1", [0, 99]),
                                                            EL.TopicPartitions("nosuch", [0])]), 2)
        results = [(t.topic, p.partition_id, p.error_code, p.error_message)
                   for t in r.replica_election_results for p in t.partition_result]
        assert results == [("q1", 0, 84, "Leader election not needed for topic partition."),
                           ("q1", 99, 3, "No such partition as q1-99"), ("nosuch", 0, 3, "No such topic as nosuch")]
        assert c.request(ListPartitionReassignmentsRequest(topics=None), 0).topics == []
