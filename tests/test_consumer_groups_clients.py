"""KIP-848 consumer groups with a real client: confluent-kafka (librdkafka 2.12+) with
`group.protocol=consumer`. The members share the partitions without overlap and read every record
once, hand partitions over when one leaves or dies, follow a regular expression to a topic created
later, and find their committed offsets and their group again after a broker restart. The admin
client sees the group with its type."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tests.test_bootstrap import create_topics_by_metadata
from tests.test_groups_clients import wait_for

SESSION_MS = 6000
# Kafka's minimum heartbeat interval is 5 s; the tests lower it so that a rebalance takes well under
# a second, as a small `group.consumer.heartbeat.interval.ms` does on Kafka
BROKER_SETTINGS = {"num.partitions": 6, "group.consumer.heartbeat.interval.ms": 300,
                   "group.consumer.min.heartbeat.interval.ms": 300,
                   "group.consumer.session.timeout.ms": SESSION_MS,
                   "group.consumer.min.session.timeout.ms": SESSION_MS}

confluent_kafka = pytest.importorskip("confluent_kafka")
if tuple(int(x) for x in confluent_kafka.libversion()[0].split(".")[:2]) < (2, 12):
    pytest.skip("group.protocol=consumer needs librdkafka 2.12+", allow_module_level=True)


class Member:
    """A `group.protocol=consumer` consumer polled by its own thread. It commits every record it read
    before giving up its partition, so the next owner starts after it."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], **config):
        from confluent_kafka import Consumer

        self.assignment: set[tuple[str, int]] = set()
        self.read: list[tuple[str, int, int]] = []
        self.errors: list[str] = []
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "enable.auto.offset.store": False, **config})
        self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_revoke)
        self._stop = threading.Event()
        self._commit_requested = threading.Event()
        self._committed = threading.Event()
        self._closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_assign(self, consumer, partitions):
        self.assignment = self.assignment | {(p.topic, p.partition) for p in partitions}

    def _on_revoke(self, consumer, partitions):
        self._commit()
        self.assignment = self.assignment - {(p.topic, p.partition) for p in partitions}

    def _commit(self):
        from confluent_kafka import KafkaException
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if "_NO_OFFSET" not in str(exc):
                self.errors.append(str(exc))

    def commit(self, timeout: float = 15) -> None:
        """Commit what was read, from the polling thread (librdkafka serves a synchronous commit
        made from another thread only when it is not polling)."""
        self._committed.clear()
        self._commit_requested.set()
        assert self._committed.wait(timeout), "the commit did not complete"

    def _run(self):
        while not self._stop.is_set():
            if self._commit_requested.is_set():
                self._commit_requested.clear()
                self._commit()
                self._committed.set()
            message = self.consumer.poll(0.05)
            if message is None:
                continue
            if message.error():
                self.errors.append(str(message.error()))
                continue
            self.read.append((message.topic(), message.partition(), message.offset()))
            self.consumer.store_offsets(message)

    def partitions(self, topic: str = "orders") -> set[int]:
        return {p for t, p in self.assignment if t == topic}

    def close(self):
        """Stop polling, commit, and leave the group (a heartbeat with epoch -1)."""
        self._stop.set()
        self.thread.join(10)
        if not self._closed:
            self._closed = True
            self._commit()
            self.consumer.close()


def produce(bootstrap: str, topic: str, count: int, partitions: int = 6) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, f"{topic}-{i}".encode(), partition=i % partitions)
    assert producer.flush(10) == 0


def split(members: list[Member], partitions: int = 6) -> bool:
    owned = [p for m in members for p in m.partitions()]
    sizes = [len(m.partitions()) for m in members]
    return sorted(owned) == list(range(partitions)) and max(sizes) - min(sizes) <= 1


def read_once(members: list[Member], expected: int) -> bool:
    records = [r for m in members for r in m.read]
    assert len(records) == len(set(records)), "a record was read twice"
    return len(records) == expected


@pytest.fixture
def broker(kbroker_factory):
    broker = kbroker_factory(**BROKER_SETTINGS)
    create_topics_by_metadata(broker.bootstrap, "orders")
    return broker


def test_two_then_three_consumers_share_six_partitions_and_read_everything_once(broker):
    produce(broker.bootstrap, "orders", 300)
    members = [Member(broker.bootstrap, "shop", ["orders"]) for _ in range(2)]
    try:
        wait_for(lambda: split(members) and read_once(members, 300), 20,
                 "two members to share the partitions and read the first 300 records")
        members.append(Member(broker.bootstrap, "shop", ["orders"]))
        wait_for(lambda: split(members), 20, "three members to own two partitions each")
        produce(broker.bootstrap, "orders", 300)
        wait_for(lambda: read_once(members, 600), 20, "all 600 records, each read once")
        assert all(len(m.partitions()) == 2 for m in members)
        assert not [e for m in members for e in m.errors]
        group = broker.broker.group_coordinator.consumer.groups["shop"]
        assert group.state == "Stable" and len(group.members) == 3
    finally:
        for m in members:
            m.close()


def test_a_member_that_leaves_hands_its_partitions_over(broker):
    a, b = (Member(broker.bootstrap, "leave", ["orders"]) for _ in range(2))
    try:
        wait_for(lambda: split([a, b]), 20, "two members to share")
        b.close()
        left_at = time.monotonic()
        wait_for(lambda: a.partitions() == set(range(6)), 10, "the remaining member to take everything")
        assert time.monotonic() - left_at < 3  # a leave is at once, no session timeout
    finally:
        a.close()
        b.close()


CONSUMER_SCRIPT = textwrap.dedent("""
    import sys
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "group.protocol": "consumer"})
    c.subscribe([sys.argv[3]], on_assign=lambda c, ps: print("ASSIGNED", len(ps), flush=True))
    while True:
        c.poll(0.1)
""")


def test_a_killed_member_loses_its_partitions_within_the_session_timeout(broker):
    a = Member(broker.bootstrap, "killed", ["orders"])
    child = subprocess.Popen([sys.executable, "-c", CONSUMER_SCRIPT, broker.bootstrap, "killed", "orders"],
                             stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(a.partitions()) == 3 and len(broker.broker.group_coordinator.consumer.groups[
            "killed"].members) == 2, 20, "the subprocess member to take half the partitions")
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        killed_at = time.monotonic()
        wait_for(lambda: a.partitions() == set(range(6)), SESSION_MS / 1000 + 10, "the survivor to get everything")
        took = time.monotonic() - killed_at
        assert SESSION_MS / 1000 - 1 <= took <= SESSION_MS / 1000 + 3, took
    finally:
        if child.poll() is None:
            child.kill()
        a.close()


def test_a_regex_subscription_picks_up_a_topic_created_later(broker):
    create_topics_by_metadata(broker.bootstrap, "events-a")
    member = Member(broker.bootstrap, "regex", ["^events-.*"])
    try:
        wait_for(lambda: member.partitions("events-a") == set(range(6)), 20, "the matching topic's partitions")
        create_topics_by_metadata(broker.bootstrap, "events-b", "other")
        wait_for(lambda: member.partitions("events-b") == set(range(6)), 20, "the new topic's partitions")
        assert not member.partitions("other")
        group = broker.broker.group_coordinator.consumer.groups["regex"]
        # librdkafka sends its subscribed patterns joined into one regex
        assert [m.metadata.subscribed_topic_regex for m in group.members.values()] == ["(^events-.*)"]
    finally:
        member.close()


def test_committed_offsets_and_the_group_survive_a_broker_restart(kbroker_process):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    broker = kbroker_process(**{**BROKER_SETTINGS, "num.partitions": 3})
    create_topics_by_metadata(broker.bootstrap, "ledger")
    produce(broker.bootstrap, "ledger", 30, partitions=3)
    member = Member(broker.bootstrap, "durable", ["ledger"])
    try:
        wait_for(lambda: len(member.read) == 30, 20, "the member to read everything")
        member.commit()
        broker.restart()
        produce(broker.bootstrap, "ledger", 30, partitions=3)
        # the member goes on heartbeating with its epoch: it keeps its partitions and reads on
        wait_for(lambda: len(member.read) == 60, 30, "the member to read the records produced after the restart")
        assert len(set(member.read)) == 60 and member.partitions("ledger") == {0, 1, 2}
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        described = admin.describe_consumer_groups(["durable"], request_timeout=10)["durable"].result(15).members
        assert len(described) == 1 and {tp.partition for tp in described[0].assignment.topic_partitions} == {0, 1, 2}
        reader = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "durable"})  # not a member
        try:
            committed = reader.committed([TopicPartition("ledger", p) for p in range(3)], timeout=15)
        finally:
            reader.close()
        assert [tp.offset for tp in committed] == [10, 10, 10]
    finally:
        member.close()


def test_the_admin_client_lists_consumer_and_classic_groups_with_their_type(broker):
    from confluent_kafka import ConsumerGroupType
    from confluent_kafka.admin import AdminClient

    modern = Member(broker.bootstrap, "modern", ["orders"])
    classic = Member(broker.bootstrap, "old-school", ["orders"], **{"group.protocol": "classic"})
    try:
        wait_for(lambda: modern.partitions() == set(range(6)) and classic.partitions() == set(range(6)), 20,
                 "both groups' members to own the partitions")
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        listed = admin.list_consumer_groups(request_timeout=10).result()
        types = {g.group_id: g.type for g in listed.valid}
        assert types == {"modern": ConsumerGroupType.CONSUMER, "old-school": ConsumerGroupType.CLASSIC}
        only_modern = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}, request_timeout=10).result()
        assert [g.group_id for g in only_modern.valid] == ["modern"]
        described = admin.describe_consumer_groups(["modern", "old-school"], request_timeout=10)
        modern_group, classic_group = described["modern"].result(15), described["old-school"].result(15)
        assert (modern_group.type, classic_group.type) == (ConsumerGroupType.CONSUMER, ConsumerGroupType.CLASSIC)
        assert modern_group.partition_assignor == "uniform" and len(modern_group.members) == 1
    finally:
        modern.close()
        classic.close()


def test_kafka_consumer_groups_shows_both_kinds_with_their_type_and_assignor(broker):
    import shutil

    from compat.kafka import oracle

    if shutil.which("java") is None and not oracle.os.environ.get("JAVA_HOME"):
        pytest.skip("no java for Kafka's kafka-consumer-groups")
    try:
        oracle.install()
    except Exception as exc:  # no Maven, no network, no cached jars
        pytest.skip(f"Kafka jars not available: {exc}")
    modern = Member(broker.bootstrap, "modern", ["orders"])
    classic = Member(broker.bootstrap, "old-school", ["orders"], **{"group.protocol": "classic"})
    try:
        wait_for(lambda: modern.partitions() == set(range(6)) and classic.partitions() == set(range(6)), 20,
                 "both groups' members to own the partitions")

        def tool(*args) -> list[list[str]]:
            result = oracle.run_tool("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, *args,
                                     timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr
            return [line.split() for line in result.stdout.splitlines() if line.strip()]

        assert tool("--list", "--type") == [["GROUP", "TYPE"], ["modern", "Consumer"], ["old-school", "Classic"]]
        states = tool("--describe", "--all-groups", "--state")
        assert [row[:1] + row[-3:] for row in states if row[0] != "GROUP"] == [
            ["modern", "uniform", "Stable", "1"], ["old-school", "range", "Stable", "1"]]
        members = tool("--describe", "--group", "modern", "--members")
        assert members[1][0] == "modern" and members[1][-1] == "6"
    finally:
        modern.close()
        classic.close()


def test_an_empty_classic_group_is_upgraded_by_its_first_consumer_protocol_member(broker):
    produce(broker.bootstrap, "orders", 60)
    classic = Member(broker.bootstrap, "upgrade", ["orders"], **{"group.protocol": "classic"})
    try:
        wait_for(lambda: len(classic.read) == 60, 20, "the classic member to read everything")
    finally:
        classic.close()  # commits what it read and leaves: the classic group is Empty
    produce(broker.bootstrap, "orders", 60)
    modern = Member(broker.bootstrap, "upgrade", ["orders"])
    try:
        wait_for(lambda: len(modern.read) == 60, 20, "the consumer-protocol member to read the new records")
        assert min(offset for _, _, offset in modern.read) == 10  # it resumed at the classic group's offsets
        coordinator = broker.broker.group_coordinator
        assert "upgrade" in coordinator.consumer.groups and "upgrade" not in coordinator.groups
        # a classic member joining the consumer group while it has members is one of its classic members
        joined = Member(broker.bootstrap, "upgrade", ["orders"], **{"group.protocol": "classic"})
        try:
            wait_for(lambda: split([modern, joined]), 30, "the consumer-protocol and the classic member to share")
            assert [m.uses_classic_protocol for m in coordinator.consumer.groups["upgrade"].members.values()
                    ].count(True) == 1
        finally:
            joined.close()
    finally:
        modern.close()


def test_a_static_member_restarting_within_its_session_keeps_its_partitions(broker):
    def member(instance):
        return Member(broker.bootstrap, "static", ["orders"], **{"group.instance.id": instance})

    a, b = member("instance-a"), member("instance-b")
    b2 = None
    try:
        wait_for(lambda: split([a, b]), 20, "two static members to share")
        group = broker.broker.group_coordinator.consumer.groups["static"]
        epoch, before, kept = group.group_epoch, b.partitions(), a.partitions()
        b.close()  # a static member leaves with epoch -2: its partitions wait for its next instance
        wait_for(lambda: any(m.member_epoch == -2 for m in group.members.values()), 10, "the epoch -2 leave")
        b2 = member("instance-b")
        wait_for(lambda: b2.partitions(), 15, "the restarted static member's partitions")
        assert b2.partitions() == before and a.partitions() == kept
        assert group.group_epoch == epoch  # no rebalance happened
    finally:
        for m in (a, b, b2):
            if m is not None:
                m.close()
