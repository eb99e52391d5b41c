"""Decoder fuzzing: coverage-guided (atheris, libFuzzer) inputs through kbroker.protocol.codec.

Seeds are the frames of `capture.py` (real clients' requests and every request type at every version),
written to a corpus directory in both of the target's input shapes. The target
(`decoder_fuzz_target.py`) runs in a subprocess under nice with libFuzzer's -runs, a 2 GB RSS limit and a
10 s per-input timeout; its findings file lists each distinct exception other than ProtocolError. A
libFuzzer abort (timeout, out of memory, a crash) ends that subprocess: it is counted, its input kept,
and fuzzing resumes with the runs left.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

from .capture import capture_real_frames
from .common import ProbeResult, Size
from kbroker.protocol.messages import REQUESTS

API_KEYS = sorted(REQUESTS)


def write_corpus(corpus_dir: Path, frames: list[bytes]) -> None:
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        (corpus_dir / f"frame-{i}").write_bytes(b"\x00" + frame)
        if len(frame) >= 4:
            api_key, version = struct.unpack(">hh", frame[:4])
            if api_key in REQUESTS:
                low = REQUESTS[api_key].VERSIONS[0]
                body = frame[8 + 2 + struct.unpack(">h", frame[8:10])[0]:] if len(frame) >= 10 else b""
                if version >= (REQUESTS[api_key].FLEXIBLE_FROM or 1 << 15) and body:
                    body = body[1:]  # the header's empty tagged fields
                shape = bytes([1, API_KEYS.index(api_key), (version - low + 1) % 256])
                (corpus_dir / f"body-{i}").write_bytes(shape + body)


def environment_with_this_repository() -> dict[str, str]:
    """The environment, with this checkout first on PYTHONPATH (the target imports reliability and kbroker)."""
    repository = str(Path(__file__).resolve().parent.parent)
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(p for p in [repository, env.get("PYTHONPATH", "")] if p)
    return env


def fuzz(workdir: Path, runs: int) -> dict:
    corpus_dir, findings = workdir / "corpus", workdir / "findings.jsonl"
    write_corpus(corpus_dir, capture_real_frames(workdir))
    done, aborts, started = 0, [], time.monotonic()
    while done < runs and len(aborts) < 5:
        command = ["nice", "-n", "10", sys.executable, "-m", "reliability.decoder_fuzz_target", str(findings),
                   f"-runs={runs - done}", "-max_len=4096", "-rss_limit_mb=2048", "-timeout=10", "-print_final_stats=1",
                   f"-artifact_prefix={workdir}/", "-seed=14", str(corpus_dir)]
        run = subprocess.run(command, capture_output=True, text=True, env=environment_with_this_repository())
        log = run.stderr
        executed = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
        done_now = int(executed[-1]) if executed else max([int(n) for n in re.findall(r"#(\d+)\s", log)] or [0])
        done += max(done_now, 1)
        if run.returncode != 0:
            reason = re.findall(r"ERROR: libFuzzer: ([^\n]+)", log) or re.findall(r"==\d+== ERROR: ([^\n]+)", log) \
                     or [log.strip().splitlines()[-1] if log.strip() else f"exit {run.returncode}"]
            aborts.append(reason[0][:200])
    coverage = re.findall(r"cov: (\d+)", log)
    found = [json.loads(line) for line in findings.read_text().splitlines()] if findings.exists() else []
    return {"runs": done, "aborts": aborts, "findings": found, "seconds": time.monotonic() - started,
            "coverage": int(coverage[-1]) if coverage else 0, "seeds": len(list(corpus_dir.iterdir()))}


def run(size: Size, workdir: Path) -> ProbeResult:
    runs = {"full": 1_000_000, "quick": 20_000, "ci": 5_000}[size.name]
    f = fuzz(workdir, runs)
    defects = [f"decoder fuzz: {x['signature']}: {x['message']} (input {x['input'][:120]})" for x in f["findings"]]
    defects += [f"decoder fuzz: libFuzzer stopped: {a}" for a in f["aborts"]]
    return ProbeResult("decoder fuzzing (atheris)", f"{f['runs']:,} inputs over {len(API_KEYS)} request types",
                       not defects, f"{len(f['findings'])} exceptions other than ProtocolError, {len(f['aborts'])} "
                       f"libFuzzer aborts; {f['coverage']} coverage edges from {f['seeds']} seeds in {f['seconds']:.0f} s",
                       defects)
