"""Record batch compression codecs, as Kafka clients put them on the wire.

Sans-IO. The codec ids are the low three bits of a v2 batch's attributes:
0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.

- gzip: an RFC 1952 gzip stream (what java.util.zip.GZIPOutputStream writes).
- snappy: the Java client writes snappy-java's "xerial" framing (an 8-byte magic ``\\x82SNAPPY\\x00``,
  two int32 versions, then blocks of ``int32 length + raw snappy``); librdkafka may send one raw
  snappy block. Decompression accepts both; compression writes the xerial framing.
- lz4: the LZ4 frame format with independent 64 KiB blocks and no content checksum.
- zstd: a zstd frame (content size optional).

Every failure to decompress raises ProtocolError(CORRUPT_MESSAGE). Output is capped
(``max_output``, default DEFAULT_MAX_OUTPUT) so a small "decompression bomb" cannot exhaust memory.

cramjam (snappy, zstd) and lz4 are imported by the first batch that needs them, not when the broker
starts: many clients never compress.
"""

from __future__ import annotations

import struct
import zlib

from kbroker.protocol.errors import ErrorCode, ProtocolError

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4

NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}
BY_NAME = {v: k for k, v in NAMES.items()}

DEFAULT_MAX_OUTPUT = 128 * 1024 * 1024

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")
_XERIAL_BLOCK = 32 * 1024  # snappy-java's default block size
_INT32 = struct.Struct(">i")


def _corrupt(codec: int, detail: str) -> ProtocolError:
    return ProtocolError(f"corrupt {NAMES.get(codec, codec)} data: {detail}", ErrorCode.CORRUPT_MESSAGE)


def _too_large(codec: int, cap: int) -> ProtocolError:
    return ProtocolError(
        f"{NAMES.get(codec, codec)} data decompresses to more than {cap} bytes", ErrorCode.CORRUPT_MESSAGE
    )


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
    raise ProtocolError(f"unknown compression codec {codec}", ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)


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
    """Decompress ``data``; raises ProtocolError(CORRUPT_MESSAGE) on bad or oversized input."""
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
    raise ProtocolError(f"unknown compression codec {codec}", ErrorCode.CORRUPT_MESSAGE)


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
        out = d.decompress(data, max_length=cap + 1)
    except RuntimeError as e:
        raise _corrupt(LZ4, str(e)) from None
    if len(out) > cap:
        raise _too_large(LZ4, cap)
    if not d.eof:
        raise _corrupt(LZ4, "truncated frame")
    if d.unused_data:
        raise _corrupt(LZ4, "trailing bytes after frame")
    return out


def _zstd_decompress(data: bytes, cap: int) -> bytes:
    import cramjam

    size = min(cap + 1, max(1 << 20, 8 * len(data)))
    while True:
        out = bytearray(size)
        try:
            n = cramjam.zstd.decompress_into(data, out)
        except Exception as e:
            if "whole buffer" in str(e) and size <= cap:
                size = min(cap + 1, size * 4)
                continue
            if "whole buffer" in str(e):
                raise _too_large(ZSTD, cap) from None
            raise _corrupt(ZSTD, str(e)) from None
        if n > cap:
            raise _too_large(ZSTD, cap)
        del out[n:]
        return bytes(out)
