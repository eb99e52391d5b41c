"""python -m compat — every compat client's scenarios against Apache Kafka and kbroker.

    python -m compat                         all clients, both brokers, table into compat/README.md
    python -m compat --clients python,kcat   some clients
    python -m compat --brokers kafka         only against Apache Kafka (checks the scenarios)
    python -m compat --brokers kbroker-cluster   only against a 3-broker kbroker cluster (on ZooKeeper)
    python -m compat --kafka H:P --kbroker H:P   use brokers that are already running
    python -m compat --kgo-tests             also franz-go's own kgo integration tests on the single brokers
    python -m compat --kgo-tests --kgo-cluster   ... and on the cluster (replication factor 3)
    python -m compat --no-readme             do not rewrite compat/README.md

Exit status: 0 when every scenario passes against Apache Kafka and every kbroker failure is
allow-listed (compat/<client>/allowlist.txt); 1 otherwise; 2 for a broken setup (a client that does
not build, a broker that does not start).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

from . import harness as h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compat", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default=",".join(h.CLIENTS))
    ap.add_argument("--brokers", default=",".join(h.BROKERS))
    ap.add_argument("--kafka", metavar="HOST:PORT", help="use this running Apache Kafka")
    ap.add_argument("--kbroker", metavar="HOST:PORT", help="use this running kbroker")
    ap.add_argument("--kbroker-cluster", metavar="HOST:PORT,...", help="use this running kbroker cluster")
    ap.add_argument("--jobs", type=int, default=3, help="client runs in parallel (default 3)")
    ap.add_argument("--scenario-timeout", type=float, default=60.0)
    ap.add_argument("--kgo-tests", action="store_true", help="run franz-go's kgo integration tests too")
    ap.add_argument("--kgo-timeout", default="6m")
    ap.add_argument("--kgo-cluster", action="store_true",
                    help="with --kgo-tests: also against the kbroker cluster (replication factor 3)")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--strict", action="store_true", help="allow-listed scenarios that pass fail the run")
    args = ap.parse_args(argv)

    clients = [c for c in args.clients.split(",") if c]
    brokers = [b for b in args.brokers.split(",") if b]
    for c in clients:
        if c not in h.CLIENTS:
            ap.error(f"unknown client {c}; known: {', '.join(h.CLIENTS)}")
    for b in brokers:
        if b not in h.BROKERS:
            ap.error(f"unknown broker {b}; known: {', '.join(h.BROKERS)}")
    if "differential" in clients and not {"kafka", "kbroker"} <= set(brokers):
        clients.remove("differential")
    partial = set(clients) != set(h.CLIENTS) or brokers != h.BROKERS
    h.OUT.mkdir(exist_ok=True)
    t_all = time.monotonic()

    # 1. build / list scenarios (compiled clients build here, once)
    scenarios: dict[str, list[str]] = {}
    setup_errors = []
    t = time.monotonic()
    for c in clients:
        t1 = time.monotonic()
        try:
            scenarios[c] = h.list_scenarios(c)
            print(f"[compat] {c}: {len(scenarios[c])} scenarios ({time.monotonic() - t1:.1f}s)", flush=True)
        except Exception as exc:  # noqa: BLE001
            setup_errors.append(f"{c}: {exc}")
            print(f"[compat] {c}: SETUP FAILED: {exc}", flush=True)
    build_seconds = time.monotonic() - t

    # 2. brokers
    live: dict[str, h.Broker] = {}
    try:
        starters = {"kafka": lambda: h.External("kafka", args.kafka) if args.kafka else h.KafkaOracle(),
                    "kbroker": lambda: h.External("kbroker", args.kbroker) if args.kbroker else h.KBroker(),
                    "kbroker-cluster": lambda: (h.External("kbroker-cluster", args.kbroker_cluster)
                                                if args.kbroker_cluster else h.KBrokerCluster())}
        errs = []

        def start(name):
            try:
                live[name] = starters[name]().start()
            except Exception as exc:  # noqa: BLE001
                errs.append(f"{name} did not start: {exc}")
        threads = [threading.Thread(target=start, args=(b,)) for b in brokers]
        [th.start() for th in threads]
        [th.join() for th in threads]
        if errs:
            print("\n".join(errs), file=sys.stderr)
            return 2
        for b in live.values():
            print(f"[compat] {b.name}: {b.bootstrap} start {b.start_seconds:.2f}s "
                  f"RSS {b.rss_start / 2**20:.0f} MiB", flush=True)

        # 3. scenarios: one job per (client, broker); the differential runner takes both brokers
        results: list[h.Result] = []
        lock = threading.Lock()
        notes: list[str] = []
        timings: dict[str, float] = {}

        def job(client, bnames):
            t0 = time.monotonic()
            res = h.run_client(client, scenarios[client], {b: live[b].bootstrap for b in bnames},
                               scenario_timeout=args.scenario_timeout)
            with lock:
                results.extend(res)
                timings[f"{client}@{'+'.join(bnames)}"] = time.monotonic() - t0
                for b in bnames:
                    if not live[b].alive():
                        notes.append(f"{b} was not answering after {client}'s run; restarted it")
                        live[b].restart()
                ok = sum(r.status == "pass" for r in res)
                print(f"[compat] {client} vs {'+'.join(bnames)}: {ok}/{len(res)} pass "
                      f"({time.monotonic() - t0:.1f}s)", flush=True)

        jobs = []
        for c in scenarios:
            if c == "differential":
                jobs.append(lambda c=c: job(c, ["kafka", "kbroker"]))
            else:
                jobs += [lambda c=c, b=b: job(c, [b]) for b in h.brokers_of(c, brokers) if b != "kbroker-cluster"]
        # the cluster's runs last: three JVM-heavy runs of one client at once (kafka-cli) time out on 2 cores
        if "kbroker-cluster" in brokers:
            jobs += [lambda c=c: job(c, ["kbroker-cluster"]) for c in scenarios
                     if "kbroker-cluster" in h.brokers_of(c, brokers)]
        kgo: dict[str, dict] = {}
        if args.kgo_tests:
            def kgo_job(b):
                t0 = time.monotonic()
                out = subprocess.run([sys.executable, str(h.COMPAT / "franz-go" / "kgo_tests.py"),
                                      "--bootstrap", live[b].bootstrap, "--timeout", args.kgo_timeout,
                                      "--rf", "3" if b == "kbroker-cluster" else "1",
                                      "--log", str(h.OUT / f"kgo-tests-{b}.log")],
                                     capture_output=True, text=True, env=h.client_env())
                try:
                    kgo[b] = json.loads(out.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    kgo[b] = {"error": (out.stdout + out.stderr)[-500:]}
                kgo[b]["seconds"] = round(time.monotonic() - t0, 1)
                print(f"[compat] franz-go kgo tests vs {b}: {kgo[b]}", flush=True)
            # first, so the long runs overlap with the short ones
            kgo_brokers = [b for b in brokers if b != "kbroker-cluster" or args.kgo_cluster]
            jobs = [lambda b=b: kgo_job(b) for b in kgo_brokers] + jobs
        h.run_parallel(jobs, args.jobs)
        rss_end = {b.name: b.rss() for b in live.values()}
    finally:
        for b in live.values():
            b.stop()

    # 4. verdicts
    rep = h.judge(results, scenarios, brokers)
    rep.errors[:0] = [f"setup: {e}" for e in setup_errors]
    rep.notes += notes
    if kgo:
        rep.extra_rows.append("")
        rep.extra_rows.append("franz-go's own kgo integration tests (`compat/franz-go/kgo_tests.py`): "
                              + "; ".join(f"{b}: {d.get('passed', '?')} passed, {d.get('failed', '?')} "
                                          f"failed, {d.get('skipped', '?')} skipped ({d['seconds']}s)"
                                          for b, d in kgo.items()))
    text = h.table(rep, brokers)
    stats = []
    for name, b in live.items():
        stats.append(f"{name}: start {b.start_seconds:.2f}s, RSS {b.rss_start / 2**20:.0f} MiB idle, "
                     f"{rss_end.get(name, 0) / 2**20:.0f} MiB after the run"
                     + (f", restarted {b.restarts}x" if b.restarts else ""))
    total = time.monotonic() - t_all
    stamp = (f"Last full run: {time.strftime('%Y-%m-%d')}, {total:.0f}s "
             f"(build/list {build_seconds:.0f}s). " + "; ".join(stats) + ".")
    print()
    print(text)
    print()
    print(stamp)
    if not args.no_readme and not partial:
        h.write_readme(stamp + "\n\n" + text)
        print(f"[compat] table written to {h.README.relative_to(h.REPO)}")
    for title, items in (("allow-listed kbroker failures", [f"{c} {s}: {why}" for c, s, why in rep.allowed]),
                         ("FIXED (remove from allow-list)", rep.fixed), ("notes", rep.notes),
                         ("ERRORS", rep.errors)):
        if items:
            print(f"\n{title} ({len(items)}):")
            for i in items:
                print(f"  {i}")
    print(f"\n[compat] {len(results)} results, {len(rep.errors)} errors, {len(rep.allowed)} allowed, "
          f"{len(rep.fixed)} fixed; {total:.0f}s")
    if setup_errors:
        return 2
    return 1 if rep.errors or (args.strict and rep.fixed) else 0


if __name__ == "__main__":
    sys.exit(main())
