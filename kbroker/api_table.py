"""The README's table of served APIs, generated from the handler registry so it can never drift.

    python -m kbroker.api_table            print the table
    python -m kbroker.api_table --write    rewrite it in README.md between the markers
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .handlers import default_registry

BEGIN, END = "<!-- api-table:begin -->", "<!-- api-table:end -->"


def _api_name(request_class: type) -> str:
    return request_class.__name__.removesuffix("Request")


def markdown() -> str:
    lines = ["| API | key | versions served | versions advertised |", "|---|---:|---|---|"]
    for handler in default_registry().handlers():
        advertised_min = handler.advertised_min_version
        advertised = f"{handler.min_version if advertised_min is None else advertised_min}-{handler.max_version}"
        lines.append(f"| {_api_name(handler.request_class)} | {handler.api_key} | "
                     f"{handler.min_version}-{handler.max_version} | {advertised} |")
    return "\n".join(lines)


def replace_in(readme: str) -> str:
    block = f"{BEGIN}\n{markdown()}\n{END}"
    return re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, readme, flags=re.S)


def main(argv: list[str]) -> int:
    if "--write" in argv:
        path = Path(__file__).resolve().parent.parent / "README.md"
        path.write_text(replace_in(path.read_text()))
    else:
        print(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
