"""Config value types, validators and the error type, with Kafka's semantics.

Theory of operation: every config is a `ConfigKey` (name, type, default,
validator, importance, doc).  A raw value arrives as a string (from
server.properties, ``--override`` or an AlterConfigs/CreateTopics request);
`ConfigKey.parse` trims and converts it the way Kafka's ConfigDef does, then
runs the validator.  Every failure raises `ConfigError` whose message has
Kafka's exact shape (``Invalid value X for configuration Y: reason``), because
clients show those messages to users verbatim.  `to_kafka_string` renders a
parsed value back the way Kafka prints it in DescribeConfigs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

# ---- types (names are Kafka's ConfigDef.Type names) ------------------------
BOOLEAN, SHORT, INT, LONG, DOUBLE = "BOOLEAN", "SHORT", "INT", "LONG", "DOUBLE"
STRING, LIST, CLASS, PASSWORD = "STRING", "LIST", "CLASS", "PASSWORD"

# DescribeConfigs v3+ ConfigType ids.
DESCRIBE_TYPE_ID = {BOOLEAN: 1, STRING: 2, INT: 3, SHORT: 4, LONG: 5, DOUBLE: 6,
                    LIST: 7, CLASS: 8, PASSWORD: 9}

HIGH, MEDIUM, LOW = "HIGH", "MEDIUM", "LOW"
H, M, L = HIGH, MEDIUM, LOW

INT_MAX, INT_MIN = 2**31 - 1, -(2**31)
LONG_MAX, LONG_MIN = 2**63 - 1, -(2**63)
_BOUNDS = {SHORT: (-(2**15), 2**15 - 1), INT: (INT_MIN, INT_MAX), LONG: (LONG_MIN, LONG_MAX)}


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # "no default value": the key must be supplied


class ConfigError(ValueError):
    """A config could not be accepted.  ``key`` names the offending config."""

    def __init__(self, message: str, key: Optional[str] = None):
        super().__init__(message)
        self.key = key

    @classmethod
    def invalid(cls, key: str, value: Any, reason: Optional[str] = None) -> "ConfigError":
        text = f"Invalid value {java_str(value)} for configuration {key}"
        return cls(text + (f": {reason}" if reason else ""), key)


class Password:
    """A secret value; never printed (Kafka prints [hidden])."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "[hidden]"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Password) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


# ---- Java-compatible rendering --------------------------------------------
def _decimal(text: str) -> Any:
    from decimal import Decimal  # few values need it, so it is not imported at every start

    return Decimal(text)


def java_double(d: float) -> str:
    """Render a float like Java's Double.toString."""
    if d != d:
        return "NaN"
    if d in (float("inf"), float("-inf")):
        return "Infinity" if d > 0 else "-Infinity"
    if d == 0:
        return "-0.0" if str(d).startswith("-") else "0.0"
    if 1e-3 <= abs(d) < 1e7:
        s = repr(d)
        if "e" in s:  # small numbers python writes in exponent form
            s = format(_decimal(s), "f")
        return s if "." in s else s + ".0"
    sign, digits, exp = _decimal(repr(d)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    e10 = exp + len(ds) - 1
    mant = ds[0] + "." + (ds[1:] or "0")
    return ("-" if sign else "") + f"{mant}E{e10}"


def java_str(value: Any) -> str:
    """String form of a value as Java's toString would print it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, list):
        return "[" + ", ".join(java_str(v) for v in value) + "]"
    return str(value)


def to_kafka_string(value: Any, type_: Optional[str]) -> Optional[str]:
    """ConfigDef.convertToString: how DescribeConfigs renders a parsed value."""
    if value is None:
        return None
    if type_ == LIST or isinstance(value, list):
        return ",".join(java_str(v) for v in value)
    if isinstance(value, Password):
        return value.value
    return java_str(value)


# ---- parsing ----------------------------------------------------------------
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_DOUBLE_RE = re.compile(
    r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?)\Z")
_LIST_SPLIT = re.compile(r"\s*,\s*")
_CLASS_RE = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*\Z")


def parse_type(name: str, value: Any, type_: str) -> Any:
    """Convert a raw value to ``type_`` as ConfigDef.parseType does."""
    if value is None:
        return None
    if not isinstance(value, str):
        return _parse_object(name, value, type_)
    t = value.strip()
    if type_ == BOOLEAN:
        if t.lower() == "true":
            return True
        if t.lower() == "false":
            return False
        raise ConfigError.invalid(name, value, "Expected value to be either true or false")
    if type_ in (STRING,):
        return t
    if type_ == PASSWORD:
        return Password(t)
    if type_ in _BOUNDS:
        lo, hi = _BOUNDS[type_]
        if not _INT_RE.match(t) or not lo <= int(t) <= hi:
            raise ConfigError.invalid(name, value, f"Not a number of type {type_}")
        return int(t)
    if type_ == DOUBLE:
        if not _DOUBLE_RE.match(t):
            raise ConfigError.invalid(name, value, f"Not a number of type {type_}")
        return float(t.rstrip("fFdD") if not t.endswith("Infinity") else t.replace("Infinity", "inf"))
    if type_ == LIST:
        return [] if not t else _LIST_SPLIT.split(t)
    if type_ == CLASS:
        if not _CLASS_RE.match(t):
            raise ConfigError.invalid(name, value, f"Class {value} could not be found.")
        return t
    raise AssertionError(f"unknown type {type_}")


def _parse_object(name: str, value: Any, type_: str) -> Any:
    """Values already typed (defaults in the tables, Python callers)."""
    if type_ == BOOLEAN and isinstance(value, bool):
        return value
    if type_ in _BOUNDS and isinstance(value, int) and not isinstance(value, bool):
        return value
    if type_ == DOUBLE and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if type_ == LIST and isinstance(value, (list, tuple)):
        return list(value)
    if type_ == PASSWORD and isinstance(value, Password):
        return value
    raise ConfigError.invalid(name, value, f"Expected value of type {type_}")


# ---- validators ---------------------------------------------------------------
Validator = Callable[[str, Any], None]


def _num(n: Any) -> str:
    return java_double(n) if isinstance(n, float) else str(n)


def between(lo: Optional[float], hi: Optional[float]) -> Validator:
    def check(name: str, v: Any) -> None:
        if v is None:
            raise ConfigError.invalid(name, None, "Value must be non-null")
        if lo is not None and v < lo:
            raise ConfigError.invalid(name, v, f"Value must be at least {_num(lo)}")
        if hi is not None and v > hi:
            raise ConfigError.invalid(name, v, f"Value must be no more than {_num(hi)}")
    check.describe = "[%s,...%s]" % (_num(lo), "" if hi is None else "," + _num(hi))  # type: ignore[attr-defined]
    return check


def at_least(lo: float) -> Validator:
    return between(lo, None)


def one_of(*options: str) -> Validator:
    def check(name: str, v: Any) -> None:
        if v not in options:
            raise ConfigError.invalid(name, v, "String must be one of: " + ", ".join(options))
    return check


def one_of_ci(*options: str) -> Validator:
    upper = {o.upper() for o in options}

    def check(name: str, v: Any) -> None:
        if v is None or v.upper() not in upper:
            # Kafka lists the upper-cased set here; keep its shape.
            raise ConfigError.invalid(name, v, "String must be one of (case insensitive): "
                                      + ", ".join(o.upper() for o in options))
    return check


def list_of(*options: str) -> Validator:
    inner = one_of(*options)

    def check(name: str, v: Any) -> None:
        for item in v or []:
            inner(name, item)
    return check


def _non_empty(name: str, v: Any) -> None:
    if v is not None and v == "":
        raise ConfigError.invalid(name, v, "String must be non-empty")


def _non_null(name: str, v: Any) -> None:
    if v is None:
        raise ConfigError.invalid(name, "null", "entry must be non null")


def _gzip_level(name: str, v: Any) -> None:
    if v is None:
        raise ConfigError.invalid(name, None, "Value must be non-null")
    if v > 9 or (v < 1 and v != -1):
        raise ConfigError.invalid(name, v, "Value must be between 1 and 9 or equal to -1")


def _throttled_replicas(name: str, v: Any) -> None:
    items = [s.strip() for s in (v or [])]
    if items == ["*"] or all(re.fullmatch(r"[0-9]+:[0-9]+", s) for s in items):
        return
    raise ConfigError.invalid(name, v, f"{name} must be the literal '*' or a list of replicas "
                              "in the following format: [partitionId]:[brokerId],"
                              "[partitionId]:[brokerId],...")


def _quorum_voters(name: str, v: Any) -> None:
    for entry in v or []:
        m = re.fullmatch(r"(-?\d+)@\[?([^\]]*?)\]?:(\d+)", entry.strip())
        if not m:
            raise ConfigError(f"Unable to parse {entry!s} for {name}", name)


def _bootstrap_servers(name: str, v: Any) -> None:
    for entry in v or []:
        if not re.fullmatch(r"\[?[^\]]+?\]?:\d+", entry.strip()):
            raise ConfigError(f"Invalid url in {name}: {entry}", name)


NON_EMPTY: Validator = _non_empty
NON_NULL: Validator = _non_null
GZIP_LEVEL: Validator = _gzip_level
THROTTLED_REPLICAS: Validator = _throttled_replicas
QUORUM_VOTERS: Validator = _quorum_voters
BOOTSTRAP_SERVERS: Validator = _bootstrap_servers


# ---- the key ------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str
    default: Any
    validator: Optional[Validator]
    importance: str
    doc: str
    internal: bool = False
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def sensitive(self) -> bool:
        return self.type == PASSWORD

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def parse(self, raw: Any) -> Any:
        """Parse and validate one value (``raw`` may be a string or a typed value)."""
        value = parse_type(self.name, raw, self.type)
        if self.validator is not None:
            self.validator(self.name, value)
        return value

    def parsed_default(self) -> Any:
        if self.default is REQUIRED:
            raise ConfigError(f'Missing required configuration "{self.name}" which has no default value.',
                              self.name)
        return self.parse(self.default)


def C(name: str, type_: str, default: Any, validator: Optional[Validator], importance: str,
      doc: str, *, internal: bool = False) -> ConfigKey:
    """Table-row constructor used by the definition tables."""
    return ConfigKey(name, type_, default, validator, importance, doc, internal)
