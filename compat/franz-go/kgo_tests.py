#!/usr/bin/env python3
"""Run franz-go's own kgo test suite (unit + integration tests) against a broker.

    python3 compat/franz-go/kgo_tests.py --bootstrap 127.0.0.1:9092 [--timeout 6m] [--run REGEX]

The franz-go source module (same version as compat/franz-go/go.mod pins) comes from the Go module
cache: `go mod download -json github.com/twmb/franz-go@VERSION` gives its directory, *_test.go files
included; `go test -json ./pkg/kgo` runs there with KGO_SEEDS=<bootstrap> and replication factor 1
(KGO_TEST_RF=1; --rf 3 against a cluster). KGO_TEST_RECORDS (default 500000 upstream) is lowered so the suite fits CI.
Prints per-test results to --log and, last, one JSON line: passed/failed/skipped counts of top-level
tests, the failed test names, and whether the run hit its timeout.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def franz_go_dir() -> Path:
    m = re.search(r"github.com/twmb/franz-go (v\S+)", (HERE / "go.mod").read_text())
    version = m.group(1) if m else "latest"
    res = subprocess.run(["go", "mod", "download", "-json", f"github.com/twmb/franz-go@{version}"],
                         capture_output=True, text=True, cwd=HERE)
    info = json.loads(res.stdout or "{}")
    if res.returncode != 0 or "Dir" not in info:
        raise SystemExit(f"go mod download failed: {info.get('Error') or res.stderr}")
    return Path(info["Dir"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--timeout", default="6m", help="go test -timeout")
    ap.add_argument("--run", default="", help="go test -run REGEX")
    ap.add_argument("--records", default="20000", help="KGO_TEST_RECORDS")
    ap.add_argument("--log", default=None)
    ap.add_argument("--rf", default="1", help="KGO_TEST_RF: the replication factor of the topics it makes")
    args = ap.parse_args(argv)

    src = franz_go_dir()
    env = dict(os.environ, KGO_SEEDS=args.bootstrap, KGO_TEST_RF=args.rf, KGO_TEST_RECORDS=args.records,
               KGO_LOG_LEVEL="none", GOFLAGS="-mod=mod")
    cmd = ["go", "test", "-json", "-count=1", f"-timeout={args.timeout}", "./pkg/kgo/"]
    if args.run:
        cmd.insert(3, f"-run={args.run}")
    t0 = time.monotonic()
    log = open(args.log, "w") if args.log else sys.stderr
    log.write(f"# {' '.join(cmd)} in {src} (KGO_SEEDS={args.bootstrap})\n")
    proc = subprocess.Popen(cmd, cwd=src, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results: dict[str, str] = {}
    output: dict[str, list[str]] = {}
    timed_out = False
    for line in proc.stdout:
        try:
            ev = json.loads(line)
        except ValueError:
            log.write(line)
            continue
        test = ev.get("Test")
        if test and "/" not in test and ev.get("Action") == "run":
            results.setdefault(test, "hung")
        if ev.get("Action") == "output":
            text = ev.get("Output", "")
            if "panic: test timed out" in text:
                timed_out = True
            if test:
                output.setdefault(test, []).append(text)
            else:
                log.write(text)
        if test and "/" not in test and ev.get("Action") in ("pass", "fail", "skip"):
            results[test] = ev["Action"]
            log.write(f"{ev['Action'].upper():4} {test} {ev.get('Elapsed', 0)}s\n")
            if ev["Action"] == "fail":
                log.write("".join(output.get(test, [])[-30:]))
    rc = proc.wait()
    for test, res in results.items():  # still running when the -timeout panic ended the binary
        if res == "hung":
            log.write(f"HUNG {test} (no result before the go test -timeout)\n" + "".join(output.get(test, [])[-30:]))
    counts = {}
    counts["passed"] = sum(v == "pass" for v in results.values())
    counts["failed"] = sum(v in ("fail", "hung") for v in results.values())
    counts["skipped"] = sum(v == "skip" for v in results.values())
    summary = {**counts, "failed_tests": sorted(k for k, v in results.items() if v == "fail"),
               "hung_tests": sorted(k for k, v in results.items() if v == "hung"),
               "timed_out": timed_out, "exit": rc, "franz_go": src.name,
               "seconds": round(time.monotonic() - t0, 1)}
    if log is not sys.stderr:
        log.close()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
