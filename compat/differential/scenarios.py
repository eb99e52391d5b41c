"""Differential scenarios: each runs against one broker and returns what a client observes.

A scenario is `fn(b: Target) -> observation` (plain data). It runs against Apache Kafka, then against
kbroker, with the same topic names; both observations are normalised (normalize.py) and compared.
`b.expect(cond, msg)` states what Kafka itself must do — a failed expectation against Kafka means the
scenario is wrong.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from kbroker.protocol import compression as comp
from kbroker.protocol import records as rec
from kbroker.protocol.messages.api_versions import ApiVersionsRequest
from kbroker.protocol.messages.create_topics import CreateTopicsRequest
from kbroker.protocol.messages.describe_configs import DescribeConfigsRequest
from kbroker.protocol.messages.fetch import FetchRequest
from kbroker.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest
from kbroker.protocol.messages.init_producer_id import InitProducerIdRequest
from kbroker.protocol.messages.list_offsets import ListOffsetsRequest
from kbroker.protocol.messages.metadata import MetadataRequest
from kbroker.protocol.messages.produce import ProduceRequest

from .wire import Closed, Wire, decode_records, plain

V_PRODUCE, V_FETCH, V_LIST, V_META = 9, 12, 8, 12


@dataclass
class Target:
    name: str        # "kafka" | "kbroker"
    bootstrap: str
    prefix: str
    scenario: str = ""

    def topic(self, suffix: str = "") -> str:
        t = f"{self.prefix}-{self.scenario}"
        return f"{t}-{suffix}" if suffix else t

    def wire(self) -> Wire:
        return Wire(self.bootstrap)

    def __post_init__(self):
        self.failed: list[str] = []

    def expect(self, cond: bool, msg: str) -> None:
        """What Apache Kafka must do; collected (the observation is still returned and logged)."""
        if self.name == "kafka" and not cond:
            self.failed.append(msg)


SCENARIOS: dict = {}


def scenario(name):
    def reg(fn):
        SCENARIOS[name] = fn
        return fn
    return reg


# ---------------------------------------------------------------------------------------------
# helpers

def now_ms() -> int:
    return int(time.time() * 1000)


def batch(records, **kw) -> bytes:
    return rec.build_batch([r if isinstance(r, rec.Record) else rec.Record(*r) for r in records], **kw)


RECORDS = [
    rec.Record(b"k0", b"v0", (("h1", b"a"),)),
    rec.Record(None, b"null-key"),
    rec.Record(b"tomb", None),
    rec.Record(b"", b"", (("empty", b""), ("nullv", None))),
    rec.Record(b"k4", b"v" * 1000, (("dup", b"1"), ("dup", b"2"))),
]


def produce(w: Wire, topic: str, data: bytes | None, partition: int = 0, acks: int = -1,
            version: int = V_PRODUCE, transactional_id=None) -> dict:
    req = ProduceRequest(transactional_id=transactional_id, acks=acks, timeout_ms=10000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.PartitionProduceData(index=partition, records=data)])])
    if acks == 0:
        w.send(req, version)
        return {"acks0": "no response expected"}
    resp = w.request(req, version)
    return plain(resp)


def p0(produce_resp: dict) -> dict:
    return produce_resp["responses"][0]["partition_responses"][0]


def fetch(w: Wire, topic: str, offset: int = 0, partition: int = 0, max_wait_ms: int = 0, min_bytes: int = 0,
          max_bytes: int = 50 * 1024 * 1024, partition_max_bytes: int = 1024 * 1024, isolation_level: int = 0,
          version: int = V_FETCH) -> dict:
    req = FetchRequest(max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=max_bytes,
                       isolation_level=isolation_level, session_id=0, session_epoch=-1, topics=[
                           FetchRequest.FetchTopic(topic=topic, partitions=[FetchRequest.FetchPartition(
                               partition=partition, fetch_offset=offset, partition_max_bytes=partition_max_bytes)])])
    resp = w.request(req, version)
    out = plain(resp)
    for t, tr in zip(out["responses"], resp.responses):
        for p, pr in zip(t["partitions"], tr.partitions):
            p["records"] = decode_records(pr.records)
    return out


def f0(fetch_resp: dict) -> dict:
    return fetch_resp["responses"][0]["partitions"][0]


def list_offsets(w: Wire, topic: str, timestamp: int, partition: int = 0, version: int = V_LIST,
                 isolation_level: int = 0) -> dict:
    req = ListOffsetsRequest(replica_id=-1, isolation_level=isolation_level, timeout_ms=10000, topics=[
        ListOffsetsRequest.ListOffsetsTopic(name=topic, partitions=[
            ListOffsetsRequest.ListOffsetsPartition(partition_index=partition, timestamp=timestamp)])])
    return plain(w.request(req, version))["topics"][0]["partitions"][0]


def metadata(w: Wire, topics: list[str] | None, auto_create: bool = True, version: int = V_META) -> dict:
    req = MetadataRequest(topics=None if topics is None else [MetadataRequest.MetadataRequestTopic(name=t)
                                                               for t in topics],
                          allow_auto_topic_creation=auto_create)
    return plain(w.request(req, version))


def ensure_topic(w: Wire, topic: str, timeout: float = 10) -> dict:
    """Auto-create via Metadata and wait until it has a leader; returns the settled topic entry."""
    deadline = time.monotonic() + timeout
    while True:
        md = metadata(w, [topic])
        t = md["topics"][0]
        if t["error_code"] == 0 and t["partitions"] and all(p["leader_id"] >= 0 for p in t["partitions"]):
            return t
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} not ready: {t}")
        time.sleep(0.05)


def create_topics(w: Wire, topics: list[tuple], validate_only=False, version=7) -> list[dict]:
    """topics: (name, partitions, rf, {config: value})."""
    req = CreateTopicsRequest(timeout_ms=10000, validate_only=validate_only, topics=[
        CreateTopicsRequest.CreatableTopic(name=n, num_partitions=p, replication_factor=rf, configs=[
            CreateTopicsRequest.CreatableTopicConfig(name=k, value=v) for k, v in (cfg or {}).items()])
        for n, p, rf, cfg in topics])
    return plain(w.request(req, version))["topics"]


def describe_configs(w: Wire, rtype: int, name: str, keys=None, synonyms=True, version=4) -> list[dict]:
    req = DescribeConfigsRequest(include_synonyms=synonyms, include_documentation=False, resources=[
        DescribeConfigsRequest.DescribeConfigsResource(resource_type=rtype, resource_name=name,
                                                       configuration_keys=keys)])
    return plain(w.request(req, version))["results"]


def wait_leader(b: Target, topic: str) -> None:
    with b.wire() as w:
        ensure_topic(w, topic)


def relative_times(obj, base: int, key: str | None = None):
    """Timestamps a scenario chose, relative to its base, so runs at different times compare."""
    if isinstance(obj, dict):
        return {k: relative_times(v, base, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relative_times(v, base) for v in obj]
    if key in ("timestamp", "base_timestamp", "max_timestamp") and isinstance(obj, int) \
            and abs(obj - base) < 86_400_000:
        return f"base{obj - base:+d}"
    return obj


def records_of(fetch_partition: dict) -> list:
    return [r for bt in fetch_partition["records"].get("batches", []) for r in bt["records"]]


# ---------------------------------------------------------------------------------------------
# scenarios

@scenario("api-versions-unsupported-version")
def api_versions_unsupported(b):
    with b.wire() as w:
        w.send(ApiVersionsRequest(), 99)
        frame = w.read_frame()
    # Kafka answers an unknown ApiVersions version with error 35 and a v0 body
    import struct
    cid, err = struct.unpack_from(">ih", frame)
    b.expect(err == 35, f"error {err}")
    return {"error_code": err, "body_is_v0_with_ranges": len(frame) > 10}


@scenario("metadata-auto-create")
def metadata_auto_create(b):
    t = b.topic()
    with b.wire() as w:
        first = metadata(w, [t])["topics"][0]
        settled = ensure_topic(w, t)
        md = metadata(w, [t])
    b.expect(len(settled["partitions"]) == 1, "num.partitions=1")
    # Kafka 4.4 answers the creating request with UNKNOWN_TOPIC_OR_PARTITION (3) (older Kafka:
    # LEADER_NOT_AVAILABLE (5)) and no partitions; an answer with the new topic ready (0) is as good
    # for every client (they retry on 3 and 5), so the three count as the same observation.
    first_answer = "creating" if first["error_code"] in (0, 3, 5) else first
    return {"first_answer": first_answer, "settled": md}


@scenario("metadata-unknown-topic-no-auto-create")
def metadata_unknown(b):
    with b.wire() as w:
        md = metadata(w, [b.topic()], auto_create=False)
        md_v0 = None
    b.expect(md["topics"][0]["error_code"] == 3, "UNKNOWN_TOPIC_OR_PARTITION")
    return {"v12": md["topics"], "v0": md_v0}


@scenario("metadata-versions")
def metadata_versions(b):
    t = b.topic()
    wait_leader(b, t)
    out = {}
    with b.wire() as w:
        for v in (0, 1, 4, 7, 9, 10, 12):
            md = metadata(w, [t], version=v)
            out[f"v{v}"] = {"brokers": md["brokers"], "controller_id": md.get("controller_id"),
                            "cluster_id": md.get("cluster_id"), "topics": md["topics"]}
    return out


@scenario("invalid-topic-names")
def invalid_topic_names(b):
    names = ["bad name", "bad/name", "a" * 250, ".", "..", "ünïcode", ""]
    out = {}
    with b.wire() as w:
        for n in names:
            try:
                md = metadata(w, [n])
                tp = md["topics"][0]
                out[n[:20]] = {"error_code": tp["error_code"], "partitions": len(tp["partitions"])}
            except Closed as exc:
                out[n[:20]] = f"closed: {exc}"
                w = b.wire()
    b.expect(out["bad name"]["error_code"] == 17, "INVALID_TOPIC_EXCEPTION for a name with a space")
    return out


@scenario("create-topics-over-the-controller-bounds")
def create_topics_over_bounds(b):
    """Kafka's controller refuses a request over 10,000 partitions, or over 10,000 metadata records
    (topic + partitions + configs), whole: POLICY_VIOLATION with its message for every topic."""
    t = b.topic
    out = {}
    with b.wire() as w:
        def answer(topics, validate_only=True):
            return [(x["name"] == n, x["error_code"], x["error_message"])
                    for x, (n, *_) in zip(create_topics(w, topics, validate_only), topics)]
        out["partitions"] = answer([(t("a"), 10_000, 1, None), (t("b"), -1, 1, None), (t("bad!"), 1, 1, None)])
        out["records"] = answer([(t("a"), 9_999, 1, {"retention.ms": "1000"})])
        out["at-the-bound"] = answer([(t("a"), 9_999, 1, None)])
        out["two-topics"] = answer([(t("a"), 5_000, 1, None), (t("b"), 5_000, 1, None)])
    b.expect(out["partitions"][0][1] == 44, "POLICY_VIOLATION for 10,001 partitions")
    b.expect(out["at-the-bound"][0][1] == 0, "9,999 partitions + 1 topic record are within the bound")
    return out


@scenario("produce-fetch-records")
def produce_fetch(b):
    t = b.topic()
    wait_leader(b, t)
    ts = now_ms() - 5000
    with b.wire() as w:
        pr = produce(w, t, batch(RECORDS, now_ms=ts))
        fr = fetch(w, t)
    b.expect(p0(pr)["error_code"] == 0, f"produce error {p0(pr)}")
    b.expect(len(records_of(f0(fr))) == 5, "5 records fetched")
    return {"produce": pr, "fetch": fr}


for _codec in ("gzip", "snappy", "lz4", "zstd"):
    @scenario(f"compression-{_codec}")
    def _compression(b, codec=_codec):
        t = b.topic()
        wait_leader(b, t)
        ts = now_ms() - 5000
        big = [rec.Record(b"k%d" % i, (b"%d-" % i) * 300) for i in range(50)]
        with b.wire() as w:
            pr = produce(w, t, batch(RECORDS + big, compression_type=comp.BY_NAME[codec], now_ms=ts))
            fr = fetch(w, t)
        part = f0(fr)
        b.expect(p0(pr)["error_code"] == 0, f"produce error {p0(pr)}")
        b.expect(len(records_of(part)) == 55, "55 records")
        # compressed sizes depend on the compressor; what clients see is codec and records
        for bt in part["records"]["batches"]:
            bt.pop("size")
        return {"produce": pr, "fetch": fr}


@scenario("timestamps-create-time")
def timestamps(b):
    t = b.topic()
    wait_leader(b, t)
    base = now_ms() - 3_600_000  # an hour ago: within message.timestamp.before.max.ms (unbounded)
    rs = [rec.Record(b"k", b"v%d" % i, (), base + d) for i, d in enumerate([5000, 1000, 9000, 3000])]
    with b.wire() as w:
        pr = produce(w, t, batch(rs))
        fr = fetch(w, t)
        lo = {(str(ts - base) if ts > 0 else str(ts)): list_offsets(w, t, ts)
              for ts in (-1, -2, -3, base, base + 2000, base + 9000, base + 9001)}
    return relative_times({"produce": pr, "fetch": fr, "list_offsets": lo}, base)


@scenario("timestamp-too-far-in-future")
def future_timestamp(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        pr = produce(w, t, batch([rec.Record(b"k", b"v", (), now_ms() + 2 * 3_600_000)]))
        lo = list_offsets(w, t, -1)
    b.expect(p0(pr)["error_code"] == 32, f"INVALID_TIMESTAMP expected: {p0(pr)}")
    return {"produce": pr, "end_offset": lo}


@scenario("keyless-records-on-a-compacted-topic")
def keyless_on_compacted(b):
    t = b.topic()
    with b.wire() as w:
        ct = create_topics(w, [(t, 1, 1, {"cleanup.policy": "compact"})])
        ensure_topic(w, t)
        refused = produce(w, t, batch([rec.Record(b"k", b"v"), rec.Record(None, b"no key"), rec.Record(None, b"x")]))
        kept = produce(w, t, batch([rec.Record(b"k", b"v")]))
        lo = list_offsets(w, t, -1)
    b.expect(p0(refused)["error_code"] == 87, f"INVALID_RECORD expected: {p0(refused)}")
    return {"create": ct, "refused": refused, "kept": kept, "end_offset": lo}


@scenario("log-append-time")
def log_append_time(b):
    t = b.topic()
    with b.wire() as w:
        ct = create_topics(w, [(t, 1, 1, {"message.timestamp.type": "LogAppendTime"})])
        ensure_topic(w, t)
        before = now_ms()
        produced_at = before - 3_600_000
        pr = produce(w, t, batch(RECORDS[:2], now_ms=produced_at))
        after = now_ms()
        fr = fetch(w, t)
    lat = p0(pr)["log_append_time_ms"]
    b.expect(before <= lat <= after, f"log_append_time_ms {lat} not in [{before}, {after}]")
    p0(pr)["log_append_time_ms"] = "<append time>" if before <= lat <= after else lat
    for bt in f0(fr)["records"].get("batches", []):
        for k in ("max_timestamp",):
            bt[k] = "<append time>" if bt[k] == lat else bt[k]
        for r in bt["records"] if isinstance(bt["records"], list) else []:
            r["timestamp"] = "<append time>" if r["timestamp"] == lat else r["timestamp"]
    return {"create": ct, "produce": pr, "fetch": relative_times(fr, produced_at)}


@scenario("empty-fetch")
def empty_fetch(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        empty_topic = fetch(w, t)
        produce(w, t, batch(RECORDS[:1]))
        at_end = fetch(w, t, offset=1)
    return {"empty_topic": empty_topic, "at_log_end": at_end}


@scenario("fetch-offset-out-of-range")
def out_of_range(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        produce(w, t, batch(RECORDS[:2]))
        above = fetch(w, t, offset=100)
        below = fetch(w, t, offset=-5)
    b.expect(f0(above)["error_code"] == 1, "OFFSET_OUT_OF_RANGE")
    return {"above_end": above, "negative": below}


@scenario("fetch-max-bytes-smaller-than-batch")
def small_max_bytes(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        produce(w, t, batch([rec.Record(b"k", b"x" * 10_000)]))
        produce(w, t, batch([rec.Record(b"k", b"y" * 10_000)]))
        tiny_partition = fetch(w, t, partition_max_bytes=100)
        tiny_total = fetch(w, t, max_bytes=100)
        one_and_a_bit = fetch(w, t, partition_max_bytes=12_000)
    # KIP-74: the first batch is returned whole even when larger than the limits
    b.expect(len(f0(tiny_partition)["records"]["batches"]) == 1, "first batch returned whole")
    return {"partition_max_bytes_100": tiny_partition, "max_bytes_100": tiny_total,
            "partition_max_bytes_12000": one_and_a_bit}


def _bucket(seconds: float, edges=(0.3, 1.0, 2.5, 4.5)) -> str:
    for e in edges:
        if seconds < e:
            return f"<{e}s"
    return f">={edges[-1]}s"


@scenario("long-poll-wake-up")
def long_poll(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        produce(w, t, batch(RECORDS[:1]))

    def later():
        time.sleep(0.5)
        with b.wire() as w2:
            produce(w2, t, batch(RECORDS[1:2]))
    th = threading.Thread(target=later)
    with b.wire() as w:
        t0 = time.monotonic()
        th.start()
        fr = fetch(w, t, offset=1, max_wait_ms=5000, min_bytes=1)
        waited = time.monotonic() - t0
    th.join()
    b.expect(waited < 2.5, f"woke after {waited:.2f}s")
    return {"woke_after": _bucket(waited), "fetch": fr}


@scenario("long-poll-timeout")
def long_poll_timeout(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        for _ in range(20):  # Kafka may answer NOT_LEADER_OR_FOLLOWER at once right after creating the topic
            t0 = time.monotonic()
            fr = fetch(w, t, max_wait_ms=1200, min_bytes=1)
            waited = time.monotonic() - t0
            if fr["responses"][0]["partitions"][0]["error_code"] == 0:
                break
            time.sleep(0.2)
        t1 = time.monotonic()
        fr_min = fetch(w, t, max_wait_ms=1200, min_bytes=0)
        waited_min0 = time.monotonic() - t1
    b.expect(1.1 < waited < 2.5, f"waited {waited:.2f}s")
    return {"waited": _bucket(waited, (1.0, 2.5)), "fetch": fr,
            "min_bytes_0_waited": _bucket(waited_min0, (0.3, 1.0)), "fetch_min_bytes_0": fr_min}


@scenario("large-records")
def large_records(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        ok = produce(w, t, batch([rec.Record(b"big", b"z" * 900_000)]))
        too_big = produce(w, t, batch([rec.Record(b"huge", b"z" * 1_100_000)]))
        fr = fetch(w, t, partition_max_bytes=1024)
    b.expect(p0(ok)["error_code"] == 0 and p0(too_big)["error_code"] == 10, "900 KB ok, 1.1 MB MESSAGE_TOO_LARGE")
    return {"900KB": ok, "1100KB": too_big, "fetch": fr}


@scenario("list-offsets-variants")
def list_offsets_variants(b):
    t = b.topic()
    wait_leader(b, t)
    out = {}
    with b.wire() as w:
        out["empty"] = {str(ts): list_offsets(w, t, ts) for ts in (-1, -2, -3, 0)}
        base = now_ms() - 60_000
        produce(w, t, batch([rec.Record(None, b"a", (), base), rec.Record(None, b"b", (), base + 10)]))
        produce(w, t, batch([rec.Record(None, b"c", (), base + 5), rec.Record(None, b"d", (), base + 20)]))
        for v in (1, 4, 7, 8, 9, 10):
            specs = (-1, -2) if v < 7 else (-1, -2, -3) if v < 8 else (-1, -2, -3, -4)
            out[f"v{v}"] = {str(ts): list_offsets(w, t, ts, version=v) for ts in specs}
        out["by_timestamp"] = {str(ts - base): list_offsets(w, t, ts)
                               for ts in (base - 1, base, base + 5, base + 6, base + 20, base + 21)}
        out["read_committed_end"] = list_offsets(w, t, -1, isolation_level=1)
    b.expect(out["v8"]["-3"]["offset"] == 3, f"max timestamp offset {out['v8']['-3']}")
    return relative_times(out, base)


@scenario("unknown-partition")
def unknown_partition(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        pr = produce(w, t, batch(RECORDS[:1]), partition=7)
        fr = fetch(w, t, partition=7)
        lo = list_offsets(w, t, -1, partition=7)
    b.expect(p0(pr)["error_code"] == 3, "UNKNOWN_TOPIC_OR_PARTITION")
    return {"produce": pr, "fetch": fr, "list_offsets": lo}


@scenario("unknown-topic")
def unknown_topic(b):
    t = b.topic("never-created")
    with b.wire() as w:
        pr = produce(w, t, batch(RECORDS[:1]))
        fr = fetch(w, t)
        lo = list_offsets(w, t, -1)
        md = metadata(w, [t], auto_create=False)
    b.expect(md["topics"][0]["error_code"] == 3, "produce/fetch do not auto-create")
    return {"produce": pr, "fetch": fr, "list_offsets": lo, "metadata": md["topics"]}


@scenario("corrupt-batch")
def corrupt_batch(b):
    t = b.topic()
    wait_leader(b, t)
    good = bytearray(batch(RECORDS[:2]))
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    nonzero_base = bytearray(good)
    nonzero_base[7] = 5
    out = {}
    with b.wire() as w:
        for name, data in (("bad_crc", bad_crc), ("base_offset_5", nonzero_base),
                           ("truncated", good[:40]), ("two_batches", good + good)):
            try:
                out[name] = produce(w, t, bytes(data))
            except Closed as exc:
                out[name] = f"closed: {exc}"
                w = b.wire()
        out["end_offset"] = list_offsets(w, t, -1)
    b.expect(p0(out["bad_crc"])["error_code"] == 2, "CORRUPT_MESSAGE")
    return out


@scenario("idempotent-producer")
def idempotent(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        deadline = time.monotonic() + 15
        while True:  # a fresh Kafka answers retriable errors until producer id blocks are allocated
            ip = plain(w.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4))
            if ip["error_code"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        pid, epoch = ip["producer_id"], ip["producer_epoch"]
        ip["producer_id"] = "<pid>" if pid >= 0 else pid

        def send(seq, n=1):
            return p0(produce(w, t, batch([rec.Record(b"k", b"s%d" % (seq + i)) for i in range(n)],
                                          producer_id=pid, producer_epoch=epoch, base_sequence=seq)))
        out = {"init": ip, "seq0": send(0, 2), "seq2": send(2), "dup_seq0": send(0, 2), "gap_seq9": send(9),
               "old_epoch": p0(produce(w, t, batch([rec.Record(b"k", b"x")], producer_id=pid,
                                                   producer_epoch=epoch - 1 if epoch > 0 else 100,
                                                   base_sequence=3)))}
        fr = fetch(w, t)
    for bt in f0(fr)["records"].get("batches", []):
        bt["producer_id"] = "<pid>" if bt["producer_id"] == pid else bt["producer_id"]
    out["fetch"] = fr
    b.expect(out["dup_seq0"]["error_code"] == 0 and out["dup_seq0"]["base_offset"] == 0, "duplicate answered")
    return out


@scenario("acks-0")
def acks_zero(b):
    t = b.topic()
    wait_leader(b, t)
    with b.wire() as w:
        produce(w, t, batch(RECORDS[:1]), acks=0)
        produce(w, t, batch(RECORDS[1:2]), acks=0)
        after = list_offsets(w, t, -1)  # the next response on the connection is this one
    b.expect(after["offset"] == 2, f"end offset {after}")
    return {"end_offset": after}


@scenario("create-topics-errors")
def create_topics_errors(b):
    t = b.topic()
    with b.wire() as w:
        out = {
            "ok": create_topics(w, [(t, 2, 1, {"retention.ms": "1000000"})]),
            "exists": create_topics(w, [(t, 1, 1, None)]),
            "bad_name": create_topics(w, [("bad name!", 1, 1, None)]),
            "zero_partitions": create_topics(w, [(t + "-zero", 0, 1, None)]),
            "rf_3": create_topics(w, [(t + "-rf3", 1, 3, None)]),
            "defaults": create_topics(w, [(t + "-defaults", -1, -1, None)], validate_only=True),
        }
    b.expect(out["exists"][0]["error_code"] == 36, "TOPIC_ALREADY_EXISTS")
    return out


@scenario("bad-configs")
def bad_configs(b):
    t = b.topic()
    with b.wire() as w:
        out = {
            "not_a_number": create_topics(w, [(t, 1, 1, {"retention.ms": "banana"})], validate_only=True),
            "unknown_key": create_topics(w, [(t, 1, 1, {"no.such.config": "1"})], validate_only=True),
            "bad_enum": create_topics(w, [(t, 1, 1, {"cleanup.policy": "sometimes"})], validate_only=True),
            "out_of_range": create_topics(w, [(t, 1, 1, {"min.insync.replicas": "0"})], validate_only=True),
        }
        create_topics(w, [(t, 1, 1, None)])
        req = IncrementalAlterConfigsRequest(resources=[IncrementalAlterConfigsRequest.AlterConfigsResource(
            resource_type=2, resource_name=t, configs=[IncrementalAlterConfigsRequest.AlterableConfig(
                name="retention.ms", config_operation=0, value="-7x")])])
        out["alter_bad_value"] = plain(w.request(req, 1))["responses"]
    b.expect(out["not_a_number"][0]["error_code"] == 40, "INVALID_CONFIG")
    return out


@scenario("describe-configs-topic")
def describe_configs_topic(b):
    t = b.topic()
    with b.wire() as w:
        create_topics(w, [(t, 1, 1, {"retention.ms": "1234567", "cleanup.policy": "compact"})])
        for _ in range(20):  # Kafka may answer UNKNOWN_TOPIC_OR_PARTITION until the new topic reaches its metadata
            res = describe_configs(w, 2, t)
            if res[0]["error_code"] != 3:
                break
            time.sleep(0.2)
        unknown = describe_configs(w, 2, b.topic("missing"))
    for r in res:
        r["configs"] = sorted(r["configs"], key=lambda c: c["name"])
    return {"topic": res, "unknown_topic": unknown}


# Values that depend on the machine, the ports and the data directory, not on broker behaviour.
HOST_SPECIFIC = {"log.dirs", "log.dir", "listeners", "advertised.listeners", "controller.quorum.voters",
                 "controller.listener.names", "listener.security.protocol.map", "process.roles",
                 "inter.broker.listener.name", "metadata.log.dir", "controller.quorum.bootstrap.servers"}


@scenario("describe-configs-broker")
def describe_configs_broker(b):
    keys = ["num.partitions", "log.retention.hours", "log.retention.ms", "message.max.bytes",
            "auto.create.topics.enable", "log.segment.bytes", "group.initial.rebalance.delay.ms",
            "default.replication.factor", "offsets.topic.replication.factor", "compression.type",
            "log.message.timestamp.type", "broker.id", "node.id", "log.dirs"]
    with b.wire() as w:
        res = describe_configs(w, 4, "1", keys=keys)
    for r in res:
        r["configs"] = sorted(r["configs"], key=lambda c: c["name"])
        for c in r["configs"]:
            if c["name"] in HOST_SPECIFIC:
                c["value"] = "<host-specific>"
                for s in c["synonyms"]:
                    s["value"] = "<host-specific>"
    return res
