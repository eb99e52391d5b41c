"""Apache Kafka as a test oracle: resolve its jars with Maven, run a broker, run its CLI tools.

Theory of operation
-------------------
* Jars. ``pom.xml`` beside this file names Kafka's broker (``kafka_2.13``), ``kafka-server``,
  ``kafka-storage``, ``kafka-tools``, ``kafka-clients`` and the log4j2 runtime. ``install()`` runs
  ``mvn dependency:build-classpath`` once; Maven downloads into its own cache (~/.m2) and writes the
  list of jar paths to ``build/classpath-<version>.txt``. Later calls read that file (no JVM, no
  Maven) as long as it is newer than pom.xml and every jar in it still exists.
* Broker. Kafka's shell scripts are thin wrappers around ``java -cp <jars> <MainClass>``;
  we call java directly with the same JVM flags kafka-run-class.sh uses. ``start_kafka()`` writes a
  ``server.properties`` for a single combined broker+controller (KRaft, static quorum with one voter)
  on two free loopback ports, formats the data dir with ``kafka.tools.StorageTool format`` (what
  kafka-storage.sh runs; skipped when the dir is already formatted, so a restart keeps the data),
  then starts ``kafka.Kafka server.properties``. It is ready when a raw ApiVersions v0 request on
  the broker port is answered with error 0. Broker logs go to ``<workdir>/logs/server.log``, JVM
  stdout/stderr to ``<workdir>/logs/stdout.log``.
* Tools. ``run_tool("kafka-topics", ...)`` maps the script name to its main class in Kafka 4.x
  (several moved from Scala ``kafka.*`` to ``org.apache.kafka.tools.*``) and runs it with
  tools-style logging (WARN+ to stderr).
* Cleanup. ``stop()`` sends SIGTERM, waits, then SIGKILL, and removes a workdir it created.
  Live brokers are also stopped at interpreter exit.

Standard library only, so tests and benchmarks anywhere can import it.
"""
from __future__ import annotations

import atexit
import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

KAFKA_VERSION = "4.4.0"  # keep in step with <kafka.version> in pom.xml

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
BUILD = HERE / "build"
SERVER_LOG4J = HERE / "log4j2-server.properties"
TOOLS_LOG4J = HERE / "log4j2-tools.properties"

# bin/<script>.sh -> main class, as in Kafka 4.x (checked against the 4.4.0 jars).
TOOLS = {
    "kafka-storage": "kafka.tools.StorageTool",
    "kafka-server-start": "kafka.Kafka",
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs": "org.apache.kafka.tools.ConfigCommand",  # was kafka.admin.ConfigCommand in 3.x
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-share-groups": "org.apache.kafka.tools.consumer.group.ShareGroupCommand",
    "kafka-groups": "org.apache.kafka.tools.GroupsCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-dump-log": "org.apache.kafka.tools.DumpLogSegments",  # was kafka.tools.DumpLogSegments in 3.x
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-features": "org.apache.kafka.tools.FeatureCommand",
    "kafka-metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-acls": "org.apache.kafka.tools.AclCommand",
    "kafka-verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
    "kafka-verifiable-consumer": "org.apache.kafka.tools.VerifiableConsumer",
    "kafka-e2e-latency": "org.apache.kafka.tools.EndToEndLatency",
}

# KAFKA_JVM_PERFORMANCE_OPTS from kafka-run-class.sh.
JVM_PERFORMANCE_OPTS = [
    "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
]

# Broker settings for a single-node oracle; callers' overrides win.
ORACLE_SETTINGS = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
}


class KafkaError(RuntimeError):
    """Maven resolution or broker start failed; the message carries the relevant log tail."""


# ---------------------------------------------------------------------------------------------
# jars

def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def install(version: str | None = None, *, force: bool = False, quiet: bool = True) -> list[str]:
    """Resolve Kafka's jars into ~/.m2 (once) and return the classpath as a list of jar paths."""
    version = version or KAFKA_VERSION
    cp_file = BUILD / f"classpath-{version}.txt"
    if not force and cp_file.exists() and cp_file.stat().st_mtime >= POM.stat().st_mtime:
        jars = cp_file.read_text().strip().split(os.pathsep)
        if jars and all(os.path.exists(j) for j in jars):
            return jars
    BUILD.mkdir(exist_ok=True)
    tmp = cp_file.with_suffix(f".{os.getpid()}.tmp")
    cmd = ["mvn", "-B", "-f", str(POM),
           "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath",
           "-Dmdep.includeScope=runtime", f"-Dmdep.outputFile={tmp}", f"-Dkafka.version={version}"]
    if quiet:
        cmd.insert(1, "-q")
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0 or not tmp.exists():
        raise KafkaError(f"mvn failed ({res.returncode}):\n" + "\n".join(res.stdout.splitlines()[-40:]))
    os.replace(tmp, cp_file)
    return cp_file.read_text().strip().split(os.pathsep)


def java_command(main_class: str, *args: str, heap: str = "256m", server: bool = False,
                 logs_dir: Path | None = None, jvm_opts: list[str] | tuple = (),
                 version: str | None = None) -> list[str]:
    """The `java ...` argv kafka-run-class.sh would build for `main_class`."""
    log4j = SERVER_LOG4J if server else TOOLS_LOG4J
    cmd = [_java(), f"-Xmx{heap}", *JVM_PERFORMANCE_OPTS, f"-Dlog4j2.configurationFile=file:{log4j}"]
    if logs_dir is not None:
        cmd.append(f"-Dkafka.logs.dir={logs_dir}")
    cmd += [*jvm_opts, "-cp", os.pathsep.join(install(version)), main_class, *args]
    return cmd


def tool_command(tool: str, *args: str, **kw) -> list[str]:
    """argv for a Kafka CLI tool by script name ("kafka-topics" or "kafka-topics.sh") or class."""
    name = tool.removesuffix(".sh")
    main_class = TOOLS.get(name) or (tool if "." in tool else None)
    if main_class is None:
        raise KeyError(f"unknown Kafka tool {tool!r}; known: {', '.join(sorted(TOOLS))}")
    return java_command(main_class, *map(str, args), **kw)


def run_tool(tool: str, *args, input: str | None = None, timeout: float | None = 120,
             check: bool = False, capture: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a Kafka CLI tool to completion, e.g. run_tool("kafka-topics", "--bootstrap-server", b, "--list").

    stdout/stderr are captured as text unless capture=False; logging is WARN+ on stderr.
    """
    return subprocess.run(tool_command(tool, *args, **kw), input=input, text=True, timeout=timeout,
                          check=check, capture_output=capture,
                          stdin=None if input is not None else subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# wire check

def api_versions(host: str, port: int, timeout: float = 5.0) -> dict[int, tuple[int, int]]:
    """Send ApiVersions v0 on a fresh connection; return {api_key: (min, max)} or raise OSError."""
    client_id = b"kbroker-oracle"
    body = struct.pack(">hhih", 18, 0, 0x6B62, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        resp = _recv_exact(s, size)
    corr, err, n = struct.unpack_from(">ihi", resp)
    if corr != 0x6B62 or err != 0:
        raise OSError(f"ApiVersions answered correlation={corr} error={err}")
    return {k: (lo, hi) for k, lo, hi in (struct.unpack_from(">hhh", resp, 10 + 6 * i) for i in range(n))}


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def random_cluster_id() -> str:
    """Like `kafka-storage random-uuid`: url-safe base64 of a v4 UUID, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


# ---------------------------------------------------------------------------------------------
# broker

_LIVE: set["KafkaBroker"] = set()


class KafkaBroker:
    """A running single-node Kafka; use as a context manager or call stop()."""

    def __init__(self, proc, workdir, port, controller_port, cluster_id, owns_workdir, version):
        self.proc: subprocess.Popen = proc
        self.workdir: Path = workdir
        self.port: int = port
        self.controller_port: int = controller_port
        self.cluster_id: str = cluster_id
        self.version: str = version
        self.start_seconds: float = float("nan")   # Popen -> first answered ApiVersions
        self.format_seconds: float = 0.0           # StorageTool format (0 when reused)
        self._owns_workdir = owns_workdir
        _LIVE.add(self)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / "logs" / "server.log"

    def rss_bytes(self) -> int:
        """Resident set size of the broker JVM, from /proc/<pid>/status VmRSS."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise ProcessLookupError(self.pid)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for p in (self.workdir / "logs" / "stdout.log", self.log_path):
            tail = p.read_text(errors="replace").splitlines()[-lines:] if p.exists() else []
            if tail:
                out.append(f"--- {p.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out) or "(no Kafka log written)"

    def stop(self, timeout: float = 30.0, keep_workdir: bool = False) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Idempotent. Returns the exit code."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            _LIVE.discard(self)
            if self._owns_workdir and not keep_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
        return self.proc.returncode

    def __enter__(self) -> "KafkaBroker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<KafkaBroker {self.version} {self.bootstrap} pid={self.pid} dir={self.workdir}>"


def _read_props(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            props[k.strip()] = v.strip()
    return props


def start_kafka(workdir: Path | str | None = None, overrides: dict | None = None, *,
                timeout: float = 90.0, heap: str = "512m", jvm_opts: list[str] | tuple = (),
                version: str | None = None) -> KafkaBroker:
    """Start a single-node KRaft Kafka on loopback and wait until it answers ApiVersions.

    workdir: where server.properties, data/ and logs/ go; a temp dir (removed on stop) if None.
    An already formatted workdir is reused as is (same cluster id, data, and ports if still free).
    overrides: broker configs merged over ORACLE_SETTINGS (values are str()-ed).
    """
    version = version or KAFKA_VERSION
    classpath_jars = install(version)  # before any timing, so a cold Maven run is not counted
    assert classpath_jars
    owns = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="kafka-oracle-")) if owns else Path(workdir).resolve()
    data, logs = wd / "data", wd / "logs"
    data.mkdir(parents=True, exist_ok=True)
    logs.mkdir(exist_ok=True)
    props_path = wd / "server.properties"
    formatted = (data / "meta.properties").exists()

    ports = None
    if formatted and (wd / "ports").exists():  # restart: keep the old ports when we can
        try:
            ports = [int(p) for p in (wd / "ports").read_text().split()][:2]
        except ValueError:
            ports = None
        if not ports or len(ports) != 2 or not all(map(_port_free, ports)):
            ports = None
    port, cport = ports or _free_ports(2)

    props = dict(ORACLE_SETTINGS)
    props.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "log.dirs": str(data),
    })
    props.update({k: str(v) for k, v in (overrides or {}).items()})
    props_path.write_text("# written by compat/kafka/oracle.py\n"
                          + "".join(f"{k}={v}\n" for k, v in props.items()))
    (wd / "ports").write_text(f"{port} {cport}\n")  # broker port, controller port (for restarts)

    def fail(msg: str, broker: KafkaBroker | None = None, text: str = "") -> KafkaError:
        tail = broker.log_tail() if broker else text
        if broker:
            broker.stop()
        elif owns:
            shutil.rmtree(wd, ignore_errors=True)
        return KafkaError(f"{msg}\n{tail}")

    cluster_id = ""
    format_seconds = 0.0
    if formatted:
        cluster_id = _read_props(data / "meta.properties").get("cluster.id", "")
    else:
        cluster_id = random_cluster_id()
        t = time.monotonic()
        res = subprocess.run(
            java_command(TOOLS["kafka-storage"], "format", "--cluster-id", cluster_id,
                         "--config", str(props_path), version=version),
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        format_seconds = time.monotonic() - t
        if res.returncode != 0:
            raise fail(f"kafka-storage format failed ({res.returncode})", text=res.stdout + res.stderr)

    cmd = java_command("kafka.Kafka", str(props_path), heap=heap, server=True, logs_dir=logs,
                       jvm_opts=jvm_opts, version=version)
    with open(logs / "stdout.log", "ab") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=wd, start_new_session=True)
    broker = KafkaBroker(proc, wd, port, cport, cluster_id, owns, version)
    broker.format_seconds = format_seconds
    deadline = t0 + timeout
    while True:
        if proc.poll() is not None:
            raise fail(f"Kafka exited with {proc.returncode} during startup", broker)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise fail(f"Kafka did not answer ApiVersions on {broker.bootstrap} within {timeout}s", broker)
        try:
            api_versions("127.0.0.1", port, timeout=min(remaining, 5.0))
            break
        except OSError:
            time.sleep(0.05)
    broker.start_seconds = time.monotonic() - t0
    return broker


class KafkaCluster:
    """Several KafkaBroker nodes forming one KRaft cluster (each a combined broker and controller)."""

    def __init__(self, nodes: dict[int, KafkaBroker], workdir: Path, owns_workdir: bool):
        self.nodes = nodes
        self.workdir = workdir
        self._owns_workdir = owns_workdir

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes.values())

    def restart_node(self, node_id: int, timeout: float = 90.0) -> None:
        """Start a stopped (or killed) node again with its data and ports."""
        old = self.nodes[node_id]
        cmd = java_command("kafka.Kafka", str(old.workdir / "server.properties"), heap="512m", server=True,
                           logs_dir=old.workdir / "logs", version=old.version)
        with open(old.workdir / "logs" / "stdout.log", "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=old.workdir, start_new_session=True)
        node = KafkaBroker(proc, old.workdir, old.port, old.controller_port, old.cluster_id, False, old.version)
        self.nodes[node_id] = node
        _wait_answering(node, timeout)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop(timeout=15)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "KafkaCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _wait_answering(node: KafkaBroker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if node.proc.poll() is not None:
            raise KafkaError(f"Kafka node exited with {node.proc.returncode}\n{node.log_tail()}")
        if time.monotonic() > deadline:
            raise KafkaError(f"Kafka node {node.bootstrap} did not answer within {timeout}s\n{node.log_tail()}")
        try:
            api_versions("127.0.0.1", node.port, timeout=5.0)
            return
        except OSError:
            time.sleep(0.1)


def start_kafka_cluster(nodes: int = 3, overrides: dict | None = None, *, workdir: Path | str | None = None,
                        timeout: float = 120.0, heap: str = "512m", version: str | None = None) -> KafkaCluster:
    """A KRaft cluster of ``nodes`` combined broker+controller nodes on loopback (static quorum of
    every node), formatted with one cluster id; returns once every node answers ApiVersions."""
    version = version or KAFKA_VERSION
    install(version)
    owns = workdir is None
    root = Path(tempfile.mkdtemp(prefix="kafka-cluster-")) if owns else Path(workdir).resolve()
    ports = _free_ports(2 * nodes)
    broker_ports, controller_ports = ports[:nodes], ports[nodes:]
    voters = ",".join(f"{i + 1}@127.0.0.1:{controller_ports[i]}" for i in range(nodes))
    cluster_id = random_cluster_id()
    replication = str(min(3, nodes))
    started: dict[int, KafkaBroker] = {}
    for i in range(nodes):
        node_id = i + 1
        wd = root / f"node-{node_id}"
        (wd / "data").mkdir(parents=True, exist_ok=True)
        (wd / "logs").mkdir(exist_ok=True)
        props = dict(ORACLE_SETTINGS)
        props.update({
            "node.id": str(node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{broker_ports[i]},CONTROLLER://127.0.0.1:{controller_ports[i]}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_ports[i]}",
            "controller.quorum.voters": voters,
            "log.dirs": str(wd / "data"),
            "default.replication.factor": replication, "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication, "transaction.state.log.min.isr": "2",
        })
        props.update({k: str(v) for k, v in (overrides or {}).items()})
        (wd / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        res = subprocess.run(java_command(TOOLS["kafka-storage"], "format", "--cluster-id", cluster_id,
                                          "--config", str(wd / "server.properties"), version=version),
                             capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise KafkaError(f"kafka-storage format failed ({res.returncode})\n{res.stdout}{res.stderr}")
        cmd = java_command("kafka.Kafka", str(wd / "server.properties"), heap=heap, server=True,
                           logs_dir=wd / "logs", version=version)
        with open(wd / "logs" / "stdout.log", "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=wd,
                                    start_new_session=True)
        started[node_id] = KafkaBroker(proc, wd, broker_ports[i], controller_ports[i], cluster_id, False, version)
    cluster = KafkaCluster(started, root, owns)
    try:
        for node in started.values():
            _wait_answering(node, timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@atexit.register
def _stop_all() -> None:
    for b in list(_LIVE):
        b.stop(timeout=10)
