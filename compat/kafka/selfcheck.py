"""Self-check of the Kafka oracle: jars, broker start/stop, and the CLI tools end to end.

Theory of operation: `run(bootstrap)` drives Kafka's own CLI tools through `run_tool` against any
broker: create a topic, list it, produce keyed records with kafka-console-producer, read them back
with kafka-console-consumer, and check the end offset with kafka-get-offsets. `main()` starts an
Apache Kafka with `start_kafka`, runs that, reports timings and RSS, and stops it; with
`--bootstrap HOST:PORT` it runs the same steps against an already running broker (e.g. kbroker).
Each step raises AssertionError with the tool's output on a mismatch. Exit code 0 means all passed.

    python -m compat.kafka.selfcheck [--bootstrap HOST:PORT]
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
import zipfile

from .oracle import TOOLS, install, run_tool, start_kafka

RECORDS = [("k1", "hello"), ("k2", "kafka"), ("k1", "oracle")]


def _ok(res, what: str):
    assert res.returncode == 0, f"{what} exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def check_tool_classes() -> None:
    """Every main class in TOOLS exists in the resolved jars (catches classes that moved)."""
    names: set[str] = set()
    for jar in install():
        with zipfile.ZipFile(jar) as z:
            names.update(z.namelist())
    missing = {t: c for t, c in TOOLS.items() if c.replace(".", "/") + ".class" not in names}
    assert not missing, f"main classes not found in the jars: {missing}"


def run(bootstrap: str, log=print) -> None:
    topic = f"selfcheck-{uuid.uuid4().hex[:8]}"
    bs = ("--bootstrap-server", bootstrap)

    t = time.monotonic()
    res = _ok(run_tool("kafka-topics", *bs, "--create", "--topic", topic, "--partitions", "1",
                       "--replication-factor", "1"), "kafka-topics --create")
    assert f"Created topic {topic}" in res.stdout, res.stdout
    res = _ok(run_tool("kafka-topics", *bs, "--list"), "kafka-topics --list")
    assert topic in res.stdout.split(), res.stdout
    log(f"  topics create+list ok ({time.monotonic() - t:.1f}s)")

    t = time.monotonic()
    lines = "".join(f"{k}:{v}\n" for k, v in RECORDS)
    _ok(run_tool("kafka-console-producer", *bs, "--topic", topic,
                 "--reader-property", "parse.key=true", "--reader-property", "key.separator=:",
                 input=lines), "kafka-console-producer")
    log(f"  console-producer ok ({time.monotonic() - t:.1f}s)")

    t = time.monotonic()
    res = _ok(run_tool("kafka-console-consumer", *bs, "--topic", topic, "--from-beginning",
                       "--max-messages", str(len(RECORDS)), "--timeout-ms", "30000",
                       "--formatter-property", "print.key=true",
                       "--formatter-property", "key.separator=:"), "kafka-console-consumer")
    got = [tuple(line.split(":", 1)) for line in res.stdout.splitlines() if line]
    assert got == RECORDS, f"consumed {got}, expected {RECORDS}\nstderr:\n{res.stderr}"
    log(f"  console-consumer ok ({time.monotonic() - t:.1f}s)")

    res = _ok(run_tool("kafka-get-offsets", *bs, "--topic", topic), "kafka-get-offsets")
    assert res.stdout.strip() == f"{topic}:0:{len(RECORDS)}", res.stdout
    log("  get-offsets ok")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compat.kafka.selfcheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="run the tool checks against this broker instead of a fresh Kafka")
    args = ap.parse_args(argv)

    t = time.monotonic()
    jars = install()
    check_tool_classes()
    print(f"jars: {len(jars)} resolved, {len(TOOLS)} tool classes present ({time.monotonic() - t:.1f}s)")
    if args.bootstrap:
        run(args.bootstrap)
    else:
        with start_kafka() as k:
            print(f"kafka {k.version} at {k.bootstrap} pid={k.pid}: format {k.format_seconds:.2f}s, "
                  f"start {k.start_seconds:.2f}s, rss {k.rss_bytes() / 2**20:.0f} MiB")
            run(k.bootstrap)
            t = time.monotonic()
            code = k.stop()
            print(f"stopped (exit {code}) in {time.monotonic() - t:.1f}s")
    print("selfcheck: 1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
