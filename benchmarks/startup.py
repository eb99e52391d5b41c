"""Time from `kbroker serve` (a new process) to the first answered ApiVersions request, and idle RSS.

    python benchmarks/startup.py [--runs 5]

Measured as a pip-installed broker starts: with the package's bytecode compiled (pip compiles it on
install; this script runs compileall first, since editable installs and PYTHONDONTWRITEBYTECODE
environments would otherwise recompile ~100 modules from source on every start).
"""

from __future__ import annotations

import argparse
import compileall
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


def one_run() -> tuple[float, float]:
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
        time.sleep(1)
        status = Path(f"/proc/{process.pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024
        return elapsed, rss
    finally:
        process.terminate()
        process.wait(10)


_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def main() -> None:
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "kbroker", quiet=1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = [one_run() for _ in range(parser.parse_args().runs)]
    starts, rss = [r[0] for r in runs], [r[1] for r in runs]
    print(f"start to first answered request: median {statistics.median(starts) * 1000:.0f} ms "
          f"(min {min(starts) * 1000:.0f}, max {max(starts) * 1000:.0f}) over {len(runs)} runs")
    print(f"idle RSS: median {statistics.median(rss):.1f} MB")


if __name__ == "__main__":
    main()
