"""`python -m reliability [--quick] [--probe NAME ...]`: run the probes, print one table.

Each probe runs in turn in a fresh temporary directory (kept with --keep); a probe that raises is a
row with result ERROR and the exception, and the remaining probes still run. The table is printed as
Markdown and, with --write, also saved under reliability/results/.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .common import FULL, QUICK, ProbeResult

PROBES = ["crash_loop", "torn_tails", "live_fuzz", "decoder_fuzz", "limits", "disk_full", "descriptors",
          "restart_times"]


def run_probe(name: str, size, root: Path) -> list[ProbeResult]:
    module = importlib.import_module(f"reliability.{name}")
    workdir = root / name
    workdir.mkdir()
    started = time.monotonic()
    try:
        results = module.run(size, workdir)
        results = results if isinstance(results, list) else [results]
    except Exception as exc:
        traceback.print_exc()
        results = [ProbeResult(name, "-", False, f"{type(exc).__name__}: {exc}"[:300].replace("\n", " "), error=True)]
    print(f"# {name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    for result in results:
        print(f"#   {result.probe}: {result.result}: {result.figures}", file=sys.stderr, flush=True)
    return results


def table(results: list[ProbeResult]) -> str:
    lines = ["| probe | rounds / inputs | result | figures |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.probe} | {r.inputs} | {r.result} | {r.figures} |")
    defects = [d for r in results for d in r.defects]
    if defects:
        lines += ["", "Defects:"] + [f"- {d}" for d in defects]
    return "\n".join(lines)


def commit() -> str:
    import subprocess
    found = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True)
    return found.stdout.strip() or "an unknown commit"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (minutes, not an hour)")
    parser.add_argument("--probe", action="append", choices=PROBES, help="run only these (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the probes' data directories")
    parser.add_argument("--write", action="store_true", help="also save the table in reliability/results/")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    root = Path(tempfile.mkdtemp(prefix="kbroker-reliability-"))
    print(f"# reliability ({size.name}) in {root}", file=sys.stderr)
    results = [r for name in (args.probe or PROBES) for r in run_probe(name, size, root)]
    text = table(results)
    print(text)
    if args.write:
        out = Path(__file__).parent / "results" / f"{time.strftime('%Y-%m-%d-%H%M')}-{size.name}.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text(f"# reliability, {size.name} run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                       f"kbroker at {commit()}\n\n{text}\n")
    if not args.keep:
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
