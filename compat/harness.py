"""Run every compat client's scenarios against Apache Kafka and kbroker; allow-lists; the table.

Theory of operation
-------------------
* Brokers. One Apache Kafka (compat.kafka.oracle.start_kafka), one kbroker (`python -m kbroker
  serve` via kbroker.testing.BrokerProcess) and one kbroker cluster (three `kbroker serve` processes
  on a ZooKeeper of their own, kbroker.testing.ProcessCluster, every topic -- the internal ones too --
  replicated three times with min.insync.replicas=2) per run, all with num.partitions=1 and
  group.initial.rebalance.delay.ms=0, on free loopback ports. Every scenario names its topics and
  groups with a unique prefix, so all clients share the brokers. A broker that died during a
  client's run is restarted for the next one (and that is reported).
* Clients. A client is a folder under compat/ with an executable `run` speaking the protocol in
  compat/scenario.py (`--list`; `--bootstrap B --prefix P [--only ...]` -> JSON lines). The harness
  calls `run --list` first (this is where a Java/Go client builds, once, cached), then runs the
  scenarios, watching "start"/"end" events: a scenario that does not end within the scenario timeout
  is recorded as failed, the client process group is killed and restarted with the scenarios still to
  run. The differential runner is a client too; it gets both bootstraps and reports per broker.
* Verdicts. A failure against Apache Kafka means the scenario is wrong: always an error. A kbroker
  failure is an error unless the client's allowlist.txt lists the scenario (fnmatch patterns allowed)
  with a reason; an allow-listed scenario that passes is reported "fixed: remove from allow-list".
  On the cluster, compat/cluster-allowlist.txt (``client/scenario: reason``) also allows what fails
  only there -- one place for the cluster's known gaps.
* Output. A table client x scenario -> Kafka / kbroker, printed and written between the markers in
  compat/README.md; logs of every client run under compat/.out/.
"""
from __future__ import annotations

import fnmatch
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

COMPAT = Path(__file__).resolve().parent
REPO = COMPAT.parent
OUT = COMPAT / ".out"
README = COMPAT / "README.md"
BEGIN, END = "<!-- compat-table:begin -->", "<!-- compat-table:end -->"

# Order of the table; every folder here has run, allowlist.txt and FINDINGS.md.
CLIENTS = ["java", "kafka-cli", "python", "kcat", "franz-go", "sarama", "kafkajs", "differential"]
BROKERS = ["kafka", "kbroker", "kbroker-cluster"]
KBROKERS = ("kbroker", "kbroker-cluster")  # judged by the allow-lists; kafka is the oracle
SINGLE_BROKER_CLIENTS = {"differential"}  # compares two single brokers' answers byte for byte
CLUSTER_ALLOWLIST = COMPAT / "cluster-allowlist.txt"
# KIP-848 consumer groups heartbeat every 500 ms instead of Kafka's 5 s (its minimum is lowered to match),
# so their scenarios rebalance in about a second on both brokers
BROKER_SETTINGS = {"num.partitions": "1", "group.initial.rebalance.delay.ms": "0",
                   "group.consumer.heartbeat.interval.ms": "500", "group.consumer.min.heartbeat.interval.ms": "500"}
# The oracle's server.properties also sets these (compat.kafka.oracle.ORACLE_SETTINGS); kbroker gets the
# same, so DescribeConfigs sources (STATIC_BROKER_CONFIG vs DEFAULT_CONFIG) compare like for like.
KBROKER_SETTINGS = {**BROKER_SETTINGS, "node.id": "1", "default.replication.factor": "1",
                    "offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
                    "transaction.state.log.min.isr": "1"}
# the cluster: everything replicated three times, acks=all needing two in-sync replicas
CLUSTER_BROKERS = 3
CLUSTER_SETTINGS = {**BROKER_SETTINGS, "default.replication.factor": "3", "offsets.topic.replication.factor": "3",
                    "transaction.state.log.replication.factor": "3", "transaction.state.log.min.isr": "2",
                    "min.insync.replicas": "2"}


# ---------------------------------------------------------------------------------------------
# brokers

class Broker:
    name: str
    bootstrap: str
    start_seconds: float = float("nan")
    rss_start: int = 0
    restarts: int = 0

    def alive(self) -> bool:
        from compat.kafka.oracle import api_versions
        try:
            for address in self.bootstrap.split(","):
                host, port = address.rsplit(":", 1)
                api_versions(host, int(port), timeout=5)
            return True
        except OSError:
            return False

    def rss(self) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (OSError, TypeError):
            pass
        return 0

    pid: int | None = None


class KafkaOracle(Broker):
    name = "kafka"

    def start(self) -> "KafkaOracle":
        from compat.kafka.oracle import start_kafka
        self.proc = start_kafka(overrides=BROKER_SETTINGS)
        self.bootstrap, self.pid = self.proc.bootstrap, self.proc.pid
        self.start_seconds = self.proc.start_seconds
        self.rss_start = self.rss()
        return self

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1

    def stop(self) -> None:
        self.proc.stop()


class KBroker(Broker):
    name = "kbroker"

    def start(self) -> "KBroker":
        from kbroker.testing import BrokerProcess
        self.tmp = Path(tempfile.mkdtemp(prefix="compat-kbroker-"))
        self.proc = BrokerProcess(self.tmp / "data", KBROKER_SETTINGS)
        t = time.monotonic()
        self.proc.start(timeout=60)
        self.start_seconds = time.monotonic() - t
        self.bootstrap, self.pid = self.proc.bootstrap, self.proc.pid
        time.sleep(0.2)
        self.rss_start = self.rss()
        return self

    def restart(self) -> None:
        self.proc.stop(timeout=10)
        self.proc.start(timeout=60)
        self.pid = self.proc.pid
        self.restarts += 1

    def stop(self) -> None:
        self.proc.stop(timeout=10)
        log = self.proc.log_path
        if log.exists():
            OUT.mkdir(exist_ok=True)
            (OUT / "kbroker-server.log").write_bytes(log.read_bytes()[-2_000_000:])
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)


class KBrokerCluster(Broker):
    """Three `kbroker serve` processes on a ZooKeeper of their own (kbroker.testing.ProcessCluster)."""
    name = "kbroker-cluster"

    def start(self) -> "KBrokerCluster":
        from kbroker.testing import ProcessCluster
        from kbroker.testing_zookeeper import ZooKeeperServer
        self.tmp = Path(tempfile.mkdtemp(prefix="compat-kbroker-cluster-"))
        t = time.monotonic()
        self.zookeeper = ZooKeeperServer(self.tmp / "zookeeper").start()
        self.cluster = ProcessCluster(self.tmp / "cluster", f"{self.zookeeper.connect}/kbroker", CLUSTER_BROKERS,
                                      CLUSTER_SETTINGS)
        try:
            self.cluster.start()
            self.bootstrap = self.cluster.bootstrap
            self._wait_for_every_broker()
        except Exception:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t
        self.rss_start = self.rss()
        return self

    def _wait_for_every_broker(self, timeout: float = 60) -> None:
        from confluent_kafka.admin import AdminClient
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=5).brokers) \
                        >= CLUSTER_BROKERS:
                    return
            except Exception:  # noqa: BLE001 (not answering yet)
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the cluster's {CLUSTER_BROKERS} brokers did not register in {timeout:.0f}s")

    def _processes(self):
        return self.cluster.processes.values()

    def rss(self) -> int:
        total = 0
        for p in self._processes():
            self.pid = p.pid
            total += super().rss()
        return total

    def restart(self) -> None:
        for node_id, p in self.cluster.processes.items():
            if p.process is None or p.process.poll() is not None:
                self.cluster.start_broker(node_id)
        self.restarts += 1

    def stop(self) -> None:
        self.cluster.stop()
        self.zookeeper.stop()
        OUT.mkdir(exist_ok=True)
        for node_id, p in self.cluster.processes.items():
            if p.log_path.exists():
                (OUT / f"kbroker-cluster-{node_id}-server.log").write_bytes(p.log_path.read_bytes()[-2_000_000:])
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)


class External(Broker):
    """A broker somebody else runs (--kafka/--kbroker HOST:PORT)."""

    def __init__(self, name: str, bootstrap: str):
        self.name, self.bootstrap = name, bootstrap

    def start(self):
        return self

    def restart(self) -> None:
        pass

    def stop(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# allow-lists

@dataclass
class AllowEntry:
    pattern: str
    reason: str
    line: int
    matched_fail: bool = False
    matched_pass: bool = False


def load_allowlist(client: str) -> list[AllowEntry]:
    return load_allowlist_file(COMPAT / client / "allowlist.txt")


def load_allowlist_file(path: Path) -> list[AllowEntry]:
    entries = []
    if not path.exists():
        return entries
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, reason = line.partition(":")
        if not sep or not reason.strip():
            raise ValueError(f"{path}:{n}: expected 'scenario: reason', got {raw!r}")
        entries.append(AllowEntry(pattern.strip(), reason.strip(), n))
    return entries


def allowed(entries: list[AllowEntry], scenario: str) -> AllowEntry | None:
    for e in entries:
        if fnmatch.fnmatchcase(scenario, e.pattern):
            return e
    return None


# ---------------------------------------------------------------------------------------------
# running one client against one broker

@dataclass
class Result:
    client: str
    scenario: str
    broker: str
    status: str  # pass | fail | skip
    detail: str = ""
    seconds: float = 0.0


def client_cmd(client: str) -> list[str]:
    run = COMPAT / client / "run"
    return [str(run)]


def client_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def list_scenarios(client: str, timeout: float = 900) -> list[str]:
    """`run --list`; this is where compiled clients build (once; cached afterwards)."""
    OUT.mkdir(exist_ok=True)
    res = subprocess.run(client_cmd(client) + ["--list"], capture_output=True, text=True,
                         timeout=timeout, env=client_env(), cwd=COMPAT / client,
                         stdin=subprocess.DEVNULL)
    (OUT / f"{client}-list.log").write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        raise RuntimeError(f"{client}: `run --list` failed ({res.returncode}):\n{res.stderr[-3000:]}")
    names = [ln.strip() for ln in res.stdout.splitlines() if ln.strip() and not ln.startswith("[")]
    if not names:
        raise RuntimeError(f"{client}: `run --list` printed no scenarios")
    return names


def _pump(stream, q: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        q.put(line)
    q.put(None)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_client(client: str, scenarios: list[str], bootstraps: dict[str, str], *,
               scenario_timeout: float, log=None, extra_args: list[str] = ()) -> list[Result]:
    """Run `scenarios` of `client`; bootstraps maps broker name -> bootstrap (one entry, or both
    for the differential runner, whose events carry "broker")."""
    default_broker = next(iter(bootstraps)) if len(bootstraps) == 1 else None
    remaining = list(scenarios)
    results: list[Result] = []
    done: set[tuple[str, str]] = set()
    attempt = 0
    logf = open(OUT / f"{client}-{'-'.join(bootstraps)}.log", "a") if log is None else log
    while remaining:
        attempt += 1
        prefix = f"c{uuid.uuid4().hex[:6]}-{client}"
        args = list(extra_args)
        if default_broker:
            args += ["--bootstrap", bootstraps[default_broker]]
        else:
            args += ["--bootstrap", bootstraps["kbroker"], "--oracle", bootstraps["kafka"]]
        cmd = client_cmd(client) + args + ["--prefix", prefix, "--only", ",".join(remaining)]
        logf.write(f"\n=== attempt {attempt}: {' '.join(cmd)}\n")
        logf.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf, text=True,
                                cwd=COMPAT / client, env=client_env(), start_new_session=True,
                                stdin=subprocess.DEVNULL)
        q: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, q), daemon=True).start()
        current, started = None, time.monotonic()
        progressed = False
        timed_out = False
        while True:
            wait = max(0.1, started + scenario_timeout - time.monotonic())
            try:
                line = q.get(timeout=wait)
            except queue.Empty:
                timed_out = True
                _kill(proc)
                break
            if line is None:
                break
            try:
                ev = json.loads(line)
                if not isinstance(ev, dict) or "event" not in ev:
                    raise ValueError
            except ValueError:
                logf.write(line)
                continue
            if ev["event"] == "start":
                current, started = ev["scenario"], time.monotonic()
            elif ev["event"] == "end":
                name = ev["scenario"]
                brokers = [ev["broker"]] if ev.get("broker") else [default_broker]
                for b in brokers:
                    if b and (name, b) not in done:
                        done.add((name, b))
                        results.append(Result(client, name, b, ev.get("status", "fail"),
                                              ev.get("detail", ""), ev.get("seconds", 0.0)))
                if name in remaining and (default_broker or all((name, b) in done for b in bootstraps)):
                    remaining.remove(name)
                current, started, progressed = None, time.monotonic(), True
        rc = proc.wait()
        logf.write(f"=== exit {rc}{' (killed: timeout)' if timed_out else ''}\n")
        logf.flush()
        if current is not None:
            why = (f"timed out after {scenario_timeout:.0f}s (client killed)" if timed_out
                   else f"client exited with {rc} during the scenario")
            for b in bootstraps:
                if (current, b) not in done:
                    done.add((current, b))
                    results.append(Result(client, current, b, "fail", why, scenario_timeout))
            if current in remaining:
                remaining.remove(current)
        elif remaining and not progressed:
            why = ("client stalled between scenarios" if timed_out
                   else f"client exited with {rc} before reporting (see compat/.out/{client}-*.log)")
            for name in remaining:
                for b in bootstraps:
                    if (name, b) not in done:
                        results.append(Result(client, name, b, "fail", why))
            remaining = []
    if log is None:
        logf.close()
    return results


# ---------------------------------------------------------------------------------------------
# verdicts and the table

@dataclass
class Report:
    results: list[Result]
    scenarios: dict[str, list[str]]
    errors: list[str] = field(default_factory=list)      # make the run fail
    fixed: list[str] = field(default_factory=list)       # allow-listed but passing
    allowed: list[tuple[str, str, str]] = field(default_factory=list)  # client, scenario, reason
    notes: list[str] = field(default_factory=list)
    extra_rows: list[str] = field(default_factory=list)

    def cell(self, client: str, scenario: str, broker: str) -> Result | None:
        for r in self.results:
            if (r.client, r.scenario, r.broker) == (client, scenario, broker):
                return r
        return None


def load_cluster_allowlist() -> list[AllowEntry]:
    """compat/cluster-allowlist.txt: ``client/scenario-pattern: reason``, failures only the cluster has."""
    return load_allowlist_file(CLUSTER_ALLOWLIST)


def brokers_of(client: str, brokers: list[str]) -> list[str]:
    """The brokers a client's scenarios run against (the differential runner: the single ones)."""
    return [b for b in brokers if not (client in SINGLE_BROKER_CLIENTS and b == "kbroker-cluster")]


def allow_for(client: str, scenario: str, broker: str, entries: list[AllowEntry],
              cluster_entries: list[AllowEntry]) -> AllowEntry | None:
    """The allow-list entry that excuses a kbroker failure, if one does."""
    if broker not in KBROKERS:
        return None
    return allowed(entries, scenario) or (
        allowed(cluster_entries, f"{client}/{scenario}") if broker == "kbroker-cluster" else None)


def judge(results: list[Result], scenarios: dict[str, list[str]], brokers: list[str]) -> Report:
    rep = Report(results, scenarios)
    cluster_entries = load_cluster_allowlist()
    for client, names in scenarios.items():
        entries = load_allowlist(client)
        for name in names:
            for broker in brokers_of(client, brokers):
                r = rep.cell(client, name, broker)
                if r is None:
                    rep.errors.append(f"{client} {name} [{broker}]: no result")
                    continue
                if broker == "kafka":
                    if r.status == "fail":
                        rep.errors.append(f"{client} {name} fails against Apache Kafka (the scenario "
                                          f"is wrong): {r.detail}")
                    continue
                e = allow_for(client, name, broker, entries, cluster_entries)
                if r.status == "fail":
                    if e:
                        e.matched_fail = True
                        rep.allowed.append((client, f"{name} [{broker}]", e.reason))
                    else:
                        rep.errors.append(f"{client} {name} fails against {broker}: {r.detail}")
                elif e:
                    e.matched_pass = True
        if any(b in brokers for b in KBROKERS):
            _report_stale(rep, entries, f"{client}/allowlist.txt", names)
    if "kbroker-cluster" in brokers:
        _report_stale(rep, cluster_entries, CLUSTER_ALLOWLIST.name,
                      [f"{c}/{n}" for c, ns in scenarios.items() for n in ns])
    return rep


def _report_stale(rep: Report, entries: list[AllowEntry], where: str, names: list[str]) -> None:
    for e in entries:
        if not e.matched_fail and e.matched_pass:
            rep.fixed.append(f"{where}:{e.line}: {e.pattern} passes now — fixed, remove from allow-list")
        elif not e.matched_fail and not e.matched_pass and all(not fnmatch.fnmatchcase(n, e.pattern) for n in names):
            rep.notes.append(f"{where}:{e.line}: {e.pattern} matches no scenario")


def _mark(r: Result | None, allow: bool) -> str:
    if r is None:
        return "—"
    if r.status == "pass":
        return "pass"
    if r.status == "skip":
        return "skip"
    return "fail (allowed)" if allow else "**FAIL**"


def table(rep: Report, brokers: list[str]) -> str:
    names = {"kafka": "Apache Kafka 4.4", "kbroker": "kbroker", "kbroker-cluster": "kbroker 3-broker cluster"}
    lines = []
    # summary
    lines.append("| client | scenarios | " + " | ".join(f"{names[b]} pass" for b in brokers) + " |")
    lines.append("|---|---:|" + "---:|" * len(brokers))
    for client, scen in rep.scenarios.items():
        cells = []
        for b in brokers:
            if b not in brokers_of(client, brokers):
                cells.append("—")
                continue
            n = sum(1 for s in scen if (r := rep.cell(client, s, b)) and r.status == "pass")
            cells.append(f"{n}/{len(scen)}")
        lines.append(f"| {client} | {len(scen)} | " + " | ".join(cells) + " |")
    lines += rep.extra_rows
    lines.append("")
    lines.append("| client | scenario | " + " | ".join(names[b] for b in brokers) + " |")
    lines.append("|---|---|" + "---|" * len(brokers))
    cluster_entries = load_cluster_allowlist()
    for client, scen in rep.scenarios.items():
        entries = load_allowlist(client)
        for s in scen:
            cells = []
            for b in brokers:
                allow = allow_for(client, s, b, entries, cluster_entries) is not None
                cells.append(_mark(rep.cell(client, s, b), allow))
            lines.append(f"| {client} | {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    body = README.read_text() if README.exists() else f"# compat\n\n{BEGIN}\n{END}\n"
    if BEGIN not in body or END not in body:
        body += f"\n{BEGIN}\n{END}\n"
    head, rest = body.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def run_parallel(jobs, n: int):
    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result() for f in [pool.submit(j) for j in jobs]]
