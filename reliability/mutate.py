"""Byte-level mutations of a request frame, as a fuzzer makes them; deterministic for a given rng.

A mutation applies 1-4 operations anywhere, or one past the request header: flip a bit, set a byte, overwrite an aligned 2/4-byte field with a
boundary value (0, -1, 0x7fff, 0x7fffffff, 0x80000000, 0xffff), insert random bytes, delete a range,
duplicate a range, truncate, or splice in the tail of another frame. `framed` puts a size prefix on the
result: usually its true length, sometimes a length that is too short or too long (the broker then reads
the rest as the next frame, or waits for bytes that never come).
"""

from __future__ import annotations

import random
import struct

BOUNDARY_INT16 = [0, 1, -1, 0x7FFF, -0x8000, 0xFF]
BOUNDARY_INT32 = [0, 1, -1, 0x7FFFFFFF, -0x80000000, 0xFFFF, 10_000, 100_000]


def _flip_bit(frame: bytearray, rng: random.Random, corpus) -> None:
    if frame:
        frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)


def _set_byte(frame: bytearray, rng: random.Random, corpus) -> None:
    if frame:
        frame[rng.randrange(len(frame))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])


def _boundary_field(frame: bytearray, rng: random.Random, corpus) -> None:
    if len(frame) >= 4:
        if rng.random() < 0.5:
            pos = rng.randrange(len(frame) - 1)
            frame[pos:pos + 2] = struct.pack(">h", rng.choice(BOUNDARY_INT16))
        else:
            pos = rng.randrange(len(frame) - 3)
            frame[pos:pos + 4] = struct.pack(">i", rng.choice(BOUNDARY_INT32))


def _insert(frame: bytearray, rng: random.Random, corpus) -> None:
    pos = rng.randrange(len(frame) + 1)
    frame[pos:pos] = rng.randbytes(rng.choice([1, 2, 4, 8, rng.randrange(1, 64)]))


def _delete(frame: bytearray, rng: random.Random, corpus) -> None:
    if frame:
        pos = rng.randrange(len(frame))
        del frame[pos:pos + rng.randrange(1, 16)]


def _duplicate(frame: bytearray, rng: random.Random, corpus) -> None:
    if frame:
        pos = rng.randrange(len(frame))
        piece = frame[pos:pos + rng.randrange(1, 64)]
        frame[pos:pos] = piece


def _truncate(frame: bytearray, rng: random.Random, corpus) -> None:
    if frame:
        del frame[rng.randrange(len(frame)):]


def _splice(frame: bytearray, rng: random.Random, corpus) -> None:
    other = rng.choice(corpus)
    if frame and other:
        frame[rng.randrange(len(frame)):] = other[rng.randrange(len(other)):]


OPERATIONS = [_flip_bit, _flip_bit, _set_byte, _boundary_field, _boundary_field, _insert, _delete, _duplicate,
              _truncate, _splice]


def header_length(frame: bytes) -> int:
    """Bytes of the request header (api key, version, correlation id, client id) at the frame's start."""
    if len(frame) < 10:
        return len(frame)
    client_id = struct.unpack_from(">h", frame, 8)[0]
    return min(len(frame), 10 + max(client_id, 0))


def mutate(frame: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    """Half the time anywhere, with 1-4 operations; otherwise one operation past the header, so that
    more of the mutated frames reach a handler instead of failing the header's decoding."""
    if rng.random() < 0.5:
        mutated = bytearray(frame)
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
            rng.choice(OPERATIONS)(mutated, rng, corpus)
        return bytes(mutated)
    keep = header_length(frame)
    body = bytearray(frame[keep:])
    rng.choice(OPERATIONS)(body, rng, corpus)
    return frame[:keep] + bytes(body)


def framed(body: bytes, rng: random.Random) -> bytes:
    size = len(body)
    roll = rng.random()
    if roll < 0.03:
        size = max(0, size - rng.randrange(1, 8))
    elif roll < 0.05:
        size += rng.randrange(1, 8)
    elif roll < 0.055:
        size = rng.choice([-1, 0, 0x7FFFFFFF, 100 * 1024 * 1024 + 1])
    return struct.pack(">i", size) + body
