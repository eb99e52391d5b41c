"""Cluster and partition administration, answered as a one-broker Kafka 4 cluster answers them:

- DescribeCluster (key 60) v0-1: this ctx, which is also the controller; endpoint type 1 (BROKER);
  asking for controller endpoints (type 2) is MISMATCHED_ENDPOINT_TYPE, as a broker listener answers.
- DescribeTopicPartitions (key 75) v0: Java Admin's describeTopics. Topics sorted by name, partitions
  from the cursor on, at most min(ResponsePartitionLimit, 2000) partitions per response; NextCursor
  points at the first partition left out. An empty topic list means all topics (unknown ones are then
  not reported); a cursor topic missing from an explicit list, or a negative cursor partition, is
  INVALID_REQUEST.
- DescribeLogDirs (key 35) v1-4: the one log directory, every partition's size on disk, offset lag 0,
  and (v4) the file system's total and usable bytes.
- DescribeProducers (key 61) v0: the active idempotent and transactional producers of each partition,
  from the log's producer state (with an open transaction's start offset and the coordinator epoch of
  the producer's last transaction marker).
- ElectLeaders (key 43) v0-2: the only replica is always the leader, so every named partition is
  ELECTION_NOT_NEEDED; a null partition list (all partitions) lists each topic with no results.
- ListPartitionReassignments (key 46) v0: never any. AlterPartitionReassignments (key 45) v0: a replica
  list of exactly this broker is accepted (it is already so), a null list (cancel) is
  NO_REASSIGNMENT_IN_PROGRESS, other brokers are INVALID_REPLICA_ASSIGNMENT.
- DescribeAcls (key 29) v1-3: SECURITY_DISABLED, as Kafka without an authorizer; DescribeClientQuotas
  (key 48) v0-1: no quotas are configured, so no entries.
"""

from __future__ import annotations

import shutil

from ..metadata import validate_topic_name
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
                                 DescribeAclsRequest, DescribeAclsResponse, DescribeClientQuotasRequest,
                                 DescribeClientQuotasResponse, DescribeClusterRequest, DescribeClusterResponse,
                                 DescribeLogDirsRequest, DescribeLogDirsResponse, DescribeProducersRequest,
                                 DescribeProducersResponse, DescribeTopicPartitionsRequest,
                                 DescribeTopicPartitionsResponse, ElectLeadersRequest, ElectLeadersResponse,
                                 ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse)
from ..protocol.primitives import ZERO_UUID
from .metadata import CLUSTER_AUTHORIZED_OPERATIONS, OPERATIONS_NOT_REQUESTED, TOPIC_AUTHORIZED_OPERATIONS
from .registry import Handler
from .topics_admin import UNKNOWN_TOPIC_MESSAGE, check_manual_assignment

BROKER_ENDPOINT, CONTROLLER_ENDPOINT = 1, 2
MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000  # Kafka's max.request.partition.size.limit default


# ------------------------------------------------------------------------------ DescribeCluster

async def handle_describe_cluster(ctx, request: DescribeClusterRequest) -> DescribeClusterResponse:
    if ctx.api_version >= 1 and request.endpoint_type != BROKER_ENDPOINT:
        return DescribeClusterResponse(
            error_code=ErrorCode.MISMATCHED_ENDPOINT_TYPE,
            error_message="The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type "
                          + ("CONTROLLER" if request.endpoint_type == CONTROLLER_ENDPOINT else "UNKNOWN"),
            endpoint_type=BROKER_ENDPOINT, cluster_id="", controller_id=-1, brokers=[])
    return DescribeClusterResponse(
        error_code=ErrorCode.NONE, error_message=None, endpoint_type=BROKER_ENDPOINT,
        cluster_id=ctx.node.cluster_id, controller_id=ctx.node.node_id,
        brokers=[DescribeClusterResponse.DescribeClusterBroker(ctx.node.node_id, host, port, ctx.node.rack)
                 for host, port in ctx.node.advertised_endpoints[:1]],
        cluster_authorized_operations=(CLUSTER_AUTHORIZED_OPERATIONS if request.include_cluster_authorized_operations
                                       else OPERATIONS_NOT_REQUESTED))


# ---------------------------------------------------------------------- DescribeTopicPartitions

async def handle_describe_topic_partitions(ctx, request: DescribeTopicPartitionsRequest):
    Topic = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
    Partition = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition
    Cursor = DescribeTopicPartitionsResponse.Cursor
    cursor = request.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    all_topics = not request.topics
    if all_topics:
        names = {t.name for t in ctx.metadata.topics() if t.name >= cursor_topic}
    else:
        names = {t.name for t in request.topics if t.name >= cursor_topic}
        if cursor is not None and cursor.topic_name not in names:
            raise ApiError(ErrorCode.INVALID_REQUEST)
    if cursor is not None and cursor.partition_index < 0:
        raise ApiError(ErrorCode.INVALID_REQUEST)
    remaining = max(min(MAX_REQUEST_PARTITION_SIZE_LIMIT, request.response_partition_limit), 1)
    response = DescribeTopicPartitionsResponse(topics=[], next_cursor=None)
    node = ctx.node.node_id
    for name in sorted(names):
        if remaining == 0:
            response.next_cursor = Cursor(topic_name=name, partition_index=0)
            break
        topic = ctx.metadata.get(name)
        if topic is None:
            if not all_topics:
                code = (ErrorCode.INVALID_TOPIC_EXCEPTION if validate_topic_name(name) is not None
                        else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                response.topics.append(Topic(error_code=code, name=name, topic_id=ZERO_UUID, is_internal=False,
                                             partitions=[], topic_authorized_operations=TOPIC_AUTHORIZED_OPERATIONS))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor_topic else 0
        upper = min(topic.partitions, start + remaining)
        partitions = [Partition(error_code=ErrorCode.NONE, partition_index=i, leader_id=node,
                                leader_epoch=topic.leader_epoch, replica_nodes=[node], isr_nodes=[node],
                                eligible_leader_replicas=[], last_known_elr=[], offline_replicas=[])
                      for i in range(start, upper)]
        response.topics.append(Topic(error_code=ErrorCode.NONE, name=name, topic_id=topic.topic_id,
                                     is_internal=topic.is_internal, partitions=partitions,
                                     topic_authorized_operations=TOPIC_AUTHORIZED_OPERATIONS))
        if upper < topic.partitions:
            response.next_cursor = Cursor(topic_name=name, partition_index=upper)
            break
        remaining -= len(partitions)
    return response


async def _describe_topic_partitions(ctx, request):
    try:
        return await handle_describe_topic_partitions(ctx, request)
    except ApiError:
        # Kafka answers an invalid cursor with the request's error response: every topic INVALID_REQUEST
        Topic = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
        return DescribeTopicPartitionsResponse(topics=[
            Topic(error_code=ErrorCode.INVALID_REQUEST, name=t.name, topic_id=ZERO_UUID, partitions=[])
            for t in request.topics])


# ----------------------------------------------------------------------------- DescribeLogDirs

async def handle_describe_log_dirs(ctx, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse:
    Result = DescribeLogDirsResponse.DescribeLogDirsResult
    TopicResult = DescribeLogDirsResponse.DescribeLogDirsTopic
    PartitionResult = DescribeLogDirsResponse.DescribeLogDirsPartition
    if request.topics is None:
        wanted = {t.name: range(t.partitions) for t in ctx.metadata.topics()}
    else:
        wanted = {}
        for t in request.topics:
            wanted.setdefault(t.topic, [])
            wanted[t.topic] = list(dict.fromkeys([*wanted[t.topic], *t.partitions]))
    topics = []
    for name, partitions in wanted.items():
        topic = ctx.metadata.get(name)
        if topic is None:
            continue
        found = []
        for index in partitions:
            partition_log = ctx.partitions.logs.get(name, index) if 0 <= index < topic.partitions else None
            if partition_log is not None:
                found.append(PartitionResult(partition_index=index, partition_size=partition_log.size_in_bytes,
                                             offset_lag=0, is_future_key=False))
        if found:
            topics.append(TopicResult(name=name, partitions=found))
    total = usable = -1
    if ctx.api_version >= 4:
        try:
            usage = shutil.disk_usage(ctx.node.data_dir)
            total, usable = usage.total, usage.free
        except OSError:
            pass
    return DescribeLogDirsResponse(error_code=ErrorCode.NONE, results=[
        Result(error_code=ErrorCode.NONE, log_dir=str(ctx.node.data_dir.resolve()), topics=topics,
               total_bytes=total, usable_bytes=usable)])


# --------------------------------------------------------------------------- DescribeProducers

async def handle_describe_producers(ctx, request: DescribeProducersRequest) -> DescribeProducersResponse:
    TopicResponse = DescribeProducersResponse.TopicResponse
    PartitionResponse = DescribeProducersResponse.PartitionResponse
    ProducerState = DescribeProducersResponse.ProducerState
    topics = []
    for wanted in request.topics:
        topic = ctx.metadata.get(wanted.name)
        partitions = []
        for index in wanted.partition_indexes:
            if topic is None:
                partitions.append(PartitionResponse(partition_index=index,
                                                    error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                    error_message=UNKNOWN_TOPIC_MESSAGE, active_producers=[]))
                continue
            if not 0 <= index < topic.partitions:
                partitions.append(PartitionResponse(partition_index=index,
                                                    error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                    error_message=None, active_producers=[]))
                continue
            partition_log = ctx.partitions.partition_log(topic, index)
            producers = [
                ProducerState(producer_id=pid, producer_epoch=entry.epoch, last_sequence=entry.last_seq,
                              last_timestamp=entry.last_timestamp, coordinator_epoch=entry.coordinator_epoch,
                              current_txn_start_offset=entry.txn_first_offset)
                for pid, entry in sorted(partition_log.producer_state.producers.items())]
            partitions.append(PartitionResponse(partition_index=index, error_code=ErrorCode.NONE,
                                                error_message=None, active_producers=producers))
        topics.append(TopicResponse(name=wanted.name, partitions=partitions))
    return DescribeProducersResponse(topics=topics)


# -------------------------------------------------------------------------------- ElectLeaders

async def handle_elect_leaders(ctx, request: ElectLeadersRequest) -> ElectLeadersResponse:
    Result = ElectLeadersResponse.ReplicaElectionResult
    PartitionResult = ElectLeadersResponse.PartitionResult
    if ctx.api_version >= 1 and request.election_type not in (0, 1):
        return ElectLeadersResponse(error_code=ErrorCode.INVALID_REQUEST, replica_election_results=[])
    if request.topic_partitions is None:
        # all partitions: only those whose election was needed are listed, and none is
        return ElectLeadersResponse(error_code=ErrorCode.NONE, replica_election_results=[
            Result(topic=t.name, partition_result=[]) for t in ctx.metadata.topics()])
    results = []
    for wanted in request.topic_partitions:
        topic = ctx.metadata.get(wanted.topic)
        partitions = []
        for index in wanted.partitions:
            if topic is None:
                partitions.append(PartitionResult(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                  f"No such topic as {wanted.topic}"))
            elif not 0 <= index < topic.partitions:
                partitions.append(PartitionResult(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                  f"No such partition as {wanted.topic}-{index}"))
            else:
                partitions.append(PartitionResult(index, ErrorCode.ELECTION_NOT_NEEDED,
                                                  "Leader election not needed for topic partition."))
        results.append(Result(topic=wanted.topic, partition_result=partitions))
    return ElectLeadersResponse(error_code=ErrorCode.NONE, replica_election_results=results)


# --------------------------------------------------------------------- partition reassignments

async def handle_list_partition_reassignments(ctx, request: ListPartitionReassignmentsRequest):
    return ListPartitionReassignmentsResponse(error_code=ErrorCode.NONE, error_message=None, topics=[])


async def handle_alter_partition_reassignments(ctx, request: AlterPartitionReassignmentsRequest):
    TopicResponse = AlterPartitionReassignmentsResponse.ReassignableTopicResponse
    PartitionResponse = AlterPartitionReassignmentsResponse.ReassignablePartitionResponse
    responses = []
    for wanted in request.topics:
        topic = ctx.metadata.get(wanted.name)
        partitions = []
        for p in wanted.partitions:
            code, message = ErrorCode.NONE, None
            if topic is None:
                code, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {wanted.name}."
            elif not 0 <= p.partition_index < topic.partitions:
                code, message = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                 f"Unable to find partition {wanted.name}:{p.partition_index}.")
            elif p.replicas is None:
                code = ErrorCode.NO_REASSIGNMENT_IN_PROGRESS
            else:
                try:
                    check_manual_assignment(ctx, p.replicas, None)
                except ApiError as exc:
                    code, message = exc.error_code, exc.message
            partitions.append(PartitionResponse(partition_index=p.partition_index, error_code=code,
                                                error_message=message))
        responses.append(TopicResponse(name=wanted.name, partitions=partitions))
    return AlterPartitionReassignmentsResponse(error_code=ErrorCode.NONE, error_message=None, responses=responses)


# ----------------------------------------------------------------------------- ACLs and quotas

async def handle_describe_acls(ctx, request: DescribeAclsRequest) -> DescribeAclsResponse:
    return DescribeAclsResponse(error_code=ErrorCode.SECURITY_DISABLED,
                                error_message="No Authorizer is configured on the broker", resources=[])


async def handle_describe_client_quotas(ctx, request: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse:
    return DescribeClientQuotasResponse(error_code=ErrorCode.NONE, error_message="", entries=[])


HANDLERS = [
    Handler(DescribeAclsRequest, 1, 3, handle_describe_acls),
    Handler(DescribeLogDirsRequest, 1, 4, handle_describe_log_dirs),
    Handler(ElectLeadersRequest, 0, 2, handle_elect_leaders),
    Handler(AlterPartitionReassignmentsRequest, 0, 0, handle_alter_partition_reassignments),
    Handler(ListPartitionReassignmentsRequest, 0, 0, handle_list_partition_reassignments),
    Handler(DescribeClientQuotasRequest, 0, 1, handle_describe_client_quotas),
    Handler(DescribeClusterRequest, 0, 1, handle_describe_cluster),
    Handler(DescribeProducersRequest, 0, 0, handle_describe_producers),
    Handler(DescribeTopicPartitionsRequest, 0, 0, _describe_topic_partitions),
]
