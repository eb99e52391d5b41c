"""Compacted topics with real clients against a broker process: the log cleaner (kbroker.log.cleaner)
keeps the latest value of every key, removes tombstones after delete.retention.ms, drops aborted
transactions, survives kill -9 in the middle of a segment swap, and keeps __consumer_offsets small.

The brokers clean fast: small segments rolled by segment.ms, a tiny min.cleanable.dirty.ratio and
log.cleaner.backoff.ms of 100 ms.
"""

from __future__ import annotations

import time

import pytest

from kbroker.log.segment_swap import CRASH_ENV
from kbroker.protocol.messages import DescribeLogDirsRequest
from tests.kafka_wire import WireClient

FAST_CLEANER = {"log.cleaner.backoff.ms": 100, "log.retention.check.interval.ms": 200,
                "log.segment.delete.delay.ms": 0}
COMPACTED = {"cleanup.policy": "compact", "segment.ms": "300", "min.cleanable.dirty.ratio": "0.01",
             "delete.retention.ms": "2000", "file.delete.delay.ms": "0"}


def create_topic(bootstrap, name, **configs):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, 1, 1, config={**COMPACTED, **configs})])
    futures[name].result(15)


def produce(bootstrap, topic, pairs, **config):
    """Send (key, value) pairs in order (value None: a tombstone); returns their offsets."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    offsets = {}

    def delivered(error, message, i):
        assert error is None, error
        offsets[i] = message.offset()

    for i, (key, value) in enumerate(pairs):
        producer.produce(topic, key=key, value=value, on_delivery=lambda e, m, i=i: delivered(e, m, i))
        producer.poll(0)
    assert producer.flush(30) == 0
    return [offsets[i] for i in range(len(pairs))]


def read_all(bootstrap, topic, **config):
    """Every record from offset 0 to the end: [(offset, key, value)]."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "audit", "enable.auto.commit": False, **config})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        if config.get("isolation.level") == "read_committed":
            high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        out, deadline = [], time.monotonic() + 30
        while time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                assert message.error() is None, message.error()
                out.append((message.offset(), message.key(), message.value()))
            position = consumer.position([TopicPartition(topic, 0)])[0].offset
            if position >= high or (out and out[-1][0] >= high - 1):
                break
        return out
    finally:
        consumer.close()


def latest_per_key(pairs, offsets):
    latest = {}
    for (key, value), offset in zip(pairs, offsets):
        latest[key] = (offset, key, value)
    return sorted(latest.values())


def wait_for(condition, timeout=30, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    return condition()


def roll_with(bootstrap, topic, key=b"~roll"):
    """Once segment.ms has passed, one more record rolls the active segment: all before it is cleanable."""
    time.sleep(0.4)
    return produce(bootstrap, topic, [(key, b"roll")])[0]


def log_dir_size(bootstrap, topic):
    with WireClient(bootstrap) as client:
        dirs = client.request(DescribeLogDirsRequest(topics=None), 4)
    return sum(p.partition_size for t in dirs.results[0].topics if t.name == topic for p in t.partitions)


def updates(rounds, keys, tombstones=()):
    pairs = [(b"user-%d" % k, b"profile-%d-v%d" % (k, r)) for r in range(rounds) for k in range(keys)]
    return pairs + [(b"user-%d" % k, None) for k in tombstones]


def test_a_consumer_from_zero_sees_the_latest_value_per_key_and_tombstones_go_after_delete_retention(kbroker_process):
    broker = kbroker_process(**FAST_CLEANER)
    create_topic(broker.bootstrap, "profiles")
    pairs = updates(rounds=40, keys=25, tombstones=(3, 7))
    offsets = produce(broker.bootstrap, "profiles", pairs)
    roll = roll_with(broker.bootstrap, "profiles")
    size_before = log_dir_size(broker.bootstrap, "profiles")
    expected = latest_per_key(pairs, offsets) + [(roll, b"~roll", b"roll")]

    cleaned_at = time.monotonic()
    assert wait_for(lambda: read_all(broker.bootstrap, "profiles") == expected), read_all(broker.bootstrap, "profiles")
    assert log_dir_size(broker.bootstrap, "profiles") < size_before / 10
    tombstones = [(o, k, v) for o, k, v in expected if v is None]
    assert len(tombstones) == 2
    # the tombstones stay for delete.retention.ms (2 s) after their cleaning
    if time.monotonic() - cleaned_at < 1.0:
        assert read_all(broker.bootstrap, "profiles") == expected
    live = [r for r in expected if r[2] is not None]
    assert wait_for(lambda: read_all(broker.bootstrap, "profiles") == live, timeout=20)
    # the cleaner said so in its log
    assert "Cleaned log profiles-0" in broker.log_path.read_text()


def test_keyless_records_are_refused_on_a_compacted_topic(kbroker_process):
    from confluent_kafka import KafkaError, Producer

    broker = kbroker_process(**FAST_CLEANER)
    create_topic(broker.bootstrap, "changelog")
    errors = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "retries": 0})
    producer.produce("changelog", value=b"who am I", on_delivery=lambda e, m: errors.append(e))
    producer.flush(10)
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD


def test_transactions_on_a_compacted_topic_aborted_gone_committed_kept(kbroker_process):
    from confluent_kafka import Producer

    broker = kbroker_process(**FAST_CLEANER)
    create_topic(broker.bootstrap, "accounts")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "bank", "linger.ms": 1})
    producer.init_transactions(10)
    committed, aborted = [], []
    for t in range(6):
        producer.begin_transaction()
        batch = [(b"acct-%d" % k, b"balance-%d-%d" % (k, t)) for k in range(5)]
        for key, value in batch:
            producer.produce("accounts", key=key, value=value)
        if t % 2:
            producer.abort_transaction(10)
            aborted += batch
        else:
            producer.commit_transaction(10)
            committed += batch
    committed_before = [(k, v) for _, k, v in read_all(broker.bootstrap, "accounts", **{"isolation.level": "read_committed"})]
    roll_with(broker.bootstrap, "accounts", key=b"acct-roll")
    expected = {k: v for k, v in committed}  # the last committed value per key
    expected[b"acct-roll"] = b"roll"

    def cleaned():
        seen = read_all(broker.bootstrap, "accounts", **{"isolation.level": "read_uncommitted"})
        return {k: v for _, k, v in seen} == expected and len(seen) == len(expected) and seen

    seen = wait_for(cleaned)
    assert seen, read_all(broker.bootstrap, "accounts", **{"isolation.level": "read_uncommitted"})
    assert not {v for _, _, v in seen} & {v for _, v in aborted}
    after = read_all(broker.bootstrap, "accounts", **{"isolation.level": "read_committed"})
    assert {k: v for _, k, v in after} == expected
    assert set((k, v) for _, k, v in after) <= set(committed_before) | {(b"acct-roll", b"roll")}


@pytest.mark.parametrize("step", ["cleaned", "swap", "deleted"])
def test_kill_9_during_a_segment_swap_loses_no_latest_value(kbroker_process, monkeypatch, step):
    broker = kbroker_process(**FAST_CLEANER, **{"log.cleaner.enable": "false"})
    create_topic(broker.bootstrap, "inventory", **{"delete.retention.ms": "600000"})  # the tombstone stays
    pairs = updates(rounds=30, keys=20, tombstones=(5,))
    offsets = produce(broker.bootstrap, "inventory", pairs)
    roll = roll_with(broker.bootstrap, "inventory")
    expected = latest_per_key(pairs, offsets) + [(roll, b"~roll", b"roll")]
    broker.stop()

    monkeypatch.setenv(CRASH_ENV, step)
    broker.overrides["log.cleaner.enable"] = "true"
    broker.start()
    assert wait_for(lambda: broker.process.poll() is not None, timeout=30), "the cleaner never reached " + step
    assert broker.process.returncode == -9
    monkeypatch.delenv(CRASH_ENV)
    broker.start()
    seen = read_all(broker.bootstrap, "inventory")
    assert latest_per_key([(k, v) for _, k, v in seen], [o for o, _, _ in seen]) == expected
    assert [o for o, _, _ in seen] == sorted(set(o for o, _, _ in seen))
    assert wait_for(lambda: read_all(broker.bootstrap, "inventory") == expected)


def committed_offset(bootstrap, group, topic="events"):
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    finally:
        consumer.close()


def test_consumer_offsets_shrink_after_thousands_of_commits_and_deleted_groups_stay_deleted(kbroker_process):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    broker = kbroker_process(**FAST_CLEANER, **{"offsets.topic.num.partitions": 1, "log.roll.ms": 300,
                                                "log.cleaner.min.cleanable.ratio": 0.1,
                                                "log.cleaner.delete.retention.ms": 500})
    create_topic(broker.bootstrap, "events", **{"cleanup.policy": "delete"})
    produce(broker.bootstrap, "events", [(b"k", b"v")])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "auditors", "enable.auto.commit": False})
    commits = 3000
    for i in range(commits - 1):
        consumer.commit(offsets=[TopicPartition("events", 0, i + 1)], asynchronous=False)
    leaving = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "leavers", "enable.auto.commit": False})
    leaving.commit(offsets=[TopicPartition("events", 0, 1)], asynchronous=False)
    leaving.close()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_consumer_groups(["leavers"])["leavers"].result(10)
    time.sleep(0.4)  # past log.roll.ms: the last commit rolls the segment, all before it is cleanable
    consumer.commit(offsets=[TopicPartition("events", 0, commits)], asynchronous=False)
    consumer.close()

    def offsets_size():
        return log_dir_size(broker.bootstrap, "__consumer_offsets")

    # 3000 commits wrote ~100 bytes each; the cleaner keeps the last one (and the active segment)
    assert wait_for(lambda: offsets_size() < 30_000, timeout=30), offsets_size()
    assert "Cleaned log __consumer_offsets-0" in broker.log_path.read_text()
    time.sleep(1.5)  # the deleted group's tombstones outlive delete.retention.ms and are cleaned away
    broker.restart()  # the coordinator replays the cleaned log
    assert committed_offset(broker.bootstrap, "auditors") == commits
    assert committed_offset(broker.bootstrap, "leavers") < 0  # no offset: the group stays deleted


def test_retention_deletes_old_segments_and_a_consumer_behind_resets_as_its_client_does(kbroker_process):
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    broker = kbroker_process(**FAST_CLEANER)
    create_topic(broker.bootstrap, "clicks", **{"cleanup.policy": "delete", "retention.ms": "1000"})
    produce(broker.bootstrap, "clicks", [(b"c", b"old-%d" % i) for i in range(50)])
    roll_with(broker.bootstrap, "clicks", key=b"c")

    def low_watermark():
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "probe"})
        try:
            return consumer.get_watermark_offsets(TopicPartition("clicks", 0), timeout=10, cached=False)[0]
        finally:
            consumer.close()

    assert wait_for(lambda: low_watermark() >= 50, timeout=20), low_watermark()
    start = low_watermark()
    produce(broker.bootstrap, "clicks", [(b"c", b"new")])

    def first_message(reset):
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"late-{reset}",
                             "auto.offset.reset": reset, "enable.auto.commit": False})
        consumer.assign([TopicPartition("clicks", 0, 5)])  # an offset retention deleted
        try:
            return wait_for(lambda: consumer.poll(0.5), timeout=15)
        finally:
            consumer.close()

    resumed = first_message("earliest")  # from the log start (which retention may move on meanwhile)
    assert resumed.error() is None and resumed.offset() >= start
    refused = first_message("error")
    assert refused.error() is not None and refused.error().code() == KafkaError._AUTO_OFFSET_RESET


def test_a_dying_cleaner_worker_costs_no_request_and_the_next_start_cleans(kbroker_process, monkeypatch):
    monkeypatch.setenv(CRASH_ENV, "worker")  # every cleaner worker process dies as it starts a segment
    broker = kbroker_process(**FAST_CLEANER)
    create_topic(broker.bootstrap, "sessions")
    pairs = updates(rounds=10, keys=10)
    offsets = produce(broker.bootstrap, "sessions", pairs)
    roll = roll_with(broker.bootstrap, "sessions")
    assert wait_for(lambda: "worker process died" in broker.log_path.read_text(), timeout=30)
    more = produce(broker.bootstrap, "sessions", [(b"user-1", b"still served")])  # the broker goes on
    everything = [(o, k, v) for (k, v), o in zip(pairs, offsets)] + [(roll, b"~roll", b"roll"),
                                                                      (more[0], b"user-1", b"still served")]
    assert read_all(broker.bootstrap, "sessions") == everything  # nothing cleaned, nothing lost
    monkeypatch.delenv(CRASH_ENV)
    broker.restart()
    expected = latest_per_key(pairs + [(b"user-1", b"still served")], offsets + more)
    roll_with(broker.bootstrap, "sessions", key=b"~roll2")
    assert wait_for(lambda: [r for r in read_all(broker.bootstrap, "sessions") if not r[1].startswith(b"~")]
                    == expected)


def test_the_java_producers_updates_are_compacted_to_the_latest_value_per_key(kbroker_process):
    """The same story with Kafka's Java producer writing (kafka-clients 4.4, compat/java)."""
    import subprocess
    from pathlib import Path

    broker = kbroker_process(**FAST_CLEANER)
    create_topic(broker.bootstrap, "java-profiles")
    run = Path(__file__).resolve().parent.parent / "compat" / "java" / "run"
    done = subprocess.run([str(run), "updates-producer", broker.bootstrap, "java-profiles", "30", "20", "4,9"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    acked = [line.split(" ", 2) for line in done.stdout.splitlines() if line.startswith("user-")]
    assert len(acked) == 30 * 20 + 2
    latest = {}
    for key, offset, value in acked:
        latest[key.encode()] = (int(offset), key.encode(), None if value == "null" else value.encode())
    roll = roll_with(broker.bootstrap, "java-profiles")
    expected = sorted(latest.values()) + [(roll, b"~roll", b"roll")]
    assert wait_for(lambda: read_all(broker.bootstrap, "java-profiles") == expected), \
        read_all(broker.bootstrap, "java-profiles")[:5]
    live = [r for r in expected if r[2] is not None]
    assert wait_for(lambda: read_all(broker.bootstrap, "java-profiles") == live, timeout=20)
