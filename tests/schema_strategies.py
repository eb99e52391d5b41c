"""Hypothesis strategies that build any generated message, for any version, from the schemas themselves."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

from protocol.generate import snake
from protocol.schema import Definition, Field, load

SCHEMAS = load(Path(__file__).resolve().parent.parent / "protocol" / "schemas")
DEFINITIONS: list[Definition] = [d for defs in SCHEMAS.values() for d in defs]

_INTS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)


def message_class(definition: Definition) -> type:
    stem = next(stem for stem, defs in SCHEMAS.items() if definition in defs)
    module = getattr(__import__(f"kbroker.protocol.messages.{stem}"), "protocol").messages
    return getattr(getattr(module, stem), definition.name)


def all_versions() -> list[tuple[Definition, int]]:
    return [(d, v) for d in DEFINITIONS for v in range(d.valid.low, d.valid.high + 1)]


def _scalar(type_: str) -> st.SearchStrategy:
    if type_ in _INTS:
        bits = _INTS[type_]
        return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return {
        "uint16": st.integers(0, 0xFFFF),
        "uint32": st.integers(0, 0xFFFFFFFF),
        "float64": st.floats(allow_nan=False),
        "bool": st.booleans(),
        "string": _TEXT,
        "bytes": st.binary(max_size=8),
        "records": st.binary(max_size=16),
        "uuid": st.uuids(),
    }[type_]


def _field_value(definition: Definition, owner: type, f: Field, version: int, depth: int) -> st.SearchStrategy:
    if f.is_struct:
        element = struct_value(definition, getattr(message_class(definition), f.type), _struct_fields(definition, f.type), version, depth + 1)
    else:
        element = _scalar(f.type)
    value = st.lists(element, max_size=2 if depth < 2 else 1) if f.is_array else element
    nullable = f.nullable.contains(version) or (f.type == "records" and not f.is_array)
    return st.one_of(st.none(), value) if nullable else value


def _struct_fields(definition: Definition, name: str) -> list[Field]:
    return next(s.fields for s in definition.structs() if s.name == name)


def struct_value(definition: Definition, cls: type, fields: list[Field], version: int, depth: int = 0) -> st.SearchStrategy:
    present = {snake(f.name): _field_value(definition, cls, f, version, depth)
               for f in fields if f.versions.contains(version)}
    return st.builds(cls, **present)


def message_value(definition: Definition, version: int) -> st.SearchStrategy:
    return struct_value(definition, message_class(definition), definition.fields, version)
