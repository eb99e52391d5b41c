"""Record batch compression codecs, as Kafka clients put them on the wire.

Sans-IO. The codec ids are the low three bits of a v2 batch's attributes:
0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.

- gzip: an RFC 1952 gzip stream (what java.util.zip.GZIPOutputStream writes).
- snappy: the Java client writes snappy-java's "xerial" framing (an 8-byte magic ``\\x82SNAPPY\\x00``,
  two int32 versions, then blocks of ``int32 length + raw snappy``); librdkafka may send one raw
  snappy block. Decompression accepts both; compression writes the xerial framing.
- lz4: the LZ4 frame format with independent 64 KiB blocks and no content checksum.
- zstd: a zstd frame (content size optional).

Every failure to decompress raises InvalidRecordBatch(CORRUPT_MESSAGE). Output is capped
(``max_output``, default DEFAULT_MAX_OUTPUT) so a small "decompression bomb" cannot exhaust memory.

cramjam (snappy, zstd) and lz4 are imported by the first batch that needs them, not when the broker
starts: many clients never compress.
"""

from __future__ import annotations

import struct
import zlib

from kbroker.protocol.errors import ErrorCode, InvalidRecordBatch

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4

NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}
BY_NAME = {v: k for k, v in NAMES.items()}

DEFAULT_MAX_OUTPUT = 128 * 1024 * 1024
# LZ4's densest encoding (a long match) turns one input byte into at most 255 output bytes
_LZ4_MAX_RATIO = 256
_LZ4_STEP = 256 * 1024
_ZSTD_FIRST_GUESS = 64 * 1024
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")
_XERIAL_BLOCK = 32 * 1024  # snappy-java's default block size
_INT32 = struct.Struct(">i")


def _corrupt(codec: int, detail: str) -> InvalidRecordBatch:
    return InvalidRecordBatch(f"corrupt {NAMES.get(codec, codec)} data: {detail}", ErrorCode.CORRUPT_MESSAGE)


def _too_large(codec: int, cap: int) -> InvalidRecordBatch:
    return InvalidRecordBatch(f"{NAMES.get(codec, codec)} data decompresses to more than {cap} bytes", ErrorCode.CORRUPT_MESSAGE)


# ---------------------------------------------------------------- compress


def compress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Compress ``data`` with ``codec`` the way the Java client does."""
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(data) + c.flush()
    if codec == SNAPPY:
        return _xerial_compress(memoryview(data))
    if codec == LZ4:
        import lz4.frame

        return lz4.frame.compress(
            bytes(data),
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,
        )
    if codec == ZSTD:
        import cramjam

        return bytes(cramjam.zstd.compress(bytes(data)))
    raise InvalidRecordBatch(f"unknown compression codec {codec}", ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)


def _xerial_compress(data: memoryview) -> bytes:
    import cramjam

    parts = [_XERIAL_HEADER.pack(XERIAL_MAGIC, 1, 1)]
    for start in range(0, len(data), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(bytes(data[start : start + _XERIAL_BLOCK])))
        parts.append(_INT32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


# ---------------------------------------------------------------- decompress


def decompress(codec: int, data: bytes | bytearray | memoryview, max_output: int = DEFAULT_MAX_OUTPUT) -> bytes:
    """Decompress ``data``; raises InvalidRecordBatch(CORRUPT_MESSAGE) on bad or oversized input."""
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        return _gzip_decompress(data, max_output)
    if codec == SNAPPY:
        return _snappy_decompress(memoryview(data), max_output)
    if codec == LZ4:
        return _lz4_decompress(data, max_output)
    if codec == ZSTD:
        return _zstd_decompress(bytes(data), max_output)
    raise InvalidRecordBatch(f"unknown compression codec {codec}", ErrorCode.CORRUPT_MESSAGE)


def _gzip_decompress(data, cap: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, cap + 1)
    except zlib.error as e:
        raise _corrupt(GZIP, str(e)) from None
    if len(out) > cap or d.unconsumed_tail:
        raise _too_large(GZIP, cap)
    if not d.eof:
        raise _corrupt(GZIP, "truncated stream")
    return out


def _raw_snappy(block: bytes | memoryview, cap: int) -> bytes:
    import cramjam

    try:
        n = cramjam.snappy.decompress_raw_len(block)
    except Exception as e:  # cramjam raises its own error types
        raise _corrupt(SNAPPY, str(e)) from None
    if n > cap:
        raise _too_large(SNAPPY, cap)
    try:
        return bytes(cramjam.snappy.decompress_raw(block))
    except Exception as e:
        raise _corrupt(SNAPPY, str(e)) from None


def _snappy_decompress(data: memoryview, cap: int) -> bytes:
    if len(data) < 16 or data[:8] != XERIAL_MAGIC:
        return _raw_snappy(bytes(data), cap)
    parts = []
    total = 0
    pos = 16
    end = len(data)
    while pos < end:
        if pos + 4 > end:
            raise _corrupt(SNAPPY, "truncated xerial block length")
        (n,) = _INT32.unpack_from(data, pos)
        pos += 4
        if n < 0 or pos + n > end:
            raise _corrupt(SNAPPY, "xerial block length beyond data")
        out = _raw_snappy(bytes(data[pos : pos + n]), cap - total)
        total += len(out)
        parts.append(out)
        pos += n
    return b"".join(parts)


def _lz4_decompress(data, cap: int) -> bytes:
    import lz4.frame

    d = lz4.frame.LZ4FrameDecompressor()
    try:
        if len(data) * _LZ4_MAX_RATIO <= cap:
            parts = [d.decompress(data)]  # cannot exceed the cap: one call, the fastest
        else:
            # Output in bounded steps, so a bomb stops at the cap. (A max_length of the whole cap would
            # make the decompressor allocate 128 MiB per batch.)
            parts = [d.decompress(data, max_length=_LZ4_STEP)]
            total = len(parts[0])
            while not d.eof and not d.needs_input and total <= cap:
                parts.append(d.decompress(b"", max_length=_LZ4_STEP))
                total += len(parts[-1])
    except RuntimeError as e:
        raise _corrupt(LZ4, str(e)) from None
    if sum(map(len, parts)) > cap:
        raise _too_large(LZ4, cap)
    if not d.eof:
        raise _corrupt(LZ4, "truncated frame")
    if d.unused_data:
        raise _corrupt(LZ4, "trailing bytes after frame")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _zstd_content_size(data: bytes) -> int | None:
    """The decompressed size a zstd frame header declares (librdkafka writes it; streaming
    compressors such as the Java client's do not), or None."""
    if len(data) < 6 or data[:4] != ZSTD_MAGIC:
        return None
    descriptor = data[4]
    single_segment = descriptor & 0x20
    size_bytes = (0, 2, 4, 8)[descriptor >> 6] or (1 if single_segment else 0)
    if not size_bytes:
        return None
    pos = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3]
    if pos + size_bytes > len(data):
        return None
    size = int.from_bytes(data[pos:pos + size_bytes], "little")
    return size + 256 if size_bytes == 2 else size


def _zstd_decompress(data: bytes, cap: int) -> bytes:
    import cramjam

    declared = _zstd_content_size(data)
    if declared is not None and declared > cap:
        raise _too_large(ZSTD, cap)
    # the output buffer: the declared size, else a guess that grows (a frame that does not fit raises)
    size = declared if declared is not None else min(cap + 1, max(_ZSTD_FIRST_GUESS, 8 * len(data)))
    while True:
        out = bytearray(size)
        try:
            n = cramjam.zstd.decompress_into(data, out)
        except Exception as e:
            if "whole buffer" not in str(e):
                raise _corrupt(ZSTD, str(e)) from None
            if declared is not None:  # more frames follow the first: guess and grow
                declared, size = None, min(cap + 1, max(_ZSTD_FIRST_GUESS, 2 * size))
                continue
            if size > cap:
                raise _too_large(ZSTD, cap) from None
            size = min(cap + 1, size * 4)
            continue
        if n > cap:
            raise _too_large(ZSTD, cap)
        if declared is not None and n != declared:
            raise _corrupt(ZSTD, f"frame declares {declared} bytes, holds {n}")
        # a copy of the used part: shrinking a large bytearray in place (del out[n:]) costs ~0.5 ms
        return bytes(out) if n == size else bytes(memoryview(out)[:n])
