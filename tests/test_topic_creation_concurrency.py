"""Creating a topic does not stall the broker: its partitions' files are made durable in a worker
thread while every other connection is served, and the topic is visible only once they are durable
(kbroker.broker). A name being created is taken (TOPIC_ALREADY_EXISTS, as in Kafka), and concurrent
auto-creations of a name (FindCoordinator, Metadata) create it once and all get it."""

from __future__ import annotations

import os
import select
import threading
import time

from kbroker.protocol.codec import decode_response, encode_request
from kbroker.protocol.messages import (ApiVersionsRequest, CreateTopicsRequest, FindCoordinatorRequest,
                                       MetadataRequest)
from tests.kafka_wire import WireClient

CT = CreateTopicsRequest
TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION = 36, 3


def create_request(name: str, partitions: int) -> CreateTopicsRequest:
    return CT(topics=[CT.CreatableTopic(name=name, num_partitions=partitions, replication_factor=1, configs=[],
                                        assignments=[])], timeout_ms=60_000)


def metadata_of(client: WireClient, name: str, auto_create: bool = False):
    request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name)],
                              allow_auto_topic_creation=auto_create)
    return client.request(request, 12).topics[0]


def test_other_connections_are_served_while_a_topic_is_created(kbroker_process):
    # the broker in its own process, so its event loop does not share a GIL with these client threads
    broker = kbroker_process()
    stop = threading.Event()
    round_trips: list[tuple[float, float]] = []
    seen: set[tuple[int, int]] = set()

    def other_client() -> None:
        with WireClient(broker.bootstrap) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3)
                topic = metadata_of(client, "wide")
                round_trips.append((started, time.perf_counter()))
                seen.add((topic.error_code, len(topic.partitions)))

    thread = threading.Thread(target=other_client)
    thread.start()
    try:
        time.sleep(0.2)
        with WireClient(broker.bootstrap, timeout=60) as client:
            started = time.perf_counter()
            result = client.request(create_request("wide", 200), 7).topics[0]
            finished = time.perf_counter()
        time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    assert result.error_code == 0
    creation = finished - started
    during = [end - begin for begin, end in round_trips if end > started and begin < finished]
    # the loop kept answering: many round trips, the longest far shorter than the creation
    # (before, one round trip waited for the whole creation)
    assert len(during) >= 5, (creation, during)
    assert max(during) < creation / 3, (creation, max(during))
    # never a half-made topic: unknown until its 200 partitions are durable, then whole
    assert seen <= {(UNKNOWN_TOPIC_OR_PARTITION, 0), (0, 200)}, seen
    with WireClient(broker.bootstrap) as client:
        assert len(metadata_of(client, "wide").partitions) == 200


def test_second_create_of_a_name_in_flight_gets_topic_already_exists(kbroker_process):
    broker = kbroker_process()
    with WireClient(broker.bootstrap, timeout=60) as first, WireClient(broker.bootstrap, timeout=60) as second:
        first.correlation_id += 1
        first.send_raw(encode_request(first.correlation_id, 7, create_request("twin", 200), "first"))
        time.sleep(0.01)  # the first request reaches the broker first; its 200 partitions take far longer
        answer = second.request(create_request("twin", 200), 7).topics[0]
        assert (answer.error_code, answer.error_message) == (TOPIC_ALREADY_EXISTS, "Topic 'twin' already exists.")
        # answered at once, while the first creation is still in flight (not after it, as Kafka does too)
        assert select.select([first.sock], [], [], 0)[0] == []
        correlation_id, response = decode_response(first.read_frame(), CT.API_KEY, 7)
        assert correlation_id == first.correlation_id and response.topics[0].error_code == 0
        assert len(metadata_of(second, "twin").partitions) == 200


def _concurrently(bootstrap: str, count: int, call) -> list:
    """call(client) from `count` connections at once; their results."""
    clients = [WireClient(bootstrap, timeout=60) for _ in range(count)]
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(clients[i])
        except Exception as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    return results


def test_concurrent_first_find_coordinator_creates_internal_topics_once(kbroker):
    def find(client: WireClient):
        groups = client.request(FindCoordinatorRequest(key_type=0, coordinator_keys=["g1", "g2"]), 4)
        txns = client.request(FindCoordinatorRequest(key_type=1, coordinator_keys=["tx"]), 4)
        return [c.error_code for c in groups.coordinators + txns.coordinators]

    assert _concurrently(kbroker.bootstrap, 6, find) == [[0, 0, 0]] * 6
    with WireClient(kbroker.bootstrap) as client:
        offsets = metadata_of(client, "__consumer_offsets")
        state = metadata_of(client, "__transaction_state")
    assert (offsets.error_code, len(offsets.partitions), offsets.is_internal) == (0, 50, True)
    assert (state.error_code, len(state.partitions), state.is_internal) == (0, 50, True)
    data = kbroker.broker.data_dir
    assert sum(name.startswith("__consumer_offsets-") for name in os.listdir(data)) == 50
    assert kbroker.broker.metadata.get("__consumer_offsets").topic_id == offsets.topic_id


def test_concurrent_auto_creation_by_metadata_creates_once(kbroker_factory):
    broker = kbroker_factory(**{"num.partitions": 20})
    answers = _concurrently(broker.bootstrap, 5, lambda client: metadata_of(client, "auto", auto_create=True))
    assert [(a.error_code, len(a.partitions)) for a in answers] == [(0, 20)] * 5
    assert len({a.topic_id for a in answers}) == 1


def test_broker_stopped_mid_creation_completes_it(kbroker_factory):
    broker = kbroker_factory()
    data = broker.broker.data_dir
    client = WireClient(broker.bootstrap, timeout=60)
    client.send_raw(encode_request(1, 7, create_request("halfway", 300), "t"))
    deadline = time.monotonic() + 30
    while not os.path.isdir(data / "halfway-0") and time.monotonic() < deadline:
        time.sleep(0.001)  # the worker thread has started creating the partitions
    broker.stop()  # cancels every request; the creation in flight is shielded and completes first
    client.close()
    broker.start()
    with WireClient(broker.bootstrap) as client:
        assert len(metadata_of(client, "halfway").partitions) == 300
    for partition in range(300):
        assert (data / f"halfway-{partition}" / "partition.metadata").is_file()
