"""The base class of every generated message and struct (kbroker/protocol/messages).

A generated class lists its fields in `__slots__` and spells out its `__init__`; this base gives it
field-by-field equality and a repr, as a dataclass would have. It is not a dataclass because the
decorator writes and compiles each class's methods at import time (about 0.4 ms per class, and a
broker touches hundreds), while spelled-out methods come compiled in the module's bytecode.
"""

from __future__ import annotations

from typing import Any


class _New:
    def __repr__(self) -> str:
        return "NEW"


# The default of a list or struct field: each instance gets a new one (dataclasses' default_factory).
NEW: Any = _New()


class Message:
    __slots__ = ()
    __hash__ = None  # mutable, compared by value

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.field_values() == other.field_values()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"

    def field_values(self) -> tuple:
        """The fields' values, in schema order."""
        return tuple(getattr(self, name) for name in self.__slots__)
