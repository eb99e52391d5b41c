"""The compact schema language and its parser.

A schema file holds one or more top-level definitions; each starts at column 0 and its fields follow,
indented two spaces per level (a field's children define the struct it holds):

    request ProduceRequest key=0 valid=0-11 flexible=9+ deprecated=0-6 listeners=broker
      TransactionalId: string v3+ null=3+ default=null
      TopicData: []TopicProduceData
        Name: string mapkey
    struct SharedThing v0+        (a struct shared by fields of the definition above)
      Field: int32

Definition kinds: request, response, header, data. Field attributes after "Name: type":
  vRANGE        versions in which the field exists (default 0+); RANGE is N, N+, N-M or none
  null=RANGE    versions in which it may be null
  tag=T@RANGE   a tagged field with tag T, tagged in RANGE
  default=X     default value (a number, true/false, null, or "")
  flexible=RANGE  override of the message's flexible versions for this field (only "none" is used)
  ignorable, mapkey, zerocopy   flags carried over from Kafka's definitions
Types: bool int8 int16 int32 int64 uint16 uint32 float64 string bytes uuid records, []T arrays, and
struct names (CamelCase).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dc_field
from pathlib import Path

PRIMITIVES = {"bool", "int8", "int16", "int32", "int64", "uint16", "uint32", "float64",
              "string", "bytes", "uuid", "records"}


@dataclass(frozen=True)
class Versions:
    low: int
    high: int | None  # None: open-ended
    empty: bool = False

    @classmethod
    def parse(cls, text: str) -> "Versions":
        if text == "none":
            return cls(0, -1, empty=True)
        if text.endswith("+"):
            return cls(int(text[:-1]), None)
        if "-" in text:
            low, high = text.split("-")
            return cls(int(low), int(high))
        return cls(int(text), int(text))

    def contains(self, version: int) -> bool:
        return not self.empty and version >= self.low and (self.high is None or version <= self.high)

    def intersect(self, other: "Versions") -> "Versions":
        if self.empty or other.empty:
            return NONE
        low = max(self.low, other.low)
        highs = [h for h in (self.high, other.high) if h is not None]
        high = min(highs) if highs else None
        if high is not None and high < low:
            return NONE
        return Versions(low, high)

    def __str__(self) -> str:
        if self.empty:
            return "none"
        if self.high is None:
            return f"{self.low}+"
        return f"{self.low}-{self.high}"


NONE = Versions(0, -1, empty=True)
ALL = Versions(0, None)


@dataclass
class Field:
    name: str
    type: str  # element type for arrays
    is_array: bool
    versions: Versions = ALL
    nullable: Versions = NONE
    tag: int | None = None
    tagged: Versions = NONE
    default: str | None = None
    flexible_override: Versions | None = None
    ignorable: bool = False
    mapkey: bool = False
    zerocopy: bool = False
    children: list["Field"] = dc_field(default_factory=list)

    @property
    def is_struct(self) -> bool:
        return self.type not in PRIMITIVES


@dataclass
class Struct:
    name: str
    versions: Versions
    fields: list[Field]


@dataclass
class Definition:
    kind: str  # request | response | header | data
    name: str
    valid: Versions
    flexible: Versions
    api_key: int | None = None
    deprecated: Versions = NONE
    unstable: bool = False
    listeners: tuple[str, ...] = ()
    fields: list[Field] = dc_field(default_factory=list)
    common_structs: list[Struct] = dc_field(default_factory=list)

    def structs(self) -> list[Struct]:
        """Every struct this definition uses, depth-first, each name once."""
        found: dict[str, Struct] = {}

        def visit(fields: list[Field]) -> None:
            for f in fields:
                if f.is_struct and f.children:
                    prior = found.get(f.type)
                    if prior is None:
                        found[f.type] = Struct(f.type, f.versions, f.children)
                    elif [c.name for c in prior.fields] != [c.name for c in f.children]:
                        raise SchemaError(f"{self.name}: struct {f.type} defined twice differently")
                    visit(f.children)

        for common in self.common_structs:
            found.setdefault(common.name, common)
            visit(common.fields)
        visit(self.fields)
        return list(found.values())


class SchemaError(Exception):
    pass


_FIELD = re.compile(r"^(?P<indent> *)(?P<name>\w+): (?P<type>\S+)(?P<attrs>.*)$")


def _parse_field(match: re.Match, where: str) -> Field:
    type_text = match["type"]
    is_array = type_text.startswith("[]")
    f = Field(name=match["name"], type=type_text[2:] if is_array else type_text, is_array=is_array)
    for attr in match["attrs"].split():
        key, _, value = attr.partition("=")
        if key.startswith("v") and not value and key[1:2].isdigit() or key == "vnone":
            f.versions = Versions.parse(key[1:])
        elif key == "null":
            f.nullable = Versions.parse(value)
        elif key == "tag":
            tag, _, tagged = value.partition("@")
            f.tag, f.tagged = int(tag), Versions.parse(tagged)
        elif key == "default":
            f.default = value
        elif key == "flexible":
            f.flexible_override = Versions.parse(value)
        elif key in ("ignorable", "mapkey", "zerocopy"):
            setattr(f, key, True)
        else:
            raise SchemaError(f"{where}: unknown attribute {attr!r}")
    return f


def _parse_head(line: str, where: str) -> Definition | tuple[str, Versions]:
    words = line.split()
    if words[0] == "struct":
        return words[1], Versions.parse(words[2][1:]) if len(words) > 2 else ALL
    if words[0] not in ("request", "response", "header", "data"):
        raise SchemaError(f"{where}: unknown definition kind {words[0]!r}")
    d = Definition(kind=words[0], name=words[1], valid=ALL, flexible=NONE)
    for attr in words[2:]:
        key, _, value = attr.partition("=")
        if key == "key":
            d.api_key = int(value)
        elif key in ("valid", "flexible", "deprecated"):
            setattr(d, key, Versions.parse(value))
        elif key == "unstable":
            d.unstable = True
        elif key == "listeners":
            d.listeners = tuple(value.split(","))
        else:
            raise SchemaError(f"{where}: unknown attribute {attr!r}")
    return d


def parse(text: str, source: str = "<schema>") -> list[Definition]:
    definitions: list[Definition] = []
    # stack of (indent, children list) for attaching fields
    stack: list[tuple[int, list[Field]]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{source}:{number}"
        line = raw.rstrip()
        if not line or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            head = _parse_head(line, where)
            if isinstance(head, Definition):
                definitions.append(head)
                stack = [(0, head.fields)]
            else:
                if not definitions:
                    raise SchemaError(f"{where}: struct before any definition")
                struct = Struct(head[0], head[1], [])
                definitions[-1].common_structs.append(struct)
                stack = [(0, struct.fields)]
            continue
        match = _FIELD.match(line)
        if not match or len(match["indent"]) % 2:
            raise SchemaError(f"{where}: cannot parse {line!r}")
        depth = len(match["indent"]) // 2
        if not stack or depth > len(stack):
            raise SchemaError(f"{where}: unexpected indentation")
        del stack[depth:]
        parent_fields = stack[-1][1]
        f = _parse_field(match, where)
        parent_fields.append(f)
        stack.append((depth, f.children))
    return definitions


def load(directory: Path) -> dict[str, list[Definition]]:
    """Schema file stem -> its definitions, for every *.ks file in directory."""
    return {path.stem: parse(path.read_text(), path.name) for path in sorted(directory.glob("*.ks"))}
