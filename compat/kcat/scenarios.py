"""kcat (librdkafka's command line client) as a user runs it, output parsed from -J (JSON) mode."""
from __future__ import annotations

import json
import shutil
import subprocess
import time

from compat.scenario import Skip, check, eq, scenario

TIMEOUT = 30


def kcat(ctx, *args, input=None, ok=True, timeout=TIMEOUT):
    exe = shutil.which("kcat") or shutil.which("kafkacat")
    if not exe:
        raise Skip("kcat not installed (scripts/install-compat-deps installs it)")
    res = subprocess.run([exe, "-b", ctx.bootstrap, "-X", "socket.timeout.ms=10000", *args], input=input,
                         capture_output=True, text=True, timeout=timeout)
    if ok and res.returncode != 0:
        raise AssertionError(f"kcat {' '.join(args)} exited {res.returncode}: {res.stderr.strip()[-500:]}")
    return res


def consume(ctx, topic, n, *extra):
    res = kcat(ctx, "-C", "-t", topic, "-J", "-e", "-c", str(n), "-o", "beginning", *extra)
    msgs = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    eq(len(msgs), n, f"records consumed ({res.stderr.strip()[-300:]})")
    return msgs


@scenario("metadata")
def metadata(ctx):
    t = ctx.topic()
    kcat(ctx, "-P", "-t", t, input="hello\n")
    md = json.loads(kcat(ctx, "-L", "-J", "-t", t).stdout)
    eq(len(md["brokers"]), ctx.brokers, "brokers")
    eq([x["topic"] for x in md["topics"]], [t], "topics")
    eq([p["partition"] for p in md["topics"][0]["partitions"]], [0], "partitions")
    leader = md["topics"][0]["partitions"][0]["leader"]
    check(leader in [b["id"] for b in md["brokers"]], f"leader {leader} not among {md['brokers']}")


@scenario("produce-consume")
def produce_consume(ctx):
    t = ctx.topic()
    kcat(ctx, "-P", "-t", t, "-K", ":", "-H", "h1=a", "-H", "h2=b", input="k0:v0\nk1:v1\n")
    kcat(ctx, "-P", "-t", t, "-K", ":", "-Z", input=":null-key\ntomb:\n")  # -Z: empty -> NULL
    msgs = consume(ctx, t, 4)
    eq([(m["offset"], m["key"], m["payload"], m.get("headers")) for m in msgs],
       [(0, "k0", "v0", ["h1", "a", "h2", "b"]), (1, "k1", "v1", ["h1", "a", "h2", "b"]),
        (2, None, "null-key", None), (3, "tomb", None, None)], "records")
    check(all(m["tstype"] == "create" and m["ts"] > 0 for m in msgs), f"timestamps {msgs}")


for _codec in ("gzip", "snappy", "lz4", "zstd"):
    @scenario(f"compression-{_codec}")
    def _comp(ctx, codec=_codec):
        t = ctx.topic()
        lines = [f"{codec}-{i}-" + "x" * 200 for i in range(20)]
        kcat(ctx, "-P", "-t", t, "-z", codec, input="\n".join(lines) + "\n")
        eq([m["payload"] for m in consume(ctx, t, 20)], lines, "payloads")


@scenario("query-offsets")
def query_offsets(ctx):
    t = ctx.topic()
    kcat(ctx, "-P", "-t", t, input="a\nb\nc\n")
    res = kcat(ctx, "-Q", "-t", f"{t}:0:{int(time.time() * 1000) - 3_600_000}", "-J")
    q = json.loads(res.stdout)
    eq(q[t]["0"]["offset"], 0, "offset for a time an hour ago")
    res = kcat(ctx, "-Q", "-t", f"{t}:0:{int(time.time() * 1000) + 3_600_000}", "-J")
    eq(json.loads(res.stdout)[t]["0"]["offset"], -1, "offset for a time an hour ahead")


@scenario("group-commit")
def group(ctx):
    t, g = ctx.topic(), ctx.group()
    kcat(ctx, "-P", "-t", t, input="".join(f"m{i}\n" for i in range(5)))
    first = kcat(ctx, "-G", g, "-X", "auto.offset.reset=earliest", "-J", "-c", "3", t, timeout=15)
    eq([json.loads(x)["offset"] for x in first.stdout.splitlines() if x.startswith("{")], [0, 1, 2],
       "first member's offsets")
    second = kcat(ctx, "-G", g, "-X", "auto.offset.reset=earliest", "-J", "-c", "2", t, timeout=15)
    eq([json.loads(x)["offset"] for x in second.stdout.splitlines() if x.startswith("{")], [3, 4],
       "offsets after rejoining (committed on close)")


@scenario("transactions")
def transactions(ctx):
    t = ctx.topic()
    kcat(ctx, "-P", "-t", t, "-X", f"transactional.id={t}-txn", input="t1\nt2\n")
    msgs = consume(ctx, t, 2, "-X", "isolation.level=read_committed")
    eq([m["payload"] for m in msgs], ["t1", "t2"], "committed payloads")
