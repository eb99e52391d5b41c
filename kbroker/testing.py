"""pytest plugin (entry point `kbroker`): real kbroker brokers for your test suite.

Fixtures:
  kbroker            a broker running in this process (its own thread and trio loop), on a free
                     loopback port with a temporary data directory. `.bootstrap` is "127.0.0.1:PORT".
  kbroker_factory    start(**overrides) more brokers, e.g. with other configs; all are stopped at the end.
  kbroker_process    a broker in a separate OS process (`python -m kbroker serve`), for stories that
                     restart it, or kill -9 it mid-write.
  kbroker_cluster    start(brokers=3, **overrides): several brokers in this process, coordinated by an
                     in-memory tree (ZooKeeper's semantics); `.bootstrap` lists them all; brokers can
                     be stopped and started again (stop_broker(n) / start_broker(n)), or shut down
                     as SIGTERM does it (shut_down_broker(n): controlled shutdown first).

Config overrides use Kafka's names: kbroker_factory(**{"num.partitions": 3}). Test-friendly defaults
are applied (group.initial.rebalance.delay.ms=0, one partition), as a test Kafka would be set up.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio

TEST_DEFAULTS = {
    "listeners": "PLAINTEXT://127.0.0.1:0",
    "group.initial.rebalance.delay.ms": "0",
}


def _settings(data_dir: Path, overrides: dict[str, Any]) -> dict[str, str]:
    settings = {**TEST_DEFAULTS, "log.dirs": str(data_dir)}
    settings.update({key: str(value) for key, value in overrides.items()})
    return settings


class InProcessBroker:
    """A broker served by trio in a background thread of this process."""

    def __init__(self, data_dir: Path, overrides: dict[str, Any] | None = None):
        self.data_dir = Path(data_dir)
        self.overrides = dict(overrides or {})
        self.broker = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._failure: BaseException | None = None

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def start(self, timeout: float = 30) -> "InProcessBroker":
        from .broker import Broker
        from .cli import STANDALONE_DEFAULTS
        from .config import load_broker_config

        settings = _settings(self.data_dir, self.overrides)
        config = load_broker_config(None, [f"{k}={v}" for k, v in settings.items()],
                                    builtin_settings=STANDALONE_DEFAULTS)
        started = threading.Event()

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            with trio.CancelScope() as scope:
                self._cancel_scope = scope
                async with trio.open_nursery() as nursery:
                    self.broker = await nursery.start(Broker(config).serve)
                    started.set()

        def run() -> None:
            try:
                trio.run(main)
            except BaseException as exc:  # reported to the test thread by start()
                self._failure = exc
            finally:
                started.set()

        self._thread = threading.Thread(target=run, name="kbroker", daemon=True)
        self._thread.start()
        if not started.wait(timeout) or self._failure is not None or self.broker is None:
            raise RuntimeError(f"kbroker did not start: {self._failure!r}")
        return self

    def stop(self, timeout: float = 30) -> None:
        if self._thread is None:
            return
        if self._thread.is_alive() and self._token is not None:
            try:
                trio.from_thread.run_sync(self._cancel_scope.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(timeout)
        self._thread = None

    def restart(self) -> "InProcessBroker":
        self.stop()
        return self.start()

    def __enter__(self) -> "InProcessBroker":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class InProcessCluster:
    """Several brokers served by one trio loop in a background thread of this process, coordinated by
    an in-memory tree with ZooKeeper's semantics (kbroker.coordination.store): a cluster in a blink,
    nothing else to run. Brokers are numbered 1..N; ``stop_broker(n)`` stops one as a crash would
    look to the others (its session ends, its ephemeral registration goes), ``start_broker(n)``
    brings it back on the same port and data directory."""

    def __init__(self, base_dir: Path, brokers: int = 3, overrides: dict[str, Any] | None = None):
        self.base_dir = Path(base_dir)
        self.count = brokers
        from .cli import cluster_replication_defaults

        self.overrides = {**cluster_replication_defaults(brokers), **(overrides or {})}
        self.brokers: dict[int, Any] = {}  # node id -> Broker, while it runs
        self.ports: dict[int, int] = {}
        self._scopes: dict[int, trio.CancelScope] = {}
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stopped: trio.Event | None = None
        self._failure: BaseException | None = None

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.ports[n]}" for n in sorted(self.brokers))

    def bootstrap_of(self, node_id: int) -> str:
        return f"127.0.0.1:{self.ports[node_id]}"

    def start(self, timeout: float = 30) -> "InProcessCluster":
        from .coordination import MemoryTree

        self.tree = MemoryTree()
        ready = threading.Event()

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self._stopped = trio.Event()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                ready.set()
                await self._stopped.wait()
                nursery.cancel_scope.cancel()

        def run() -> None:
            try:
                trio.run(main)
            except BaseException as exc:
                self._failure = exc
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="kbroker-cluster", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self._failure is not None:
            raise RuntimeError(f"the cluster's loop did not start: {self._failure!r}")
        for node_id in range(1, self.count + 1):
            self.start_broker(node_id)
        return self

    def call(self, async_fn, *args):
        """Run ``async_fn(*args)`` on the cluster's loop and return its result."""
        return trio.from_thread.run(async_fn, *args, trio_token=self._token)

    def start_broker(self, node_id: int) -> None:
        self.call(self._nursery.start, self._run_broker, node_id)

    def stop_broker(self, node_id: int) -> None:
        scope = self._scopes.pop(node_id, None)
        if scope is not None:
            async def stop() -> None:
                scope.cancel()
                while node_id in self.brokers:
                    await trio.sleep(0.01)
            self.call(stop)

    def shut_down_broker(self, node_id: int, timeout: float = 30) -> None:
        """Stop one as SIGTERM stops a broker process: controlled shutdown first (its leaderships
        move away), then the stop."""
        broker = self.brokers.get(node_id)
        if broker is not None:
            async def shut_down() -> None:
                with trio.move_on_after(timeout):
                    await broker.shut_down_gracefully()
            self.call(shut_down)
        self.stop_broker(node_id)

    async def _run_broker(self, node_id: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from .broker import Broker
        from .cli import STANDALONE_DEFAULTS
        from .config import load_broker_config

        port = self.ports.get(node_id, 0)
        settings = _settings(self.base_dir / f"broker-{node_id}",
                             {**self.overrides, "node.id": node_id, "listeners": f"PLAINTEXT://127.0.0.1:{port}"})
        config = load_broker_config(None, [f"{k}={v}" for k, v in settings.items()],
                                    builtin_settings=STANDALONE_DEFAULTS)

        async def session():
            return self.tree.session()

        try:
            with trio.CancelScope() as scope:
                self._scopes[node_id] = scope
                async with trio.open_nursery() as nursery:
                    broker = await nursery.start(Broker(config, coordination=session).serve)
                    self.brokers[node_id] = broker
                    self.ports[node_id] = broker.bound_endpoints[0][1]
                    task_status.started(broker)
        finally:
            self.brokers.pop(node_id, None)

    def leader_of(self, topic: str, partition: int = 0) -> int:
        """The partition's leader as the cluster's state has it (-1: none)."""
        import json

        async def read() -> int:
            entry = self.tree._nodes.get(f"/brokers/topics/{topic}/partitions/{partition}/state")
            return -1 if entry is None else json.loads(entry.data)["leader"]
        return self.call(read)

    def stop(self, timeout: float = 30) -> None:
        if self._thread is None:
            return
        if self._thread.is_alive() and self._token is not None:
            try:
                trio.from_thread.run_sync(self._stopped.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "InProcessCluster":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_SERVING = re.compile(r"serving on (\S+?):(\d+)")


class BrokerProcess:
    """A broker in its own OS process, started the way a user starts it: `kbroker serve`."""

    def __init__(self, data_dir: Path, overrides: dict[str, Any] | None = None, *,
                 open_files: tuple[int, int] | None = None, log_path: Path | None = None):
        self.data_dir = Path(data_dir)
        self.overrides = dict(overrides or {})
        self.open_files = open_files  # RLIMIT_NOFILE (soft, hard) the process starts with, as `ulimit -n`
        self.process: subprocess.Popen | None = None
        self.bootstrap: str | None = None
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self, timeout: float = 30) -> "BrokerProcess":
        settings = _settings(self.data_dir, self.overrides)
        if self.bootstrap:  # a restart keeps its port so clients can reconnect
            settings["listeners"] = f"PLAINTEXT://{self.bootstrap}"
        args = [sys.executable, "-m", "kbroker", "serve"]
        for key, value in settings.items():
            args += ["--override", f"{key}={value}"]
        log = open(self.log_path, "ab")
        start_offset = log.tell()
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._limits)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(start_offset)
                match = _SERVING.search(f.read().decode(errors="replace"))
            if match:
                self.bootstrap = f"{match[1]}:{match[2]}"
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.005)  # so start() returns within a few ms of the broker serving
        self.stop()
        raise RuntimeError(f"kbroker process did not start; log:\n{self.log_path.read_text()[-4000:]}")

    def _limits(self) -> None:
        if self.open_files is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, self.open_files)

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flush."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 30) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> "BrokerProcess":
        self.stop()
        return self.start()

    @property
    def pid(self) -> int:
        return self.process.pid


class ProcessCluster:
    """Brokers as separate OS processes (`kbroker serve`) joined through ZooKeeper at ``connect``
    (a chroot of its own), numbered 1..N: the cluster a nemesis can kill -9, SIGSTOP and restart.
    ``stop_broker(n)`` is kill -9; ``start_broker(n)`` restarts it on the same port and data dir."""

    def __init__(self, base_dir: Path, connect: str, brokers: int = 3, overrides: dict[str, Any] | None = None):
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.connect = connect
        from .cli import cluster_replication_defaults

        overrides = {**cluster_replication_defaults(brokers), "zookeeper.connect": connect,
                     "zookeeper.session.timeout.ms": "6000", **(overrides or {})}
        self.processes = {n: BrokerProcess(self.base_dir / f"broker-{n}", {**overrides, "node.id": n})
                          for n in range(1, brokers + 1)}

    @property
    def bootstrap(self) -> str:
        return ",".join(p.bootstrap for p in self.processes.values() if p.bootstrap)

    def bootstrap_of(self, node_id: int) -> str:
        return self.processes[node_id].bootstrap

    def start(self) -> "ProcessCluster":
        for node_id in self.processes:
            self.start_broker(node_id)
        return self

    def start_broker(self, node_id: int) -> None:
        self.processes[node_id].start()

    def stop_broker(self, node_id: int) -> None:
        self.processes[node_id].kill()

    def shut_down_broker(self, node_id: int) -> None:
        """SIGTERM: a controlled shutdown (its leaderships move away), then the process ends."""
        self.processes[node_id].stop()

    def pause_broker(self, node_id: int) -> None:
        self.processes[node_id].process.send_signal(signal.SIGSTOP)

    def resume_broker(self, node_id: int) -> None:
        self.processes[node_id].process.send_signal(signal.SIGCONT)

    def leader_of(self, topic: str, partition: int = 0) -> int:
        import json

        from kazoo.client import KazooClient

        client = KazooClient(hosts=self.connect)
        client.start(timeout=10)
        try:
            data, _ = client.get(f"/brokers/topics/{topic}/partitions/{partition}/state")
            return json.loads(data)["leader"]
        except Exception:
            return -1
        finally:
            client.stop()
            client.close()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.process is not None and process.process.poll() is None:
                process.process.send_signal(signal.SIGCONT)
            process.kill()

    def __enter__(self) -> "ProcessCluster":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture
def kbroker_factory(tmp_path_factory) -> Iterator[Any]:
    brokers: list[InProcessBroker] = []

    def start(**overrides: Any) -> InProcessBroker:
        broker = InProcessBroker(tmp_path_factory.mktemp("kbroker"), overrides).start()
        brokers.append(broker)
        return broker

    yield start
    for broker in brokers:
        broker.stop()


@pytest.fixture
def kbroker_cluster(tmp_path_factory) -> Iterator[Any]:
    """``kbroker_cluster(brokers=3, **overrides)``: an in-process cluster (InProcessCluster), stopped
    at the end."""
    clusters: list[InProcessCluster] = []

    def start(brokers: int = 3, **overrides: Any) -> InProcessCluster:
        cluster = InProcessCluster(tmp_path_factory.mktemp("kbroker-cluster"), brokers, overrides).start()
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        cluster.stop()


@pytest.fixture
def kbroker(kbroker_factory) -> InProcessBroker:
    return kbroker_factory()


@pytest.fixture
def kbroker_process(tmp_path_factory) -> Iterator[Any]:
    processes: list[BrokerProcess] = []

    def start(**overrides: Any) -> BrokerProcess:
        process = BrokerProcess(tmp_path_factory.mktemp("kbroker-process") / "data", overrides).start()
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()
