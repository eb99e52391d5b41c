"""CLI for the Kafka oracle.

    python -m compat.kafka install               resolve the jars into ~/.m2 (idempotent)
    python -m compat.kafka classpath             print the classpath
    python -m compat.kafka start [--dir D] [--set k=v ...]
                                                 run a broker in the foreground until SIGINT/SIGTERM
    python -m compat.kafka tool kafka-topics --bootstrap-server 127.0.0.1:9092 --list
    python -m compat.kafka tools                 list the tool names run_tool knows

`start` prints `bootstrap=HOST:PORT pid=N ...` on one line to stdout, then waits; `tool` execs the
JVM in place (stdin/stdout/exit code pass straight through).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from . import oracle


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["tool"]:  # everything after the tool name belongs to the tool
        if len(argv) < 2:
            print("usage: python -m compat.kafka tool NAME [ARGS...]", file=sys.stderr)
            return 2
        cmd = oracle.tool_command(argv[1], *argv[2:])
        sys.stdout.flush()
        os.execvp(cmd[0], cmd)

    ap = argparse.ArgumentParser(prog="python -m compat.kafka", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("install", help="resolve Kafka's jars with Maven")
    p.add_argument("--force", action="store_true", help="run Maven even if a classpath is cached")
    p.add_argument("--version", default=None)
    sub.add_parser("classpath", help="print the classpath")
    sub.add_parser("tools", help="list known tool names and their main classes")
    p = sub.add_parser("start", help="run a single-node broker in the foreground")
    p.add_argument("--dir", default=None, help="work dir (kept; reused if already formatted)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="broker config override")
    p.add_argument("--heap", default="512m")
    sub.add_parser("tool", help="run a Kafka CLI tool: tool NAME ARGS...")
    args = ap.parse_args(argv)

    if args.cmd == "install":
        t = time.monotonic()
        jars = oracle.install(args.version, force=args.force, quiet=False)
        print(f"Kafka {args.version or oracle.KAFKA_VERSION}: {len(jars)} jars in "
              f"{time.monotonic() - t:.1f}s")
    elif args.cmd == "classpath":
        print(os.pathsep.join(oracle.install()))
    elif args.cmd == "tools":
        for name, cls in sorted(oracle.TOOLS.items()):
            print(f"{name:28} {cls}")
    elif args.cmd == "start":
        overrides = dict(kv.split("=", 1) for kv in args.set)
        broker = oracle.start_kafka(args.dir, overrides, heap=args.heap)
        stop = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.append(1))
        print(f"bootstrap={broker.bootstrap} pid={broker.pid} version={broker.version} "
              f"start_seconds={broker.start_seconds:.2f} dir={broker.workdir}", flush=True)
        try:
            while not stop and broker.proc.poll() is None:
                time.sleep(0.2)
            if broker.proc.poll() is not None:
                print(f"Kafka exited with {broker.proc.returncode}\n{broker.log_tail()}", file=sys.stderr)
                return 1
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
