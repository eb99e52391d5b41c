"""python -m protocol [--check]: regenerate (or verify) kbroker/protocol/messages from protocol/schemas."""

from __future__ import annotations

import sys
from pathlib import Path

from .generate import generate_all
from .schema import load

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "protocol" / "schemas"
OUTPUT = ROOT / "kbroker" / "protocol" / "messages"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    files = generate_all(load(SCHEMAS))
    existing = {p.name for p in OUTPUT.glob("*.py")} if OUTPUT.exists() else set()
    stale = sorted(existing - set(files))
    differ = sorted(name for name, text in files.items()
                    if not (OUTPUT / name).exists() or (OUTPUT / name).read_text() != text)
    if check:
        if differ or stale:
            print("generated protocol code is out of date; run `python -m protocol`:", file=sys.stderr)
            for name in differ + stale:
                print(f"  kbroker/protocol/messages/{name}", file=sys.stderr)
            return 1
        print(f"generated protocol code is up to date ({len(files)} files)")
        return 0
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (OUTPUT / name).unlink()
    for name in differ:
        (OUTPUT / name).write_text(files[name])
    print(f"wrote {len(differ)} of {len(files)} files to {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
