"""Derive kbroker's compact schemas from Apache Kafka's JSON message definitions.

Kafka publishes its wire format as commented JSON (one file per request, response, header or data
record). We keep only the facts a codec needs — names, types, versions, nullability, tags, defaults —
in a terse indentation-based form (see protocol/schema.py for the grammar); prose and comments are
dropped. Run it when Kafka adds versions:
    python -m protocol.import_kafka ../shared/kafka-protocol/messages ../shared/kafka-protocol/zk-era
A definition whose validVersions is "none" (an API Kafka removed; 4.x keeps the file as a tombstone)
is skipped, so a later source directory (the ZooKeeper-era APIs) can supply it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SCHEMA_DIR = Path(__file__).parent / "schemas"


def _strip_comments(text: str) -> str:
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return s.lower()


def _field_line(field: dict) -> str:
    parts = [f"{field['name']}: {field['type']}"]
    versions = field.get("versions", "0+")
    if versions != "0+":
        parts.append(f"v{versions}")
    if "nullableVersions" in field:
        parts.append(f"null={field['nullableVersions']}")
    if "tag" in field:
        parts.append(f"tag={field['tag']}@{field.get('taggedVersions', versions)}")
    if "default" in field:
        default = str(field["default"]).strip()
        parts.append("default=" + (default or '""'))
    if "flexibleVersions" in field:
        parts.append(f"flexible={field['flexibleVersions']}")
    if field.get("ignorable"):
        parts.append("ignorable")
    if field.get("mapKey"):
        parts.append("mapkey")
    if field.get("zeroCopy"):
        parts.append("zerocopy")
    return " ".join(parts)


def _fields(fields: list, depth: int, out: list[str]) -> None:
    for field in fields:
        out.append("  " * depth + _field_line(field))
        _fields(field.get("fields", []), depth + 1, out)


def convert(definition: dict) -> str:
    head = [definition["type"], definition["name"]]
    if "apiKey" in definition:
        head.append(f"key={definition['apiKey']}")
    head.append(f"valid={definition['validVersions']}")
    head.append(f"flexible={definition['flexibleVersions']}")
    if "deprecatedVersions" in definition:
        head.append(f"deprecated={definition['deprecatedVersions']}")
    if definition.get("latestVersionUnstable"):
        head.append("unstable")
    if definition.get("listeners"):
        head.append("listeners=" + ",".join(definition["listeners"]))
    out = [" ".join(head)]
    _fields(definition["fields"], 1, out)
    for struct in definition.get("commonStructs", []):
        out.append(f"struct {struct['name']} v{struct.get('versions', '0+')}")
        _fields(struct["fields"], 1, out)
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    sources = [Path(arg) for arg in argv] or [Path("../shared/kafka-protocol/messages"),
                                              Path("../shared/kafka-protocol/zk-era")]
    by_file: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(path for source in sources for path in source.glob("*.json")):
        definition = json.loads(_strip_comments(path.read_text()))
        if definition["validVersions"] == "none":
            continue
        name = definition["name"]
        base = re.sub(r"(Request|Response)$", "", name) if definition["type"] in ("request", "response") else name
        order = {"request": 0, "response": 1}.get(definition["type"], 0)
        by_file.setdefault(_snake(base), []).append((order, convert(definition)))
    SCHEMA_DIR.mkdir(exist_ok=True)
    for old in SCHEMA_DIR.glob("*.ks"):
        old.unlink()
    for stem, blocks in by_file.items():
        text = "\n".join(block for _, block in sorted(blocks))
        (SCHEMA_DIR / f"{stem}.ks").write_text(text)
    print(f"wrote {len(by_file)} schema files to {SCHEMA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
