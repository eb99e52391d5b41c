"""Readers and writers for Kafka's primitive wire types.

Reader walks a memoryview that holds exactly one message; every method consumes bytes and returns a
Python value. Reads past the end surface as struct.error/IndexError/ValueError here, and the codec
entry points (kbroker.protocol.codec) translate every such failure into ProtocolError, so no bounds
check is paid per field. Lengths read from the wire are checked against the bytes remaining before
anything is allocated, so a hostile length can never ask for gigabytes.

Strings are decoded as Java's String(bytes, UTF_8) decodes them, which is what Kafka does: a byte
sequence that is not UTF-8 becomes U+FFFD, never an error (a client id in Latin-1 is still served;
a topic name with such bytes is then an invalid name, answered as one).

Writer appends to a bytearray. Large record payloads (a Fetch response's segment bytes) are not
copied: they become separate parts, so the server can hand them to the socket (or sendfile) as they are.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any, Iterator

from .errors import ErrorCode, ProtocolError

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
ZERO_UUID = uuid.UUID(int=0)

# Kafka's decoders (MessageUtil in kafka-clients 4.4) refuse collections longer than this and more
# tagged fields than this, whatever the frame's size: a 100 MB frame of one-byte elements is not a list
# anyone sends, and building it would cost gigabytes of Python objects.
MAX_ARRAY_LENGTH = 1_000_000
MAX_TAGGED_FIELD_COUNT = 10_000

# Record payloads at least this big are passed through as their own part instead of copied.
_SEPARATE_PART_BYTES = 32 * 1024


def _too_long(what: str, length: int) -> ProtocolError:
    return ProtocolError(f"{what} length {length} exceeds the remaining bytes", ErrorCode.CORRUPT_MESSAGE)


class Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int = 0):
        self.buf = memoryview(buf)
        self.pos = pos

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def _take(self, n: int, what: str) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise _too_long(what, n)
        view = self.buf[self.pos:end]
        self.pos = end
        return view

    def skip(self, n: int) -> None:
        self._take(n, "tagged field")

    # fixed-size integers -------------------------------------------------------------------
    def int8(self) -> int:
        v = _I8.unpack_from(self.buf, self.pos)[0]
        self.pos += 1
        return v

    def int16(self) -> int:
        v = _I16.unpack_from(self.buf, self.pos)[0]
        self.pos += 2
        return v

    def uint16(self) -> int:
        v = _U16.unpack_from(self.buf, self.pos)[0]
        self.pos += 2
        return v

    def int32(self) -> int:
        v = _I32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return v

    def uint32(self) -> int:
        v = _U32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return v

    def int64(self) -> int:
        v = _I64.unpack_from(self.buf, self.pos)[0]
        self.pos += 8
        return v

    def float64(self) -> float:
        v = _F64.unpack_from(self.buf, self.pos)[0]
        self.pos += 8
        return v

    def bool(self) -> bool:
        v = self.buf[self.pos]
        self.pos += 1
        return v != 0

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=bytes(self._take(16, "uuid")))

    # variable-length integers --------------------------------------------------------------
    def uvarint(self) -> int:
        buf, pos = self.buf, self.pos
        b = buf[pos]
        pos += 1
        if b < 0x80:
            self.pos = pos
            return b
        result = b & 0x7F
        shift = 7
        while True:
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 28:
                raise ProtocolError("unsigned varint longer than 5 bytes")
        self.pos = pos
        return result

    def uvarlong(self) -> int:
        buf, pos = self.buf, self.pos
        result = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                raise ProtocolError("varlong longer than 10 bytes")
        self.pos = pos
        return result

    def varint(self) -> int:
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def varlong(self) -> int:
        v = self.uvarlong()
        return (v >> 1) ^ -(v & 1)

    # strings and bytes ---------------------------------------------------------------------
    def string(self) -> str:
        n = self.int16()
        if n < 0:
            raise ProtocolError("non-nullable string was null")
        return str(self._take(n, "string"), "utf-8", "replace")

    def nullable_string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        return str(self._take(n, "string"), "utf-8", "replace")

    def compact_string(self) -> str:
        n = self.uvarint() - 1
        if n < 0:
            raise ProtocolError("non-nullable string was null")
        return str(self._take(n, "string"), "utf-8", "replace")

    def compact_nullable_string(self) -> str | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        return str(self._take(n, "string"), "utf-8", "replace")

    def bytes(self) -> bytes:
        n = self.int32()
        if n < 0:
            raise ProtocolError("non-nullable bytes were null")
        return bytes(self._take(n, "bytes"))

    def nullable_bytes(self) -> bytes | None:
        n = self.int32()
        if n < 0:
            return None
        return bytes(self._take(n, "bytes"))

    def compact_bytes(self) -> bytes:
        n = self.uvarint() - 1
        if n < 0:
            raise ProtocolError("non-nullable bytes were null")
        return bytes(self._take(n, "bytes"))

    def compact_nullable_bytes(self) -> bytes | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        return bytes(self._take(n, "bytes"))

    def records(self) -> memoryview | None:
        """Record batches stay a zero-copy view into the request buffer."""
        n = self.int32()
        return None if n < 0 else self._take(n, "records")

    def compact_records(self) -> memoryview | None:
        n = self.uvarint() - 1
        return None if n < 0 else self._take(n, "records")

    # arrays and tagged fields --------------------------------------------------------------
    def _checked_array_length(self, n: int) -> int:
        if n > len(self.buf) - self.pos:
            raise _too_long("array", n)
        if n > MAX_ARRAY_LENGTH:
            raise ProtocolError(f"array of {n} elements exceeds the maximum of {MAX_ARRAY_LENGTH}",
                                ErrorCode.CORRUPT_MESSAGE)
        return n

    def array_length(self) -> int:
        """Element count, -1 for null; never more than the bytes left (each element takes >= 1)
        nor more than MAX_ARRAY_LENGTH."""
        return self._checked_array_length(self.int32())

    def compact_array_length(self) -> int:
        return self._checked_array_length(self.uvarint() - 1)

    def tagged_fields(self) -> Iterator[tuple[int, int]]:
        """Yield (tag, size) for each tagged field; the caller reads or skips exactly size bytes."""
        count = self.uvarint()
        if count > len(self.buf) - self.pos:
            raise _too_long("tagged fields", count)
        if count > MAX_TAGGED_FIELD_COUNT:
            raise ProtocolError(f"{count} tagged fields exceed the maximum of {MAX_TAGGED_FIELD_COUNT}",
                                ErrorCode.CORRUPT_MESSAGE)
        last = -1
        for _ in range(count):
            tag = self.uvarint()
            if tag <= last:
                raise ProtocolError("tagged fields out of order")
            last = tag
            size = self.uvarint()
            if size > len(self.buf) - self.pos:
                raise _too_long("tagged field", size)
            yield tag, size


class Writer:
    __slots__ = ("buf", "_parts")

    def __init__(self) -> None:
        self.buf = bytearray()
        self._parts: list[Any] = []

    def parts(self) -> list[Any]:
        """The encoded message as buffers (and pass-through payload objects), in order."""
        if self.buf:
            self._parts.append(self.buf)
            self.buf = bytearray()
        return self._parts

    def getvalue(self) -> bytes:
        return b"".join(bytes(p) for p in self.parts())

    def size(self) -> int:
        return len(self.buf) + sum(len(p) for p in self._parts)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data

    def int8(self, v: int) -> None:
        self.buf += _I8.pack(v)

    def int16(self, v: int) -> None:
        self.buf += _I16.pack(v)

    def uint16(self, v: int) -> None:
        self.buf += _U16.pack(v)

    def int32(self, v: int) -> None:
        self.buf += _I32.pack(v)

    def uint32(self, v: int) -> None:
        self.buf += _U32.pack(v)

    def int64(self, v: int) -> None:
        self.buf += _I64.pack(v)

    def float64(self, v: float) -> None:
        self.buf += _F64.pack(v)

    def bool(self, v: bool) -> None:
        self.buf.append(1 if v else 0)

    def uuid(self, v: uuid.UUID) -> None:
        self.buf += v.bytes

    def uvarint(self, v: int) -> None:
        buf = self.buf
        while v >= 0x80:
            buf.append((v & 0x7F) | 0x80)
            v >>= 7
        buf.append(v)

    uvarlong = uvarint

    def varint(self, v: int) -> None:
        self.uvarint((v << 1) ^ (v >> 31))

    def varlong(self, v: int) -> None:
        self.uvarint((v << 1) ^ (v >> 63))

    def string(self, v: str) -> None:
        data = v.encode()
        self.buf += _I16.pack(len(data))
        self.buf += data

    def nullable_string(self, v: str | None) -> None:
        if v is None:
            self.buf += b"\xff\xff"
        else:
            self.string(v)

    def compact_string(self, v: str) -> None:
        data = v.encode()
        self.uvarint(len(data) + 1)
        self.buf += data

    def compact_nullable_string(self, v: str | None) -> None:
        if v is None:
            self.buf.append(0)
        else:
            self.compact_string(v)

    def bytes(self, v: bytes) -> None:
        self.buf += _I32.pack(len(v))
        self.buf += v

    def nullable_bytes(self, v: bytes | None) -> None:
        if v is None:
            self.buf += b"\xff\xff\xff\xff"
        else:
            self.bytes(v)

    def compact_bytes(self, v: bytes) -> None:
        self.uvarint(len(v) + 1)
        self.buf += v

    def compact_nullable_bytes(self, v: bytes | None) -> None:
        if v is None:
            self.buf.append(0)
        else:
            self.compact_bytes(v)

    def _payload(self, v: Any) -> None:
        if isinstance(v, (bytes, bytearray, memoryview)) and len(v) < _SEPARATE_PART_BYTES:
            self.buf += v
        else:
            self.parts()
            self._parts.append(v)

    def records(self, v: Any) -> None:
        if v is None:
            self.buf += b"\xff\xff\xff\xff"
        else:
            self.buf += _I32.pack(len(v))
            self._payload(v)

    def compact_records(self, v: Any) -> None:
        if v is None:
            self.buf.append(0)
        else:
            self.uvarint(len(v) + 1)
            self._payload(v)

    def array_length(self, items: list | None) -> None:
        self.buf += _I32.pack(-1 if items is None else len(items))

    def compact_array_length(self, items: list | None) -> None:
        self.uvarint(0 if items is None else len(items) + 1)

    def tagged_fields(self, fields: list[tuple[int, bytes]]) -> None:
        self.uvarint(len(fields))
        for tag, data in fields:
            self.uvarint(tag)
            self.uvarint(len(data))
            self.buf += data
