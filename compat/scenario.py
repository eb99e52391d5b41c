"""The scenario protocol every compat client speaks, and a small Python implementation of it.

Each client folder has an executable `run` (any language) that understands:

    run --list                                   scenario names, one per line
    run --bootstrap HOST:PORT[,HOST:PORT...] --prefix P [--only a,b,...]

The bootstrap lists every broker (one, or each of a cluster's): a scenario that counts brokers
expects as many as it lists.

and, for the second form, writes one JSON object per line to stdout:

    {"event": "start", "scenario": "produce-consume"}
    {"event": "end", "scenario": "produce-consume", "status": "pass"|"fail"|"skip",
     "detail": "...", "seconds": 1.23}

Anything else on stdout is ignored (and kept for the log); stderr is kept for the log. Topic and
group names a scenario creates start with the prefix, so runs never see each other's data. The
orchestrator (compat/harness.py) enforces a per-scenario timeout from the "start" events and, if a
client hangs or dies, restarts it with --only the scenarios still to run.

Python clients use `main()` below with `@scenario` functions:

    @scenario("produce-consume")
    def produce_consume(ctx): ...   # ctx.bootstrap, ctx.topic("x"), ctx.group("x"); raise to fail

A scenario fails by raising (AssertionError with a message, ideally); `Skip("why")` skips it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable


class Skip(Exception):
    """Raise from a scenario that does not apply (e.g. the client lacks the feature)."""


@dataclass
class Context:
    bootstrap: str
    prefix: str
    scenario: str = ""

    def topic(self, suffix: str = "") -> str:
        name = f"{self.prefix}-{self.scenario}"
        return f"{name}-{suffix}" if suffix else name

    def group(self, suffix: str = "") -> str:
        return self.topic(suffix or "group")

    @property
    def brokers(self) -> int:
        """How many brokers the bootstrap lists (every broker of the cluster)."""
        return len(self.bootstrap.split(","))


SCENARIOS: dict[str, Callable[[Context], object]] = {}


def scenario(name: str):
    def register(fn):
        if name in SCENARIOS:
            raise ValueError(f"duplicate scenario {name}")
        SCENARIOS[name] = fn
        return fn
    return register


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run_one(name: str, fn, ctx: Context) -> dict:
    ctx.scenario = name.replace("/", "-").replace(":", "-").replace(".", "-")
    emit({"event": "start", "scenario": name})
    t = time.monotonic()
    status, detail = "pass", ""
    try:
        out = fn(ctx)
        if isinstance(out, str):
            detail = out
    except Skip as exc:
        status, detail = "skip", str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure is the scenario's result
        status = "fail"
        detail = f"{type(exc).__name__}: {exc}".strip()
        print(f"--- {name} failed\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    end = {"event": "end", "scenario": name, "status": status, "detail": detail[:2000],
           "seconds": round(time.monotonic() - t, 3)}
    emit(end)
    return end


def main(argv: list[str] | None = None, scenarios: dict | None = None) -> int:
    scenarios = SCENARIOS if scenarios is None else scenarios
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--bootstrap")
    ap.add_argument("--prefix", default=f"compat-{int(time.time())}")
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(scenarios))
        return 0
    if not args.bootstrap:
        ap.error("--bootstrap is required")
    only = [s for s in args.only.split(",") if s]
    unknown = [s for s in only if s not in scenarios]
    if unknown:
        ap.error(f"unknown scenarios: {unknown}")
    failed = 0
    for name, fn in scenarios.items():
        if only and name not in only:
            continue
        failed += run_one(name, fn, Context(args.bootstrap, args.prefix))["status"] == "fail"
    return 1 if failed else 0


def check(cond: bool, msg: str = "") -> None:
    """assert that survives python -O."""
    if not cond:
        raise AssertionError(msg)


def eq(actual, expected, what: str = "value") -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")
