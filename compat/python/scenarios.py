"""Scenarios for the three Python clients. Names are `<library>/<scenario>`."""
from __future__ import annotations

import asyncio
import time

from compat.scenario import Skip, check, eq, scenario

# key, value, headers — null key, null value (tombstone), empty key/value, repeated header keys.
RECORDS = [
    (b"k0", b"v0", [("h1", b"a")]),
    (None, b"null-key", []),
    (b"tomb", None, []),
    (b"", b"", [("empty", b"")]),
    (b"k4", b"v" * 1000, [("dup", b"1"), ("dup", b"2")]),
]
COMPRESSIONS = ["gzip", "snappy", "lz4", "zstd"]
TIMEOUT = 20.0


def _norm_headers(h):
    return [(k, bytes(v) if v is not None else None) for k, v in (h or [])]


def check_records(got, expected=RECORDS, start_offset=0):
    """got: list of (offset, key, value, headers)."""
    eq(len(got), len(expected), "record count")
    for i, ((off, k, v, hs), (ek, ev, eh)) in enumerate(zip(got, expected)):
        eq(off, start_offset + i, f"offset of record {i}")
        eq(k, ek, f"key of record {i}")
        eq(v, ev, f"value of record {i}")
        eq(_norm_headers(hs), eh, f"headers of record {i}")


# ---------------------------------------------------------------------------------------------
# confluent-kafka (librdkafka)

def ck():
    import confluent_kafka
    import confluent_kafka.admin  # noqa: F401
    return confluent_kafka


def ck_produce(bootstrap, topic, records=RECORDS, **conf):
    k = ck()
    p = k.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **conf})
    errors = []
    for key, value, headers in records:
        p.produce(topic, value=value, key=key, headers=headers or None,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    left = p.flush(TIMEOUT)
    check(left == 0, f"{left} records not delivered within {TIMEOUT}s")
    check(not errors, f"delivery errors: {errors}")


def ck_consume(bootstrap, topic, n, offset=None, **conf):
    k = ck()
    c = k.Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader",
                    "enable.auto.commit": False, "auto.offset.reset": "earliest", **conf})
    try:
        c.assign([k.TopicPartition(topic, 0, k.OFFSET_BEGINNING if offset is None else offset)])
        got, deadline = [], time.monotonic() + TIMEOUT
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            check(m.error() is None, f"consume error: {m.error()}")
            got.append((m.offset(), m.key(), m.value(), m.headers()))
        return got
    finally:
        c.close()


@scenario("confluent-kafka/metadata")
def ck_metadata(ctx):
    k = ck()
    a = k.admin.AdminClient({"bootstrap.servers": ctx.bootstrap})
    md = a.list_topics(timeout=TIMEOUT)
    eq(len(md.brokers), ctx.brokers, "broker count")
    check(md.cluster_id, "cluster id missing")
    check(md.controller_id >= 0, f"controller id {md.controller_id}")
    # auto-creation via a producer's metadata request
    ck_produce(ctx.bootstrap, ctx.topic(), RECORDS[:1])
    md = a.list_topics(ctx.topic(), timeout=TIMEOUT)
    t = md.topics[ctx.topic()]
    check(t.error is None, f"topic error {t.error}")
    eq(list(t.partitions), [0], "partitions")
    check(t.partitions[0].leader in md.brokers, f"leader {t.partitions[0].leader} not among {list(md.brokers)}")


@scenario("confluent-kafka/produce-consume")
def ck_produce_consume(ctx):
    ck_produce(ctx.bootstrap, ctx.topic())
    check_records(ck_consume(ctx.bootstrap, ctx.topic(), len(RECORDS)))


for _codec in COMPRESSIONS:
    @scenario(f"confluent-kafka/compression-{_codec}")
    def _ck_comp(ctx, codec=_codec):
        ck_produce(ctx.bootstrap, ctx.topic(), **{"compression.type": codec})
        check_records(ck_consume(ctx.bootstrap, ctx.topic(), len(RECORDS)))


@scenario("confluent-kafka/idempotent-producer")
def ck_idempotent(ctx):
    ck_produce(ctx.bootstrap, ctx.topic(), **{"enable.idempotence": True, "acks": "all"})
    check_records(ck_consume(ctx.bootstrap, ctx.topic(), len(RECORDS)))


@scenario("confluent-kafka/admin-topics")
def ck_admin(ctx):
    k = ck()
    a = k.admin.AdminClient({"bootstrap.servers": ctx.bootstrap})
    t = ctx.topic()
    fs = a.create_topics([k.admin.NewTopic(t, 3, 1, config={"retention.ms": "123456"})],
                         operation_timeout=10, request_timeout=TIMEOUT)
    fs[t].result(TIMEOUT)
    deadline = time.monotonic() + 10  # KRaft Kafka answers CreateTopics before its metadata has the topic
    while t not in a.list_topics(timeout=TIMEOUT).topics and time.monotonic() < deadline:
        time.sleep(0.05)
    md = a.list_topics(timeout=TIMEOUT)
    check(t in md.topics, "created topic not listed")
    eq(sorted(md.topics[t].partitions), [0, 1, 2], "partitions")
    res = a.describe_configs([k.admin.ConfigResource("TOPIC", t)])
    cfg = list(res.values())[0].result(TIMEOUT)
    eq(cfg["retention.ms"].value, "123456", "retention.ms")
    eq(cfg["retention.ms"].source, k.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value, "retention.ms source")
    fs = a.create_topics([k.admin.NewTopic(t, 1, 1)], request_timeout=TIMEOUT)
    try:
        fs[t].result(TIMEOUT)
        raise AssertionError("creating an existing topic succeeded")
    except k.KafkaException as exc:
        eq(exc.args[0].code(), k.KafkaError.TOPIC_ALREADY_EXISTS, "error code")
    a.delete_topics([t], request_timeout=TIMEOUT)[t].result(TIMEOUT)
    deadline = time.monotonic() + 10
    while t in a.list_topics(timeout=TIMEOUT).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    check(t not in a.list_topics(timeout=TIMEOUT).topics, "deleted topic still listed")


@scenario("confluent-kafka/group-commit")
def ck_group(ctx):
    k = ck()
    t, g = ctx.topic(), ctx.group()
    ck_produce(ctx.bootstrap, t)
    c = k.Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": g, "enable.auto.commit": False,
                    "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
    try:
        c.subscribe([t])
        got, deadline = [], time.monotonic() + TIMEOUT
        while len(got) < 3 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m)
        eq(len(got), 3, "records consumed in the group")
        c.commit(message=got[2], asynchronous=False)
        eq([p.offset for p in c.committed([k.TopicPartition(t, 0)], timeout=TIMEOUT)], [3], "committed")
    finally:
        c.close()
    # a new member of the group resumes at the committed offset
    c = k.Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": g, "enable.auto.commit": False,
                    "auto.offset.reset": "earliest"})
    try:
        c.subscribe([t])
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                eq(m.offset(), 3, "first offset after rejoin")
                break
        else:
            raise AssertionError("no record after rejoining the group")
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# kafka-python

def kp_produce(bootstrap, topic, records=RECORDS, **conf):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, request_timeout_ms=15000, **conf)
    try:
        futs = [p.send(topic, key=k, value=v, headers=h) for k, v, h in records]
        p.flush(TIMEOUT)
        return [f.get(TIMEOUT) for f in futs]
    finally:
        p.close(5)


def kp_consume(bootstrap, topic, n):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                      request_timeout_ms=15000)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        got, deadline = [], time.monotonic() + TIMEOUT
        while len(got) < n and time.monotonic() < deadline:
            for recs in c.poll(500).values():
                got += [(r.offset, r.key, r.value, r.headers) for r in recs]
        return got
    finally:
        c.close()


@scenario("kafka-python/metadata")
def kp_metadata(ctx):
    from kafka import KafkaConsumer
    kp_produce(ctx.bootstrap, ctx.topic(), RECORDS[:1])
    c = KafkaConsumer(bootstrap_servers=ctx.bootstrap)
    try:
        check(ctx.topic() in c.topics(), "auto-created topic not listed")
        eq(c.partitions_for_topic(ctx.topic()), {0}, "partitions")
    finally:
        c.close()


@scenario("kafka-python/produce-consume")
def kp_produce_consume(ctx):
    metas = kp_produce(ctx.bootstrap, ctx.topic())
    eq([m.offset for m in metas], list(range(len(RECORDS))), "produce offsets")
    check_records(kp_consume(ctx.bootstrap, ctx.topic(), len(RECORDS)))


for _codec in COMPRESSIONS:
    @scenario(f"kafka-python/compression-{_codec}")
    def _kp_comp(ctx, codec=_codec):
        kp_produce(ctx.bootstrap, ctx.topic(), compression_type=codec)
        check_records(kp_consume(ctx.bootstrap, ctx.topic(), len(RECORDS)))


@scenario("kafka-python/admin-topics")
def kp_admin(ctx):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError
    a = KafkaAdminClient(bootstrap_servers=ctx.bootstrap, request_timeout_ms=15000)
    t = ctx.topic()
    try:
        a.create_topics([NewTopic(t, 2, 1, topic_configs={"cleanup.policy": "compact"})])
        deadline = time.monotonic() + 10  # KRaft Kafka answers CreateTopics before its metadata has it
        while t not in a.list_topics() and time.monotonic() < deadline:
            time.sleep(0.05)
        check(t in a.list_topics(), "created topic not listed")
        res = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)])  # non-default only
        entry = res["topic"][t].get("cleanup.policy") or {}
        eq((entry.get("value"), entry.get("config_source")), ("compact", "DYNAMIC_TOPIC_CONFIG"),
           "cleanup.policy (value, source)")
        try:
            a.create_topics([NewTopic(t, 1, 1)])
            raise AssertionError("creating an existing topic succeeded")
        except TopicAlreadyExistsError:
            pass
        a.delete_topics([t])
        deadline = time.monotonic() + 10
        while t in a.list_topics() and time.monotonic() < deadline:
            time.sleep(0.2)
        check(t not in a.list_topics(), "deleted topic still listed")
    finally:
        a.close()


@scenario("kafka-python/group-commit")
def kp_group(ctx):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    t, g = ctx.topic(), ctx.group()
    kp_produce(ctx.bootstrap, t)
    c = KafkaConsumer(t, bootstrap_servers=ctx.bootstrap, group_id=g, enable_auto_commit=False,
                      auto_offset_reset="earliest", request_timeout_ms=15000)
    try:
        got, deadline = [], time.monotonic() + TIMEOUT
        while len(got) < len(RECORDS) and time.monotonic() < deadline:
            for recs in c.poll(500).values():
                got += recs
        eq(len(got), len(RECORDS), "records consumed in the group")
        tp = TopicPartition(t, 0)
        c.commit({tp: OffsetAndMetadata(3, "", -1)})
        eq(c.committed(tp), 3, "committed offset")
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# aiokafka

def aio(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT * 2))


async def aio_produce(bootstrap, topic, records=RECORDS, **conf):
    from aiokafka import AIOKafkaProducer
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, request_timeout_ms=15000, **conf)
    await p.start()
    try:
        futs = [await p.send(topic, key=k, value=v, headers=h) for k, v, h in records]
        return [await f for f in futs]
    finally:
        await p.stop()


async def aio_consume(bootstrap, topic, n):
    from aiokafka import AIOKafkaConsumer, TopicPartition
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                         auto_offset_reset="earliest", request_timeout_ms=15000)
    await c.start()
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        got, deadline = [], time.monotonic() + TIMEOUT
        while len(got) < n and time.monotonic() < deadline:
            for recs in (await c.getmany(timeout_ms=500)).values():
                got += [(r.offset, r.key, r.value, list(r.headers)) for r in recs]
        return got
    finally:
        await c.stop()


@scenario("aiokafka/metadata")
def aio_metadata(ctx):
    async def go():
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        p = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap)
        await p.start()
        try:
            eq(await p.partitions_for(ctx.topic()), {0}, "partitions of an auto-created topic")
        finally:
            await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap)
        await c.start()
        try:
            check(ctx.topic() in await c.topics(), "auto-created topic not listed")
        finally:
            await c.stop()
    aio(go())


@scenario("aiokafka/produce-consume")
def aio_produce_consume(ctx):
    async def go():
        metas = await aio_produce(ctx.bootstrap, ctx.topic())
        eq([m.offset for m in metas], list(range(len(RECORDS))), "produce offsets")
        check_records(await aio_consume(ctx.bootstrap, ctx.topic(), len(RECORDS)))
    aio(go())


for _codec in COMPRESSIONS:
    @scenario(f"aiokafka/compression-{_codec}")
    def _aio_comp(ctx, codec=_codec):
        async def go():
            await aio_produce(ctx.bootstrap, ctx.topic(), compression_type=codec)
            check_records(await aio_consume(ctx.bootstrap, ctx.topic(), len(RECORDS)))
        aio(go())


@scenario("aiokafka/idempotent-producer")
def aio_idempotent(ctx):
    async def go():
        await aio_produce(ctx.bootstrap, ctx.topic(), enable_idempotence=True)
        check_records(await aio_consume(ctx.bootstrap, ctx.topic(), len(RECORDS)))
    aio(go())


@scenario("aiokafka/admin-topics")
def aio_admin(ctx):
    async def go():
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        a = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap, request_timeout_ms=15000)
        await a.start()
        t = ctx.topic()
        try:
            await a.create_topics([NewTopic(t, 2, 1)])
            deadline = time.monotonic() + 10  # KRaft Kafka answers CreateTopics before its metadata has it
            while t not in await a.list_topics() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            check(t in await a.list_topics(), "created topic not listed")
            await a.delete_topics([t])
            deadline = time.monotonic() + 10
            while t in await a.list_topics() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            check(t not in await a.list_topics(), "deleted topic still listed")
        finally:
            await a.close()
    aio(go())


@scenario("aiokafka/group-commit")
def aio_group(ctx):
    async def go():
        from aiokafka import AIOKafkaConsumer, TopicPartition
        t, g = ctx.topic(), ctx.group()
        await aio_produce(ctx.bootstrap, t)
        c = AIOKafkaConsumer(t, bootstrap_servers=ctx.bootstrap, group_id=g, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=15000)
        await c.start()
        try:
            got, deadline = [], time.monotonic() + TIMEOUT
            while len(got) < len(RECORDS) and time.monotonic() < deadline:
                for recs in (await c.getmany(timeout_ms=500)).values():
                    got += recs
            eq(len(got), len(RECORDS), "records consumed in the group")
            tp = TopicPartition(t, 0)
            await c.commit({tp: 3})
            eq(await c.committed(tp), 3, "committed offset")
        finally:
            await c.stop()
    aio(go())


__all__ = ["Skip"]
