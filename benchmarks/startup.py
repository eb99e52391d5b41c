"""Time from `kbroker serve` (a new process) to the first answered ApiVersions request, then to the
first acknowledged produce (librdkafka, acks=all, to a topic the broker auto-creates, as compare.py's
first_produce), and idle RSS.

    python benchmarks/startup.py [--runs 5]

The produce is sent once ApiVersions is answered, and the data directory is new each run (so the
broker formats it). Without confluent-kafka installed the produce is left out.

Measured as a pip-installed broker starts: with the package's bytecode compiled (pip compiles it on
install; this script runs compileall first, since editable installs and PYTHONDONTWRITEBYTECODE
environments would otherwise recompile ~100 modules from source on every start).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kbroker.protocol.codec import encode_request  # noqa: E402
from kbroker.protocol.messages import ApiVersionsRequest  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answered(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(encode_request(1, 3, ApiVersionsRequest()))
            return len(s.recv(4)) == 4
    except OSError:
        return False


def first_produce(bootstrap: str) -> None:
    """One record to a new topic, as benchmarks/compare.py's first_produce, but a failure is not retried."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    result: list = []
    producer.produce("first-produce", b"hello", on_delivery=lambda err, msg: result.append(err))
    producer.flush(30)
    if result != [None]:
        raise RuntimeError(f"first produce failed: {result}")


def one_run(produce: bool) -> tuple[float, float | None, float]:
    port = free_port()
    data = tempfile.mkdtemp(prefix="kbroker-start-")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "kbroker", "serve", "--override",
                                f"listeners=PLAINTEXT://127.0.0.1:{port}", "--override", f"log.dirs={data}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENV)
    try:
        while not answered(port):
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        produced = None
        if produce:
            first_produce(f"127.0.0.1:{port}")
            produced = time.perf_counter() - started
        time.sleep(1)
        status = Path(f"/proc/{process.pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024
        return elapsed, produced, rss
    finally:
        process.terminate()
        process.wait(10)


_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def main() -> None:
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "kbroker", quiet=1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    produce = importlib.util.find_spec("confluent_kafka") is not None
    runs = [one_run(produce) for _ in range(parser.parse_args().runs)]
    print(_summary("start to first answered request", [r[0] for r in runs]))
    if produce:
        print(_summary("start to first produce acked", [r[1] for r in runs]))
    print(f"idle RSS: median {statistics.median(r[2] for r in runs):.1f} MB")


def _summary(what: str, seconds: list[float]) -> str:
    return (f"{what}: median {statistics.median(seconds) * 1000:.0f} ms "
            f"(min {min(seconds) * 1000:.0f}, max {max(seconds) * 1000:.0f}) over {len(seconds)} runs")


if __name__ == "__main__":
    main()
