"""Java .properties parsing (server.properties) and ``--override`` pairs.

Theory of operation: follows java.util.Properties.load.  A file is split into
natural lines; blank lines and lines whose first non-blank character is ``#``
or ``!`` are skipped; a line ending in an odd number of backslashes continues
on the next line (whose leading blanks are dropped).  The key ends at the
first unescaped ``=``, ``:`` or blank; blanks and one ``=``/``:`` after it are
skipped; the rest is the value.  Escapes ``\\t \\n \\r \\f \\uXXXX`` are decoded
and any other escaped character stands for itself.  Later keys win.
kafka-server-start applies ``--override key=value`` pairs on top.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Union

from .types import ConfigError

_BLANKS = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _logical_lines(text: str) -> Iterable[str]:
    pending = None
    for line in re.split(r"\r\n|\r|\n", text):
        stripped = line.lstrip(_BLANKS)
        if pending is None:
            if not stripped or stripped[0] in "#!":
                continue
            pending = ""
        pending += stripped
        trailing = len(pending) - len(pending.rstrip("\\"))
        if trailing % 2 == 1:
            pending = pending[:-1]
            continue
        yield pending
        pending = None
    if pending is not None:  # file ended inside a continuation
        yield pending


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c != "\\" or i + 1 == len(s):
            out.append(c)
            i += 1
            continue
        n = s[i + 1]
        if n == "u":
            hexdigits = s[i + 2:i + 6]
            if not re.fullmatch(r"[0-9a-fA-F]{4}", hexdigits):
                raise ConfigError("Malformed \\uxxxx encoding.")
            out.append(chr(int(hexdigits, 16)))
            i += 6
        else:
            out.append(_ESCAPES.get(n, n))
            i += 2
    return "".join(out)


def _split_line(line: str) -> tuple[str, str]:
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c in "=:" or c in _BLANKS:
            break
        i += 1
    key = line[:i]
    j = i
    while j < n and line[j] in _BLANKS:
        j += 1
    if j < n and line[j] in "=:":
        j += 1
        while j < n and line[j] in _BLANKS:
            j += 1
    return _unescape(key), _unescape(line[j:])


def parse_properties(text: str) -> dict[str, str]:
    """Parse the text of a .properties file into an ordered dict."""
    props: dict[str, str] = {}
    for line in _logical_lines(text):
        key, value = _split_line(line)
        props[key] = value
    return props


def load_properties(path: Union[str, Path]) -> dict[str, str]:
    """Read a .properties file (UTF-8, falling back to Java's ISO-8859-1)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"Cannot read config file {path}: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_properties(text)


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``--override key=value`` arguments as kafka-server-start takes them."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"Invalid command line properties: {pair} (expected key=value)")
        out[key] = value
    return out
