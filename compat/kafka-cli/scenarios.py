"""Kafka's CLI tools (Kafka 4.4.0 jars from compat/kafka) against a broker, with their output checked.

Every tool run is a fresh JVM (~1-2 s), so scenarios keep the number of runs small.
"""
from __future__ import annotations

import json
import re
import tempfile

from compat.kafka.oracle import run_tool
from compat.scenario import check, eq, scenario

TIMEOUT = 60


def tool(name, *args, input=None, ok=True):
    res = run_tool(name, *args, input=input, timeout=TIMEOUT)
    if ok and res.returncode != 0:
        raise AssertionError(f"{name} exited {res.returncode}: {(res.stderr or res.stdout).strip()[-600:]}")
    return res


def produce_lines(ctx, topic, lines, *props):
    args = ["--bootstrap-server", ctx.bootstrap, "--topic", topic]
    for p in props:
        args += ["--reader-property", p]
    tool("kafka-console-producer", *args, input="".join(line + "\n" for line in lines))


def consume(ctx, topic, n, *extra, props=()):
    args = ["--bootstrap-server", ctx.bootstrap, "--topic", topic, "--from-beginning",
            "--max-messages", str(n), "--timeout-ms", "20000", *extra]
    if "--group" not in extra:  # assign partition 0 rather than join a random console-consumer group
        args += ["--partition", "0"]
    for p in props:
        args += ["--formatter-property", p]
    res = tool("kafka-console-consumer", *args, ok=False)
    lines = res.stdout.splitlines()
    check(len(lines) == n, f"console consumer printed {len(lines)} of {n} records "
                           f"(exit {res.returncode}): {res.stderr.strip()[-400:]}")
    return lines


@scenario("topics")
def topics(ctx):
    t, b = ctx.topic(), ctx.bootstrap
    out = tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", t, "--partitions", "3",
               "--replication-factor", "1", "--config", "retention.ms=123456").stdout
    check(f"Created topic {t}." in out, f"create output: {out!r}")
    res = tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", t, "--partitions", "1",
               ok=False)
    check(res.returncode != 0 and "already exists" in res.stdout + res.stderr,
          f"second create: exit {res.returncode} {res.stderr.strip()[-300:]}")
    out = tool("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", t).stdout
    # Kafka 4.4 lists the broker's min.insync.replicas (1; 2 on the compat cluster) among a new topic's
    # configs (see FINDINGS.md); on a cluster each partition's one replica is on any broker
    check(re.search(rf"^Topic: {re.escape(t)}\tTopicId: [\w-]{{22}}\tPartitionCount: 3\tReplicationFactor: 1\t"
                    r"Configs: min.insync.replicas=[12],retention.ms=123456$", out, re.M), f"describe output: {out!r}")
    eq(len(re.findall(rf"^\tTopic: {re.escape(t)}\tPartition: \d\tLeader: (\d+)\tReplicas: \1\tIsr: \1\t"
                      r"Elr: \tLastKnownElr: $", out, re.M)), 3, f"partition lines in {out!r}")
    tool("kafka-topics", "--bootstrap-server", b, "--alter", "--topic", t, "--partitions", "4")
    out = tool("kafka-topics", "--bootstrap-server", b, "--list").stdout
    check(t in out.split(), f"list output: {out!r}")
    tool("kafka-topics", "--bootstrap-server", b, "--delete", "--topic", t)
    for _ in range(5):  # KRaft Kafka answers DeleteTopics before its metadata drops the topic
        out = tool("kafka-topics", "--bootstrap-server", b, "--list").stdout
        if t not in out.split():
            break
    check(t not in out.split(), "deleted topic still listed")


@scenario("configs")
def configs(ctx):
    t, b = ctx.topic(), ctx.bootstrap
    tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", t)
    tool("kafka-configs", "--bootstrap-server", b, "--alter", "--entity-type", "topics", "--entity-name", t,
         "--add-config", "retention.ms=86400000,cleanup.policy=compact")
    out = tool("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "topics",
               "--entity-name", t).stdout
    check(f"Dynamic configs for topic {t} are:" in out, f"describe output: {out!r}")
    check("retention.ms=86400000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=86400000}" in out,
          f"describe output: {out!r}")
    check("cleanup.policy=compact sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact, "
          "DEFAULT_CONFIG:log.cleanup.policy=delete}" in out,
          f"describe output: {out!r}")
    out = tool("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "brokers",
               "--entity-name", "1", "--all").stdout
    check("num.partitions=1 sensitive=false synonyms={STATIC_BROKER_CONFIG:num.partitions=1, "
          "DEFAULT_CONFIG:num.partitions=1}" in out, f"broker describe: {out[:600]!r}")
    res = tool("kafka-configs", "--bootstrap-server", b, "--alter", "--entity-type", "topics", "--entity-name",
               t, "--add-config", "retention.ms=banana", ok=False)
    check(res.returncode != 0 and "Invalid value banana for configuration retention.ms" in res.stdout + res.stderr,
          f"bad config: exit {res.returncode} {res.stderr.strip()[-300:]}")


@scenario("console-producer-consumer")
def console(ctx):
    t = ctx.topic()
    produce_lines(ctx, t, ["k1:v1", "k2:v2", "k3:"], "parse.key=true", "key.separator=:")
    lines = consume(ctx, t, 3, props=["print.key=true", "key.separator=|", "print.offset=true",
                                      "print.partition=true"])
    eq(lines, ["Partition:0|Offset:0|k1|v1", "Partition:0|Offset:1|k2|v2", "Partition:0|Offset:2|k3|"],
       "consumed lines")


@scenario("console-headers-nulls")
def console_headers(ctx):
    t = ctx.topic()
    produce_lines(ctx, t, ["h1:a,h2:b\tk1\tv1", "h0:\tNULL\tno-key", "h3:NULL\tk3\tNULL"],
                  "parse.key=true", "parse.headers=true", "null.marker=NULL")
    lines = consume(ctx, t, 3, props=["print.key=true", "print.headers=true", "print.value=true",
                                      "null.literal=<null>"])
    eq(lines, ["h1:a,h2:b\tk1\tv1", "h0:\t<null>\tno-key", "h3:<null>\tk3\t<null>"], "consumed lines")


@scenario("console-compression")
def console_compression(ctx):
    t = ctx.topic()
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        args = ["--bootstrap-server", ctx.bootstrap, "--topic", t, "--compression-codec", codec]
        tool("kafka-console-producer", *args, input=f"{codec}-1\n{codec}-2\n")
    eq(consume(ctx, t, 8), [f"{c}-{i}" for c in ("gzip", "snappy", "lz4", "zstd") for i in (1, 2)],
       "consumed lines")


@scenario("consumer-groups")
def groups(ctx):
    t, g, b = ctx.topic(), ctx.group(), ctx.bootstrap
    produce_lines(ctx, t, [f"m{i}" for i in range(5)])
    consume(ctx, t, 5, "--group", g)
    out = tool("kafka-consumer-groups", "--bootstrap-server", b, "--list").stdout
    check(g in out.split(), f"list output: {out!r}")
    out = tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", g).stdout
    check(re.search(rf"{re.escape(g)}\s+{re.escape(t)}\s+0\s+5\s+5\s+0\s", out), f"describe output: {out!r}")
    out = tool("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", g, "--topic", t,
               "--to-offset", "2", "--execute").stdout
    check(re.search(rf"{re.escape(g)}\s+{re.escape(t)}\s+0\s+2", out), f"reset output: {out!r}")
    out = tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", g).stdout
    check(re.search(rf"{re.escape(t)}\s+0\s+2\s+5\s+3\s", out), f"describe after reset: {out!r}")
    out = tool("kafka-consumer-groups", "--bootstrap-server", b, "--delete", "--group", g).stdout
    check("Deletion of requested consumer groups" in out and "was successful" in out, f"delete output: {out!r}")


@scenario("get-offsets")
def get_offsets(ctx):
    t, b = ctx.topic(), ctx.bootstrap
    produce_lines(ctx, t, [f"m{i}" for i in range(4)])
    eq(tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t).stdout.split(), [f"{t}:0:4"], "latest")
    eq(tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t, "--time", "-2").stdout.split(),
       [f"{t}:0:0"], "earliest")
    # -3: offset of the record with the highest timestamp; console-produced records may share one
    out = tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t, "--time", "-3").stdout.split()
    check(len(out) == 1 and re.fullmatch(rf"{re.escape(t)}:0:[0-3]", out[0]), f"max timestamp: {out}")


@scenario("delete-records")
def delete_records(ctx):
    t, b = ctx.topic(), ctx.bootstrap
    produce_lines(ctx, t, [f"m{i}" for i in range(4)])
    with tempfile.NamedTemporaryFile("w", suffix=".json") as offsets:
        json.dump({"version": 1, "partitions": [{"topic": t, "partition": 0, "offset": 2}]}, offsets)
        offsets.flush()
        out = tool("kafka-delete-records", "--bootstrap-server", b, "--offset-json-file", offsets.name).stdout
    check(re.search(rf"^partition: {re.escape(t)}-0\tlow_watermark: 2$", out, re.M), f"output: {out!r}")
    eq(tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t, "--time", "-2").stdout.split(),
       [f"{t}:0:2"], "earliest after delete-records")
    eq(consume(ctx, t, 2), ["m2", "m3"], "records left")


@scenario("log-dirs")
def log_dirs(ctx):
    t, b = ctx.topic(), ctx.bootstrap
    produce_lines(ctx, t, ["a", "b", "c"])
    out = tool("kafka-log-dirs", "--bootstrap-server", b, "--describe", "--topic-list", t).stdout
    report = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    partitions = [p for broker in report["brokers"] for d in broker["logDirs"] for p in d["partitions"]]
    # one entry per replica: one per broker (the compat cluster replicates to all three)
    eq([p["partition"] for p in partitions], [f"{t}-0"] * ctx.brokers, "partitions listed")
    check(partitions[0]["size"] > 0 and partitions[0]["offsetLag"] == 0, f"partition entry: {partitions[0]}")


@scenario("producer-perf-test")
def producer_perf(ctx):
    out = tool("kafka-producer-perf-test", "--topic", ctx.topic(), "--num-records", "5000", "--record-size",
               "100", "--throughput", "-1", "--producer-props", f"bootstrap.servers={ctx.bootstrap}",
               "linger.ms=5").stdout
    check(re.search(r"^5000 records sent, [\d.]+ records/sec", out, re.M), f"output: {out[-500:]!r}")
    eq(tool("kafka-get-offsets", "--bootstrap-server", ctx.bootstrap, "--topic", ctx.topic()).stdout.split(),
       [f"{ctx.topic()}:0:5000"], "end offset")


@scenario("consumer-perf-test")
def consumer_perf(ctx):
    t = ctx.topic()
    tool("kafka-producer-perf-test", "--topic", t, "--num-records", "5000", "--record-size", "100",
         "--throughput", "-1", "--producer-props", f"bootstrap.servers={ctx.bootstrap}")
    res = tool("kafka-consumer-perf-test", "--bootstrap-server", ctx.bootstrap, "--topic", t,
               "--num-records", "5000", "--timeout", "20000",
               ok=False)
    out = res.stdout
    check(res.returncode == 0, f"exit {res.returncode}: {res.stderr.strip()[-500:]}")
    # the summary line: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, ...
    m = re.search(r"^\S+ \S+, \S+ \S+, ([\d.]+), [\d.]+, (\d+),", out, re.M)
    if m is None:  # without --show-detailed-stats the columns are the same; be lenient about the layout
        m = re.search(r", ([\d.]+), [\d.]+, (\d+), ", out)
    check(m is not None, f"output: {out[-600:]!r}")
    eq(int(m.group(2)), 5000, "messages consumed")
