"""Consumer groups with real clients (confluent-kafka/librdkafka, kafka-python, aiokafka): members
split the partitions with no overlap, hand them over when one leaves or dies, keep committed offsets
across a broker restart, rebalance incrementally with cooperative-sticky, and a static member that
comes back within its session timeout keeps its partitions with no rebalance."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tests.test_bootstrap import create_topics_by_metadata

SESSION_MS = 6000  # Kafka's group.min.session.timeout.ms


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def split(assignments: list[set[int]], partitions: int) -> bool:
    """Every partition owned by exactly one member, and every member owns at least one."""
    owned = [p for a in assignments for p in a]
    return sorted(owned) == list(range(partitions)) and all(assignments)


class ConfluentMember:
    """A librdkafka consumer polled by its own thread; `assignment` is what it owns right now."""

    def __init__(self, bootstrap: str, group: str, topic: str, **config):
        from confluent_kafka import Consumer

        self.assignment: set[int] = set()
        self.revoked: list[set[int]] = []
        self.assigned: list[set[int]] = []
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 300,
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False, **config})
        self.cooperative = config.get("partition.assignment.strategy") == "cooperative-sticky"
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._stop = threading.Event()
        self._closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_assign(self, consumer, partitions):
        got = {p.partition for p in partitions}
        self.assigned.append(got)
        self.assignment = self.assignment | got if self.cooperative else got

    def _on_revoke(self, consumer, partitions):
        lost = {p.partition for p in partitions}
        self.revoked.append(lost)
        self.assignment = self.assignment - lost

    def _run(self):
        while not self._stop.is_set():
            self.consumer.poll(0.05)

    def stop_polling(self):
        self._stop.set()
        self.thread.join(10)

    def close(self):
        """close(): commits nothing here, leaves the group (LeaveGroup) unless static."""
        self.stop_polling()
        if not self._closed:
            self._closed = True
            self.consumer.close()


@pytest.fixture
def broker(kbroker_factory):
    broker = kbroker_factory(**{"num.partitions": 6})
    create_topics_by_metadata(broker.bootstrap, "orders")
    return broker


def test_confluent_two_members_split_then_one_leaves_and_hands_over(broker):
    a = ConfluentMember(broker.bootstrap, "g", "orders")
    b = None
    try:
        wait_for(lambda: a.assignment == set(range(6)), 15, "the first member to own all partitions")
        b = ConfluentMember(broker.bootstrap, "g", "orders")
        wait_for(lambda: split([a.assignment, b.assignment], 6), 15, "both members to share the partitions")
        b.close()
        wait_for(lambda: a.assignment == set(range(6)), 10, "the remaining member to take everything back")
    finally:
        a.close()
        if b is not None:
            b.close()


def test_kafka_python_three_members_split_without_overlap(broker):
    from kafka import KafkaConsumer

    stop = threading.Event()
    consumers = [KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="kp", session_timeout_ms=SESSION_MS,
                               heartbeat_interval_ms=300, enable_auto_commit=False, consumer_timeout_ms=100)
                 for _ in range(3)]
    for c in consumers:
        c.subscribe(["orders"])

    def poll(c):
        while not stop.is_set():
            c.poll(timeout_ms=50)

    threads = [threading.Thread(target=poll, args=(c,), daemon=True) for c in consumers]
    for t in threads:
        t.start()
    try:
        def assignments():
            try:
                return [{tp.partition for tp in c.assignment()} for c in consumers]
            except RuntimeError:  # the set changed under us while a rebalance runs
                return None
        wait_for(lambda: (a := assignments()) and split(a, 6) and all(len(x) == 2 for x in a), 30,
                 "three kafka-python members to own two partitions each")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for c in consumers:
            c.close()


def test_aiokafka_two_members_split_and_commit(broker):
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    async def story():
        members = [AIOKafkaConsumer("orders", bootstrap_servers=broker.bootstrap, group_id="aio",
                                    session_timeout_ms=SESSION_MS, heartbeat_interval_ms=300,
                                    enable_auto_commit=False) for _ in range(2)]
        for m in members:
            await m.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                await asyncio.gather(*(m.getmany(timeout_ms=50) for m in members))
                sets = [{tp.partition for tp in m.assignment()} for m in members]
                if split(sets, 6):
                    break
            else:
                raise AssertionError(f"aiokafka members never split the partitions: {sets}")
            owner = members[0]
            mine = sorted(owner.assignment())
            await owner.commit({tp: 7 for tp in mine})
            for tp in mine:
                assert await members[1].committed(tp) == 7
            assert await members[1].committed(TopicPartition("orders", sorted(sets[1])[0])) is None
        finally:
            for m in members:
                await m.stop()

    asyncio.run(story())


CONSUMER_SCRIPT = textwrap.dedent("""
    import sys
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": %d,
                  "heartbeat.interval.ms": 300, "enable.auto.commit": False})
    c.subscribe([sys.argv[3]], on_assign=lambda c, ps: print("ASSIGNED", len(ps), flush=True))
    while True:
        c.poll(0.1)
""" % SESSION_MS)


def test_a_killed_member_loses_its_partitions_after_the_session_timeout(broker):
    a = ConfluentMember(broker.bootstrap, "killed", "orders")
    child = subprocess.Popen([sys.executable, "-c", CONSUMER_SCRIPT, broker.bootstrap, "killed", "orders"],
                             stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: split([a.assignment, set(range(6)) - a.assignment], 6) and len(a.assignment) == 3, 20,
                 "the subprocess member to take half the partitions")
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        killed_at = time.monotonic()
        wait_for(lambda: a.assignment == set(range(6)), SESSION_MS / 1000 + 10, "the survivor to get everything")
        took = time.monotonic() - killed_at
        # no LeaveGroup came: only the session timeout tells the coordinator
        assert SESSION_MS / 1000 - 1 <= took <= SESSION_MS / 1000 + 6, took
    finally:
        if child.poll() is None:
            child.kill()
        a.close()


def test_committed_offsets_survive_a_broker_restart(kbroker_process):
    from confluent_kafka import Consumer, TopicPartition

    broker = kbroker_process(**{"num.partitions": 3})
    create_topics_by_metadata(broker.bootstrap, "ledger")
    member = ConfluentMember(broker.bootstrap, "durable", "ledger")
    try:
        wait_for(lambda: member.assignment == {0, 1, 2}, 15, "the member's assignment")
        member.stop_polling()
        member.consumer.commit(offsets=[TopicPartition("ledger", p, 10 + p) for p in range(3)], asynchronous=False)
    finally:
        member.close()
    broker.restart()
    reader = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "durable"})
    try:
        committed = reader.committed([TopicPartition("ledger", p) for p in range(3)], timeout=15)
        assert [(tp.partition, tp.offset) for tp in committed] == [(0, 10), (1, 11), (2, 12)]
    finally:
        reader.close()


def test_cooperative_sticky_rebalances_incrementally(broker):
    config = {"partition.assignment.strategy": "cooperative-sticky"}
    a = ConfluentMember(broker.bootstrap, "coop", "orders", **config)
    b = c = None
    try:
        wait_for(lambda: a.assignment == set(range(6)), 15, "the first member to own all partitions")
        b = ConfluentMember(broker.bootstrap, "coop", "orders", **config)
        wait_for(lambda: split([a.assignment, b.assignment], 6), 20, "two cooperative members to share")
        # a gave up only what b took; it never went through an empty assignment
        assert a.revoked and all(r and r != set(range(6)) for r in a.revoked), a.revoked
        kept = set(a.assignment)
        c = ConfluentMember(broker.bootstrap, "coop", "orders", **config)
        wait_for(lambda: split([a.assignment, b.assignment, c.assignment], 6)
                 and all(len(x) == 2 for x in (a.assignment, b.assignment, c.assignment)), 20,
                 "three cooperative members to own two partitions each")
        assert a.assignment <= kept  # sticky: a kept partitions it already had
    finally:
        for m in (a, b, c):
            if m is not None:
                m.close()


def test_a_static_member_restarting_within_its_session_keeps_its_partitions(broker):
    def member(instance):
        return ConfluentMember(broker.bootstrap, "static", "orders", **{"group.instance.id": instance})

    a, b = member("instance-a"), member("instance-b")
    b2 = None
    try:
        wait_for(lambda: split([a.assignment, b.assignment], 6) and len(a.assignment) == 3, 20,
                 "two static members to share")
        coordinator = broker.broker.group_coordinator
        generation = coordinator.groups["static"].generation_id
        before = set(b.assignment)
        revoked_before = len(a.revoked)
        b.close()  # a static member's close sends no LeaveGroup
        time.sleep(1)
        b2 = member("instance-b")
        wait_for(lambda: b2.assignment, 15, "the restarted static member's assignment")
        assert b2.assignment == before
        time.sleep(1)
        assert coordinator.groups["static"].generation_id == generation  # no rebalance happened
        assert len(a.revoked) == revoked_before and a.assignment == set(range(6)) - before
    finally:
        for m in (a, b, b2):
            if m is not None:
                m.close()
