"""pytest plugin (entry point `kbroker`): real kbroker brokers for your test suite.

Fixtures:
  kbroker            a broker running in this process (its own thread and trio loop), on a free
                     loopback port with a temporary data directory. `.bootstrap` is "127.0.0.1:PORT".
  kbroker_factory    start(**overrides) more brokers, e.g. with other configs; all are stopped at the end.
  kbroker_process    a broker in a separate OS process (`python -m kbroker serve`), for stories that
                     restart it, or kill -9 it mid-write.

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
