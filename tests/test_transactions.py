"""Kafka transactions with real clients against a real broker: commit and abort, read_committed never
sees aborted or open transactional data (also with transactions interleaved on one partition, and
read by two different client implementations), consume-transform-produce, fencing by a second
producer with the same transactional.id, transaction timeouts, and a broker restart mid-transaction."""

from __future__ import annotations

import random
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from kbroker.protocol.messages import DescribeTransactionsRequest
from tests.kafka_wire import WireClient
from tests.test_bootstrap import create_topics_by_metadata


def txn_producer(bootstrap: str, transactional_id: str, **extra) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 0,
                         **extra})
    producer.init_transactions(30)
    return producer


def read_all(bootstrap: str, topic: str, isolation: str, *, settle: float = 1.5, partitions: int = 1,
             expected: int | None = None) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of everything a consumer with this isolation level gets, read until
    `expected` records came (or nothing new came for `settle` seconds)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{random.random()}",
                         "enable.auto.commit": False, "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + 30
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            messages = consumer.consume(1000, timeout=0.2)
            for m in messages:
                assert m.error() is None, m.error()
                got.append((m.partition(), m.offset(), m.value()))
            if messages:
                quiet_since = time.monotonic()
            if expected is not None and len(got) >= expected:
                break
            if expected is None and time.monotonic() - quiet_since > settle:
                break
    finally:
        consumer.close()
    return got


def values(records) -> list[bytes]:
    return [v for _, _, v in records]


def describe(bootstrap: str, transactional_id: str):
    with WireClient(bootstrap) as client:
        return client.request(DescribeTransactionsRequest(transactional_ids=[transactional_id]), 0).transaction_states[0]


def test_commit_and_abort_read_committed_and_uncommitted(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "payments")
    producer = txn_producer(kbroker.bootstrap, "payments-app")
    producer.begin_transaction()
    producer.produce("payments", b"aborted-1")
    producer.produce("payments", b"aborted-2")
    producer.flush()
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce("payments", b"committed-1")
    producer.produce("payments", b"committed-2")
    producer.commit_transaction(30)

    committed = read_all(kbroker.bootstrap, "payments", "read_committed", expected=2)
    assert values(committed) == [b"committed-1", b"committed-2"]
    # aborted data at 0-1, its ABORT marker at 2, committed data at 3-4, the COMMIT marker at 5
    assert [offset for _, offset, _ in committed] == [3, 4]
    uncommitted = read_all(kbroker.bootstrap, "payments", "read_uncommitted", expected=4)
    assert values(uncommitted) == [b"aborted-1", b"aborted-2", b"committed-1", b"committed-2"]

    consumer = Consumer({"bootstrap.servers": kbroker.bootstrap, "group.id": "offsets",
                         "isolation.level": "read_committed"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition("payments", 0), timeout=10, cached=False)
        assert (low, high) == (0, 6)
    finally:
        consumer.close()
    state = describe(kbroker.bootstrap, "payments-app")
    assert (state.error_code, state.transaction_state, state.topics) == (0, "CompleteCommit", [])


def test_open_transaction_holds_back_read_committed_until_it_ends(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "ledger")
    open_txn = txn_producer(kbroker.bootstrap, "slow-writer")
    plain = Producer({"bootstrap.servers": kbroker.bootstrap, "linger.ms": 0})
    plain.produce("ledger", b"before")
    plain.flush()
    open_txn.begin_transaction()
    open_txn.produce("ledger", b"in-flight")
    open_txn.flush()
    plain.produce("ledger", b"after")  # above the last stable offset while the transaction is open
    plain.flush()

    assert values(read_all(kbroker.bootstrap, "ledger", "read_committed")) == [b"before"]
    assert values(read_all(kbroker.bootstrap, "ledger", "read_uncommitted", expected=3)) == [
        b"before", b"in-flight", b"after"]
    open_txn.commit_transaction(30)
    assert values(read_all(kbroker.bootstrap, "ledger", "read_committed", expected=3)) == [
        b"before", b"in-flight", b"after"]


def test_interleaved_transactions_on_one_partition_never_leak_aborted_data(kbroker):
    """Several producers interleave transactions (and plain writes) on one partition; whatever the
    order of commits and aborts, read_committed gets exactly the committed and plain records."""
    create_topics_by_metadata(kbroker.bootstrap, "mixed")
    rng = random.Random(7)
    producers = [txn_producer(kbroker.bootstrap, f"writer-{i}") for i in range(3)]
    plain = Producer({"bootstrap.servers": kbroker.bootstrap, "linger.ms": 0, "enable.idempotence": True})
    expected: list[bytes] = []
    aborted: list[bytes] = []
    for round_ in range(6):
        for p in producers:
            p.begin_transaction()
        pending = {i: [] for i in range(len(producers))}
        for step in range(12):
            i = rng.randrange(len(producers) + 1)
            if i == len(producers):
                value = f"plain-{round_}-{step}".encode()
                plain.produce("mixed", value)
                plain.flush()
                expected.append(value)
                continue
            value = f"txn-{round_}-{i}-{step}".encode()
            producers[i].produce("mixed", value)
            producers[i].flush()
            pending[i].append(value)
        for i in rng.sample(range(len(producers)), len(producers)):
            if rng.random() < 0.5:
                producers[i].commit_transaction(30)
                expected.extend(pending[i])
            else:
                producers[i].abort_transaction(30)
                aborted.extend(pending[i])
    assert aborted, "the random schedule aborted nothing"

    committed = values(read_all(kbroker.bootstrap, "mixed", "read_committed", expected=len(expected)))
    assert sorted(committed) == sorted(expected)
    assert not set(committed) & set(aborted)
    everything = values(read_all(kbroker.bootstrap, "mixed", "read_uncommitted",
                                 expected=len(expected) + len(aborted)))
    assert sorted(everything) == sorted(expected + aborted)
    # read_committed keeps the log's order of the records it returns
    assert committed == [v for v in everything if v in set(expected)]

    # a second client implementation filters with the broker's aborted-transaction lists too
    aiokafka = pytest.importorskip("aiokafka")
    import asyncio

    async def read_aiokafka() -> list[bytes]:
        consumer = aiokafka.AIOKafkaConsumer("mixed", bootstrap_servers=kbroker.bootstrap,
                                             isolation_level="read_committed", auto_offset_reset="earliest",
                                             enable_auto_commit=False)
        await consumer.start()
        got: list[bytes] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < len(expected) and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    got.extend(r.value for r in records)
            await asyncio.sleep(0.5)
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(r.value for r in records)
        finally:
            await consumer.stop()
        return got

    assert asyncio.run(read_aiokafka()) == committed


def test_consume_transform_produce_commits_offsets_with_the_transaction(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "orders-in", "orders-out")
    source = Producer({"bootstrap.servers": kbroker.bootstrap})
    for i in range(10):
        source.produce("orders-in", f"order-{i}".encode())
    source.flush()

    consumer = Consumer({"bootstrap.servers": kbroker.bootstrap, "group.id": "enricher",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"})
    consumer.subscribe(["orders-in"])
    producer = txn_producer(kbroker.bootstrap, "enricher-txn")
    try:
        def process_batch(count: int, commit: bool) -> None:
            got = []
            deadline = time.monotonic() + 30
            while len(got) < count and time.monotonic() < deadline:
                got.extend(m for m in consumer.consume(count - len(got), timeout=1) if m.error() is None)
            assert len(got) == count
            producer.begin_transaction()
            for m in got:
                producer.produce("orders-out", m.value().upper())
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata(), 30)
            if commit:
                producer.commit_transaction(30)
            else:
                producer.abort_transaction(30)

        process_batch(6, commit=True)
        assert [tp.offset for tp in consumer.committed([TopicPartition("orders-in", 0)], timeout=10)] == [6]
        process_batch(4, commit=False)  # aborted: neither the output nor the offsets count
        assert [tp.offset for tp in consumer.committed([TopicPartition("orders-in", 0)], timeout=10)] == [6]
    finally:
        consumer.close()
    out = values(read_all(kbroker.bootstrap, "orders-out", "read_committed", expected=6))
    assert out == [f"ORDER-{i}".encode() for i in range(6)]


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "fenced")
    zombie = txn_producer(kbroker.bootstrap, "singleton")
    zombie.begin_transaction()
    zombie.produce("fenced", b"zombie")
    zombie.flush()
    first_epoch = describe(kbroker.bootstrap, "singleton").producer_epoch

    successor = txn_producer(kbroker.bootstrap, "singleton")  # aborts the zombie's transaction
    state = describe(kbroker.bootstrap, "singleton")
    assert state.producer_epoch == first_epoch + 2  # one bump to fence and abort, one for the new producer
    successor.begin_transaction()
    successor.produce("fenced", b"successor")
    successor.commit_transaction(30)

    with pytest.raises(KafkaException) as failure:
        zombie.produce("fenced", b"late")
        zombie.commit_transaction(10)
    assert failure.value.args[0].fatal() or "fenced" in str(failure.value).lower()
    assert values(read_all(kbroker.bootstrap, "fenced", "read_committed", expected=1)) == [b"successor"]
    assert b"late" not in values(read_all(kbroker.bootstrap, "fenced", "read_uncommitted"))


def test_a_transaction_left_open_times_out_and_is_aborted(kbroker):
    create_topics_by_metadata(kbroker.bootstrap, "forgotten")
    producer = txn_producer(kbroker.bootstrap, "forgetful", **{"transaction.timeout.ms": 1500})
    producer.begin_transaction()
    producer.produce("forgotten", b"never-committed")
    producer.flush()
    started = time.monotonic()
    epoch = describe(kbroker.bootstrap, "forgetful").producer_epoch
    while describe(kbroker.bootstrap, "forgetful").transaction_state != "CompleteAbort":
        assert time.monotonic() - started < 10, "the open transaction was not aborted"
        time.sleep(0.1)
    assert time.monotonic() - started >= 1.0
    state = describe(kbroker.bootstrap, "forgetful")
    assert state.producer_epoch == epoch + 1  # the timed-out producer is fenced

    plain = Producer({"bootstrap.servers": kbroker.bootstrap})
    plain.produce("forgotten", b"later")
    plain.flush()
    assert values(read_all(kbroker.bootstrap, "forgotten", "read_committed", expected=1)) == [b"later"]
    with pytest.raises(KafkaException):
        producer.commit_transaction(10)


def test_transaction_timeout_above_the_broker_maximum_is_refused(kbroker_factory):
    broker = kbroker_factory(**{"transaction.max.timeout.ms": 5000})
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "greedy",
                         "transaction.timeout.ms": 60000})
    with pytest.raises(KafkaException) as failure:
        producer.init_transactions(10)
    assert "INVALID_TRANSACTION_TIMEOUT" in str(failure.value) or "timeout" in str(failure.value).lower()


def test_broker_restart_mid_transaction(kbroker_process):
    broker = kbroker_process()
    create_topics_by_metadata(broker.bootstrap, "durable")
    producer = txn_producer(broker.bootstrap, "survivor")
    producer.begin_transaction()
    producer.produce("durable", b"aborted-before-restart")
    producer.flush()
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce("durable", b"open-across-restart")
    producer.flush()

    broker.restart()  # the transaction state, the open transaction and the aborted one are all reloaded
    assert describe(broker.bootstrap, "survivor").transaction_state == "Ongoing"
    assert values(read_all(broker.bootstrap, "durable", "read_committed")) == []
    producer.produce("durable", b"after-restart")
    producer.commit_transaction(30)
    assert values(read_all(broker.bootstrap, "durable", "read_committed", expected=2)) == [
        b"open-across-restart", b"after-restart"]

    broker.restart()  # aborted data stays invisible: the .txnindex is read back
    assert values(read_all(broker.bootstrap, "durable", "read_committed", expected=2)) == [
        b"open-across-restart", b"after-restart"]


def test_kill_mid_transaction_then_a_new_producer_aborts_it(kbroker_process):
    broker = kbroker_process()
    create_topics_by_metadata(broker.bootstrap, "crashy")
    producer = txn_producer(broker.bootstrap, "phoenix")
    producer.begin_transaction()
    producer.produce("crashy", b"lost")
    producer.flush()
    broker.kill()
    broker.start()
    assert describe(broker.bootstrap, "phoenix").transaction_state == "Ongoing"
    reborn = txn_producer(broker.bootstrap, "phoenix")
    assert describe(broker.bootstrap, "phoenix").transaction_state == "Empty"
    reborn.begin_transaction()
    reborn.produce("crashy", b"kept")
    reborn.commit_transaction(30)
    assert values(read_all(broker.bootstrap, "crashy", "read_committed", expected=1)) == [b"kept"]
