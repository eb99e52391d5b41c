"""python -m compat.differential --kafka HOST:PORT --kbroker HOST:PORT [--only a,b] [--json]

Runs each scenario (scenarios.py) against Apache Kafka, then kbroker, normalises both observations
(normalize.py) and prints every difference as `path: kafka=… kbroker=…`. With --json it speaks the
compat client protocol (compat/scenario.py), one "end" event per broker, which is how
`python -m compat` runs it (`run` passes --bootstrap for kbroker and --oracle for Kafka).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback

from .normalize import diff, normalize
from . import scenarios_44  # noqa: F401 - registers the Kafka 4.4 scenarios
from .scenarios import SCENARIOS, Target

MAX_DIFFS = 40


def short(v, n=120):
    s = json.dumps(v, default=str)
    return s if len(s) <= n else s[:n] + "…"


def run_scenario(name, fn, kafka, kbroker, prefix):
    res = {}
    obs = {}
    for tname, boot in (("kafka", kafka), ("kbroker", kbroker)):
        if boot is None:
            continue
        t = Target(tname, boot, prefix, name)
        t0 = time.monotonic()
        try:
            obs[tname] = fn(t)
            res[tname] = ("pass", "")
            if t.failed:
                res[tname] = ("fail", f"expectation failed against Apache Kafka: {'; '.join(t.failed)}")
                print(f"--- {name} [{tname}] observation:\n{json.dumps(normalize(obs[tname]), default=str)[:6000]}",
                      file=sys.stderr, flush=True)
        except Exception as exc:  # noqa: BLE001 - an exception is an observation
            obs[tname] = {"exception": f"{type(exc).__name__}: {exc}"}
            res[tname] = ("fail" if tname == "kafka" else "pass", f"{type(exc).__name__}: {exc}")
            print(f"--- {name} [{tname}]\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        res[tname] += (round(time.monotonic() - t0, 3),)
    diffs = []
    if kafka and kbroker:
        if res["kafka"][0] != "pass":
            res["kbroker"] = ("skip", "scenario fails against Apache Kafka", res["kbroker"][2])
        else:
            diffs = diff(normalize(obs["kafka"]), normalize(obs["kbroker"]))
            if diffs:
                lines = [f"{p}: kafka={short(a)} kbroker={short(b)}" for p, a, b in diffs[:MAX_DIFFS]]
                if len(diffs) > MAX_DIFFS:
                    lines.append(f"… and {len(diffs) - MAX_DIFFS} more")
                res["kbroker"] = ("fail", f"{len(diffs)} differences:\n" + "\n".join(lines), res["kbroker"][2])
            else:
                res["kbroker"] = ("pass", "", res["kbroker"][2])
    return res, diffs, obs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compat.differential", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kafka", "--oracle", dest="kafka")
    ap.add_argument("--kbroker", "--bootstrap", dest="kbroker")
    ap.add_argument("--prefix", default=f"diff{int(time.time()) % 100000}")
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--json", action="store_true", help="compat client protocol on stdout")
    ap.add_argument("--show", action="store_true", help="print both normalised observations")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    if not (args.kafka or args.kbroker):
        ap.error("need --kafka and/or --kbroker")
    only = [s for s in args.only.split(",") if s]
    failed = 0
    for name, fn in SCENARIOS.items():
        if only and name not in only:
            continue
        if args.json:
            print(json.dumps({"event": "start", "scenario": name}), flush=True)
        res, diffs, obs = run_scenario(name, fn, args.kafka, args.kbroker, args.prefix)
        for broker, (status, detail, secs) in res.items():
            failed += status == "fail"
            if args.json:
                print(json.dumps({"event": "end", "scenario": name, "broker": broker, "status": status,
                                  "detail": detail[:4000], "seconds": secs}), flush=True)
                if detail and status == "fail":
                    print(f"=== {name} [{broker}] {detail}", file=sys.stderr, flush=True)
            else:
                print(f"{status.upper():5} {name} [{broker}] {secs:.2f}s {detail}")
        if args.show:
            for broker, o in obs.items():
                print(f"--- {name} [{broker}]\n{json.dumps(normalize(o), indent=1, default=str)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
