"""A real ZooKeeper server for tests: standalone, on a free loopback port, with a temporary data
directory, stopped (by its PID) at the end. It runs the ZooKeeper jar of Debian's `zookeeper`
package (installed by scripts/install-test-deps) with Java.

    with ZooKeeperServer(tmp_path) as zookeeper:
        zookeeper.connect          # "127.0.0.1:PORT", Kafka's zookeeper.connect
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

CLASSPATH = ["/usr/share/java/zookeeper.jar"]  # its manifest names the jars it needs
MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ZooKeeperServer:
    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def connect(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "ZooKeeperServer":
        missing = [jar for jar in CLASSPATH if not os.path.exists(jar)]
        if missing:
            raise RuntimeError(f"ZooKeeper is not installed ({missing[0]} missing): run scripts/install-test-deps")
        data = self.workdir / "zookeeper-data"
        data.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        config = self.workdir / "zoo.cfg"
        config.write_text(f"dataDir={data}\nclientPort={self.port}\nclientPortAddress=127.0.0.1\n"
                          "tickTime=500\nminSessionTimeout=1000\nadmin.enableServer=false\n"
                          "4lw.commands.whitelist=ruok,srvr\n")
        self.log_path = self.workdir / "zookeeper.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(["java", "-Xmx256m", "-cp", ":".join(CLASSPATH), MAIN, str(config)],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited: {self.log_path.read_text()[-2000:]}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"ZooKeeper did not start in {timeout} s: {self.log_path.read_text()[-2000:]}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"ruok")
                return s.recv(4) == b"imok"
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "ZooKeeperServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
