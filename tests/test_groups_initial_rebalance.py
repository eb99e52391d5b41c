"""A new group's first rebalance (group.initial.rebalance.delay.ms), as Kafka does it.

- With a delay, members joining within it are all in the first generation: librdkafka consumers
  started together get their partitions once, in generation 1, with no second rebalance.
- With no delay (the test and development setting), the first JoinGroup completes the join phase
  at once — but, as in Kafka, where the expired timer's operation queues behind the requests the
  coordinator already holds, every JoinGroup already received by then is taken into that generation
  first. Real clients do not arrive that close together (each first gets a member id, KIP-394), so
  they are checked on the wire: the broker's event loop is held while the other joins arrive.
"""

from __future__ import annotations

import threading
import time

from kbroker.protocol.codec import decode_response, encode_request
from kbroker.protocol.errors import ErrorCode as E
from kbroker.protocol.messages import JoinGroupRequest
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata
from tests.test_groups_clients import ConfluentMember, split, wait_for
from tests.test_groups_wire import join, subscription


def test_consumers_starting_together_share_the_first_generation(kbroker_factory):
    broker = kbroker_factory(**{"group.initial.rebalance.delay.ms": 1000, "num.partitions": 8})
    create_topics_by_metadata(broker.bootstrap, "orders")
    started = time.monotonic()
    members = [ConfluentMember(broker.bootstrap, "together", "orders", **{"partition.assignment.strategy": "range"})
               for _ in range(4)]
    try:
        wait_for(lambda: split([m.assignment for m in members], 8) and all(len(m.assignment) == 2 for m in members),
                 30, "four members with two partitions each")
        assert time.monotonic() - started >= 1.0  # the delay was waited
        group = broker.broker.group_coordinator.groups["together"]
        assert (group.generation_id, len(group.members)) == (1, 4)
        assert [len(m.assigned) for m in members] == [1, 1, 1, 1]  # one assignment each, no second round
        assert [m.revoked for m in members] == [[]] * 4
    finally:
        for m in members:
            m.close()


def test_joins_received_before_the_zero_delay_rebalance_completes_are_in_its_generation(kbroker, monkeypatch):
    create_topics_by_metadata(kbroker.bootstrap, "t")
    clients = [WireClient(kbroker.bootstrap, timeout=20) for _ in range(4)]
    try:
        member_ids = []
        for c in clients:
            first = join(c, "zero")
            assert first.error_code == E.MEMBER_ID_REQUIRED
            member_ids.append(first.member_id)

        # the broker's event loop is held inside the first member's JoinGroup while the others arrive
        coordinator = kbroker.broker.group_coordinator
        real_join_group = coordinator.join_group
        inside, release = threading.Event(), threading.Event()

        def join_group(**kwargs):
            if kwargs["member_id"] and not inside.is_set():
                inside.set()
                release.wait(10)
            return real_join_group(**kwargs)

        monkeypatch.setattr(coordinator, "join_group", join_group)
        for i, (c, member_id) in enumerate(zip(clients, member_ids)):
            c.send_raw(encode_request(100 + i, 9, JoinGroupRequest(
                group_id="zero", session_timeout_ms=6000, rebalance_timeout_ms=6000, member_id=member_id,
                protocol_type="consumer",
                protocols=[JoinGroupRequest.JoinGroupRequestProtocol("range", subscription("t"))]), "wire-test"))
            if i == 0:
                assert inside.wait(10)
        time.sleep(0.1)  # the three joins are in the broker's sockets
        release.set()

        responses = [decode_response(c.read_frame(), JoinGroupRequest.API_KEY, 9)[1] for c in clients]
        assert [(r.error_code, r.generation_id) for r in responses] == [(0, 1)] * 4
        (leader,) = [r for r in responses if r.members]
        assert sorted(m.member_id for m in leader.members) == sorted(member_ids)
    finally:
        for c in clients:
            c.close()
