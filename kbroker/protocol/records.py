"""Record batch v2 (magic 2): parsing, validation, in-place patching, and record encode/decode.

Sans-IO: no trio, no files. The hot path (Produce validation, offset assignment) works per batch on
memoryviews -- a header unpack and one CRC-32C per batch -- and never looks at individual records of
an uncompressed batch. Record-level encode/decode is here for tests, compaction, internal topics and
ListOffsets-by-timestamp, which are not hot.

Batch layout (big-endian), 61 header bytes then the records::

    0  baseOffset int64          8  batchLength int32 (bytes after this field)
    12 partitionLeaderEpoch int32
    16 magic int8                17 crc uint32 (CRC-32C of bytes 21..end)
    21 attributes int16          23 lastOffsetDelta int32
    27 baseTimestamp int64       35 maxTimestamp int64
    43 producerId int64          51 producerEpoch int16
    53 baseSequence int32        57 recordCount int32
    61 records (compressed as a whole when attributes & 7 != 0)

Every failure raises InvalidRecordBatch with the Kafka error code Kafka's broker would answer with.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from crc32c import crc32c

from kbroker.protocol import compression
from kbroker.protocol.errors import ErrorCode, InvalidRecordBatch

# ---------------------------------------------------------------- layout constants

BASE_OFFSET_OFFSET = 0
LENGTH_OFFSET = 8
PARTITION_LEADER_EPOCH_OFFSET = 12
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
LAST_OFFSET_DELTA_OFFSET = 23
BASE_TIMESTAMP_OFFSET = 27
MAX_TIMESTAMP_OFFSET = 35
PRODUCER_ID_OFFSET = 43
RECORD_COUNT_OFFSET = 57
RECORDS_OFFSET = 61

LOG_OVERHEAD = 12  # baseOffset + batchLength
HEADER_SIZE = 61  # RECORD_BATCH_OVERHEAD
HEADER_SIZE_UP_TO_MAGIC = 17
LEGACY_RECORD_OVERHEAD_V0 = 14  # smallest legal batchLength of any magic (Kafka's first sanity check)
MIN_RECORD_SIZE = 7  # a v2 record with null key/value, no headers: 7 one-byte varints/ints

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40

CREATE_TIME = 0
LOG_APPEND_TIME = 1

NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
INT32_MAX = 2**31 - 1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_H = struct.Struct(">h")
_U32 = struct.Struct(">I")
_LENGTH_AND_EPOCH_AND_MAGIC = struct.Struct(">iib")  # at offset 8

assert _HEADER.size == HEADER_SIZE


def increment_sequence(sequence: int, increment: int) -> int:
    """Sequence arithmetic as Kafka does it: wraps from INT32_MAX to 0."""
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


@dataclass(slots=True)
class BatchHeader:
    """The 61-byte header of one v2 batch; ``position`` is where the batch starts in its buffer."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int
    position: int = 0

    @property
    def size(self) -> int:
        """Total bytes of the batch including baseOffset and batchLength."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_MASK else CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_MASK)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return increment_sequence(self.base_sequence, self.last_offset_delta)


def parse_header(buf, pos: int = 0) -> BatchHeader:
    """Unpack the header of the batch at ``pos``. Needs 61 bytes; checks nothing else."""
    if len(buf) - pos < HEADER_SIZE:
        raise InvalidRecordBatch(f"record batch header needs {HEADER_SIZE} bytes, {len(buf) - pos} present", ErrorCode.CORRUPT_MESSAGE)
    return BatchHeader(*_HEADER.unpack_from(buf, pos), pos)


def compute_crc(buf, pos: int, size: int) -> int:
    """CRC-32C of bytes attributes..end of the batch at ``pos`` of total ``size``."""
    mv = buf if isinstance(buf, memoryview) else memoryview(buf)
    return crc32c(mv[pos + ATTRIBUTES_OFFSET : pos + size])


def check_crc(buf, header: BatchHeader) -> None:
    if compute_crc(buf, header.position, header.size) != header.crc:
        raise InvalidRecordBatch(f"record batch at offset {header.base_offset} is corrupt (stored crc {header.crc:#010x})", ErrorCode.CORRUPT_MESSAGE)


def iter_batches(buf, pos: int = 0, *, check: bool = True) -> Iterator[BatchHeader]:
    """Yield the header of each complete v2 batch in ``buf`` from ``pos`` on.

    Stops silently at a trailing partial batch (fewer bytes present than the batch declares), as
    Kafka's batch iterator does; the caller compares ``h.position + h.size`` with ``len(buf)`` if it
    cares. Raises InvalidRecordBatch(CORRUPT_MESSAGE) for an impossible length, a magic other than 2, or,
    with ``check``, a CRC mismatch.
    """
    end = len(buf)
    while end - pos >= LOG_OVERHEAD:
        length = _I.unpack_from(buf, pos + LENGTH_OFFSET)[0]
        if length < HEADER_SIZE - LOG_OVERHEAD:
            raise InvalidRecordBatch(f"record batch length {length} is too small", ErrorCode.CORRUPT_MESSAGE)
        if end - pos < HEADER_SIZE_UP_TO_MAGIC:
            return
        magic = buf[pos + MAGIC_OFFSET]
        if magic != 2:
            raise InvalidRecordBatch(f"unsupported record batch magic {magic}", ErrorCode.CORRUPT_MESSAGE)
        size = length + LOG_OVERHEAD
        if end - pos < size:
            return
        header = BatchHeader(*_HEADER.unpack_from(buf, pos), pos)
        if check:
            check_crc(buf, header)
        yield header
        pos += size


class InvalidProduceFraming(InvalidRecordBatch):
    """INVALID_RECORD found by Kafka before the log is touched (ProduceRequest.validateRecords): the
    records field is not exactly one magic-2 batch. Kafka then reports no log start offset."""

    def __init__(self, message: str):
        super().__init__(message, ErrorCode.INVALID_RECORD)


def _invalid(msg: str) -> InvalidRecordBatch:
    return InvalidRecordBatch(msg, ErrorCode.INVALID_RECORD)


def validate_produce_records(
    buf,
    *,
    max_batch_bytes: int = INT32_MAX,
    single_batch: bool = True,
) -> list[BatchHeader]:
    """Validate the records field of a Produce request (v3+) as Kafka 4 does, per batch.

    Returns the headers of the complete batches; a trailing partial batch is ignored (Kafka trims
    it), so the bytes to append are ``buf[:headers[-1].position + headers[-1].size]``.

    Error codes, in Kafka's order of checks:
    - batchLength below 14, or a magic byte outside 0..2: CORRUPT_MESSAGE
    - no complete batch, magic 0/1 (old message formats are rejected in Kafka 4), or more than one
      batch (when ``single_batch``): INVALID_RECORD
    - baseOffset != 0: INVALID_RECORD
    - a batch larger than ``max_batch_bytes`` (max.message.bytes): MESSAGE_TOO_LARGE
    - batch shorter than a v2 header or CRC-32C mismatch: CORRUPT_MESSAGE
    - lastOffsetDelta/recordCount inconsistent, control batch, producer id without sequence:
      INVALID_RECORD
    """
    mv = buf if isinstance(buf, memoryview) else memoryview(buf)
    end = len(mv)
    pos = 0
    spans: list[tuple[int, int, int]] = []  # (position, size, magic)
    # Pass 1: framing, as Kafka's ByteBufferLogInputStream does it.
    while end - pos >= LOG_OVERHEAD:
        length = _I.unpack_from(mv, pos + LENGTH_OFFSET)[0]
        if length < LEGACY_RECORD_OVERHEAD_V0:
            raise InvalidRecordBatch(f"record size {length} is less than the minimum record overhead", ErrorCode.CORRUPT_MESSAGE)
        if end - pos < HEADER_SIZE_UP_TO_MAGIC:
            break
        magic = mv[pos + MAGIC_OFFSET]
        if magic > 2:  # signed int8: 128..255 are negative
            raise InvalidRecordBatch(f"invalid magic found in record: {magic - 256 if magic > 127 else magic}", ErrorCode.CORRUPT_MESSAGE)
        size = length + LOG_OVERHEAD
        if end - pos < size:
            break
        spans.append((pos, size, magic))
        pos += size
    if not spans:
        raise InvalidProduceFraming("produce request must have at least one record batch per partition")
    if spans[0][2] != 2:
        raise InvalidProduceFraming("produce requests are only allowed to contain record batches with magic version 2")
    if single_batch and len(spans) > 1:
        raise InvalidProduceFraming("produce requests are only allowed to contain exactly one record batch per partition")
    headers = []
    for pos, size, magic in spans:
        if magic != 2:
            raise _invalid(f"batch magic {magic} is not the same as the first batch's magic byte 2")
        if size < HEADER_SIZE:
            raise InvalidRecordBatch(f"record batch size {size} is smaller than a batch header", ErrorCode.CORRUPT_MESSAGE)
        h = BatchHeader(*_HEADER.unpack_from(mv, pos), pos)
        if h.base_offset != 0:
            raise _invalid(f"the baseOffset of the record batch should be 0, but it is {h.base_offset}")
        if size > max_batch_bytes:
            raise InvalidRecordBatch(f"the record batch size is {size} bytes which exceeds the maximum configured value of {max_batch_bytes}", ErrorCode.MESSAGE_TOO_LARGE)
        check_crc(mv, h)
        _check_client_batch(h)
        if h.compression != compression.NONE:
            _check_compressed_payload(mv, h)
        headers.append(h)
    return headers


def _check_compressed_payload(mv: memoryview, h: BatchHeader) -> None:
    """Kafka decompresses what it stores; a payload that does not decompress, or cannot hold the
    records the header claims, is CORRUPT_MESSAGE. Per batch, at C speed: records are not parsed."""
    payload_size = len(batch_payload(mv, h))
    if payload_size < MIN_RECORD_SIZE * h.record_count:
        raise InvalidRecordBatch(f"{h.record_count} records cannot fit in {payload_size} decompressed bytes", ErrorCode.CORRUPT_MESSAGE)


def _check_client_batch(h: BatchHeader) -> None:
    count_from_offsets = h.last_offset_delta + 1
    if count_from_offsets <= 0:
        raise _invalid(f"batch has an invalid offset range: [{h.base_offset}, {h.last_offset}]")
    if h.record_count <= 0:
        raise _invalid(f"invalid reported count for record batch: {h.record_count}")
    if count_from_offsets != h.record_count:
        raise _invalid(f"inconsistent batch offset range [{h.base_offset}, {h.last_offset}] and count of records {h.record_count}")
    if h.compression == compression.NONE and h.size - HEADER_SIZE < MIN_RECORD_SIZE * h.record_count:
        raise InvalidRecordBatch(f"{h.record_count} records cannot fit in {h.size - HEADER_SIZE} bytes", ErrorCode.CORRUPT_MESSAGE)
    if h.compression > compression.ZSTD:
        raise InvalidRecordBatch(f"unknown compression codec {h.compression}", ErrorCode.CORRUPT_MESSAGE)
    if h.is_control:
        raise _invalid("clients are not allowed to write control records")
    if h.producer_id >= 0 and h.base_sequence < 0:
        raise _invalid(f"invalid sequence number {h.base_sequence} in record batch with producerId {h.producer_id}")


# ---------------------------------------------------------------- in-place patching


def set_base_offset(buf, pos: int, base_offset: int) -> None:
    """Write baseOffset of the batch at ``pos`` (not CRC covered)."""
    _Q.pack_into(buf, pos + BASE_OFFSET_OFFSET, base_offset)


def set_partition_leader_epoch(buf, pos: int, epoch: int) -> None:
    """Write partitionLeaderEpoch of the batch at ``pos`` (not CRC covered)."""
    _I.pack_into(buf, pos + PARTITION_LEADER_EPOCH_OFFSET, epoch)


def set_log_append_time(buf, header: BatchHeader, timestamp_ms: int) -> None:
    """Mark the batch LogAppendTime with ``timestamp_ms`` as maxTimestamp and rewrite its CRC."""
    pos = header.position
    header.attributes |= TIMESTAMP_TYPE_MASK
    header.max_timestamp = timestamp_ms
    _H.pack_into(buf, pos + ATTRIBUTES_OFFSET, header.attributes)
    _Q.pack_into(buf, pos + MAX_TIMESTAMP_OFFSET, timestamp_ms)
    header.crc = compute_crc(buf, pos, header.size)
    _U32.pack_into(buf, pos + CRC_OFFSET, header.crc)


# ---------------------------------------------------------------- varints


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def write_varint(out: bytearray, n: int) -> None:
    """Append a zigzag varint/varlong."""
    v = _zigzag(n) & 0xFFFFFFFFFFFFFFFF
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def read_varint(buf, pos: int, end: int, max_bytes: int = 10) -> tuple[int, int]:
    """Read a zigzag varint/varlong at ``pos``; returns (value, new position)."""
    result = 0
    shift = 0
    for i in range(max_bytes):
        if pos >= end:
            raise InvalidRecordBatch("varint runs past the end of the record", ErrorCode.CORRUPT_MESSAGE)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise InvalidRecordBatch("varint is too long", ErrorCode.CORRUPT_MESSAGE)


# ---------------------------------------------------------------- records


@dataclass(slots=True)
class Record:
    """One record. ``offset`` and ``timestamp`` are absolute; -1 means "assign when building"."""

    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = field(default_factory=tuple)
    timestamp: int = NO_TIMESTAMP
    offset: int = -1


def _encode_record(out: bytearray, r: Record, offset_delta: int, timestamp_delta: int) -> None:
    body = bytearray(b"\x00")  # attributes: unused, always 0
    write_varint(body, timestamp_delta)
    write_varint(body, offset_delta)
    for blob in (r.key, r.value):
        if blob is None:
            write_varint(body, -1)
        else:
            write_varint(body, len(blob))
            body += blob
    write_varint(body, len(r.headers))
    for hkey, hval in r.headers:
        kb = hkey.encode() if isinstance(hkey, str) else bytes(hkey)
        write_varint(body, len(kb))
        body += kb
        if hval is None:
            write_varint(body, -1)
        else:
            write_varint(body, len(hval))
            body += hval
    write_varint(out, len(body))
    out += body


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    compression_type: int = compression.NONE,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    timestamp_type: int = CREATE_TIME,
    transactional: bool = False,
    control: bool = False,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    now_ms: int | None = None,
    delete_horizon_ms: int | None = None,
) -> bytes:
    """Encode ``records`` as one v2 batch, as the Java producer would.

    Records without a timestamp get ``now_ms`` (default: the wall clock); records without an offset
    get consecutive offsets from ``base_offset``. baseTimestamp is the first record's timestamp
    (or ``delete_horizon_ms`` when given, which also sets the delete-horizon attribute).
    """
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    timestamps = [r.timestamp if r.timestamp != NO_TIMESTAMP else now_ms for r in records]
    deltas = [r.offset - base_offset if r.offset >= 0 else i for i, r in enumerate(records)]
    if delete_horizon_ms is not None:
        base_ts = delete_horizon_ms
    else:
        base_ts = timestamps[0] if records else NO_TIMESTAMP
    max_ts = max(timestamps) if records else NO_TIMESTAMP
    body = bytearray()
    for r, delta, ts in zip(records, deltas, timestamps):
        _encode_record(body, r, delta, ts - base_ts)
    payload = compression.compress(compression_type, body) if compression_type else bytes(body)
    attributes = compression_type & COMPRESSION_MASK
    if timestamp_type == LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_MASK
    if transactional:
        attributes |= TRANSACTIONAL_MASK
    if control:
        attributes |= CONTROL_MASK
    if delete_horizon_ms is not None:
        attributes |= DELETE_HORIZON_MASK
    last_delta = max(deltas) if records else -1
    out = bytearray(HEADER_SIZE)
    _HEADER.pack_into(
        out, 0, base_offset, HEADER_SIZE - LOG_OVERHEAD + len(payload), partition_leader_epoch, 2, 0,
        attributes, last_delta, base_ts, max_ts, producer_id, producer_epoch, base_sequence, len(records),
    )
    out += payload
    _U32.pack_into(out, CRC_OFFSET, compute_crc(out, 0, len(out)))
    return bytes(out)


# ---------------------------------------------------------------- control records (transaction markers)

CONTROL_ABORT = 0
CONTROL_COMMIT = 1
_CONTROL_KEY = struct.Struct(">hh")  # version 0, type
_END_TXN_MARKER = struct.Struct(">hi")  # version 0, coordinator epoch


def build_end_txn_marker(commit: bool, producer_id: int, producer_epoch: int, coordinator_epoch: int = 0, *,
                         partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH, now_ms: int | None = None) -> bytes:
    """A control batch holding one COMMIT or ABORT marker, as a transaction coordinator writes it."""
    key = _CONTROL_KEY.pack(0, CONTROL_COMMIT if commit else CONTROL_ABORT)
    value = _END_TXN_MARKER.pack(0, coordinator_epoch)
    return build_batch([Record(key, value)], producer_id=producer_id, producer_epoch=producer_epoch,
                       transactional=True, control=True, partition_leader_epoch=partition_leader_epoch,
                       now_ms=now_ms)


def control_record_type(batch, header: BatchHeader | None = None) -> int:
    """CONTROL_COMMIT or CONTROL_ABORT (or another control type) of a control batch's first record."""
    return read_control_record(batch, header)[0]


def read_control_record(batch, header: BatchHeader | None = None) -> tuple[int, int]:
    """(control type, coordinator epoch) of a control batch; the epoch is -1 unless it is a marker."""
    records = decode_batch_records(batch, header)
    if not records or records[0].key is None or len(records[0].key) < _CONTROL_KEY.size:
        raise InvalidRecordBatch("control batch without a control record key", ErrorCode.CORRUPT_MESSAGE)
    kind = _CONTROL_KEY.unpack_from(records[0].key)[1]
    value = records[0].value
    epoch = _END_TXN_MARKER.unpack_from(value)[1] if kind in (CONTROL_ABORT, CONTROL_COMMIT) and value is not None \
        and len(value) >= _END_TXN_MARKER.size else -1
    return kind, epoch


def batch_payload(batch, header: BatchHeader | None = None, max_output: int = compression.DEFAULT_MAX_OUTPUT) -> bytes:
    """The uncompressed records section of a single batch."""
    mv = batch if isinstance(batch, memoryview) else memoryview(batch)
    if header is None:
        header = parse_header(mv, 0)
    start = header.position + HEADER_SIZE
    end = header.position + header.size
    if header.size < HEADER_SIZE or end > len(mv):
        raise InvalidRecordBatch("record batch is truncated", ErrorCode.CORRUPT_MESSAGE)
    return compression.decompress(header.compression, mv[start:end], max_output)


def decode_batch_records(batch, header: BatchHeader | None = None) -> list[Record]:
    """Decode every record of the batch (decompressing as needed). Raises InvalidRecordBatch only."""
    mv = batch if isinstance(batch, memoryview) else memoryview(batch)
    if header is None:
        header = parse_header(mv, 0)
    if header.magic != 2:
        raise InvalidRecordBatch(f"unsupported record batch magic {header.magic}", ErrorCode.CORRUPT_MESSAGE)
    data = batch_payload(mv, header)
    end = len(data)
    pos = 0
    out: list[Record] = []
    log_append = header.timestamp_type == LOG_APPEND_TIME
    if header.record_count < 0 or header.record_count > end:
        raise InvalidRecordBatch(f"invalid record count {header.record_count}", ErrorCode.CORRUPT_MESSAGE)
    for _ in range(header.record_count):
        length, pos = read_varint(data, pos, end, 5)
        if length < MIN_RECORD_SIZE - 1 or pos + length > end:
            raise InvalidRecordBatch(f"invalid record length {length}", ErrorCode.CORRUPT_MESSAGE)
        rend = pos + length
        pos += 1  # attributes
        ts_delta, pos = read_varint(data, pos, rend)
        off_delta, pos = read_varint(data, pos, rend, 5)
        key, pos = _read_blob(data, pos, rend)
        value, pos = _read_blob(data, pos, rend)
        nheaders, pos = read_varint(data, pos, rend, 5)
        if nheaders < 0 or nheaders > rend - pos:
            raise InvalidRecordBatch(f"invalid header count {nheaders}", ErrorCode.CORRUPT_MESSAGE)
        headers = []
        for _h in range(nheaders):
            hkey, pos = _read_blob(data, pos, rend)
            if hkey is None:
                raise InvalidRecordBatch("null header key", ErrorCode.CORRUPT_MESSAGE)
            try:
                skey = hkey.decode()
            except UnicodeDecodeError:
                raise InvalidRecordBatch("header key is not UTF-8", ErrorCode.CORRUPT_MESSAGE) from None
            hval, pos = _read_blob(data, pos, rend)
            headers.append((skey, hval))
        if pos != rend:
            raise InvalidRecordBatch("record length does not match its contents", ErrorCode.CORRUPT_MESSAGE)
        ts = header.max_timestamp if log_append else header.base_timestamp + ts_delta
        out.append(Record(key, value, tuple(headers), ts, header.base_offset + off_delta))
    if pos != end:
        raise InvalidRecordBatch("bytes left over after the last record", ErrorCode.CORRUPT_MESSAGE)
    return out


def _read_blob(data, pos: int, end: int) -> tuple[bytes | None, int]:
    n, pos = read_varint(data, pos, end, 5)
    if n == -1:
        return None, pos
    if n < 0:
        raise InvalidRecordBatch(f"invalid field length {n}", ErrorCode.CORRUPT_MESSAGE)
    if pos + n > end:
        raise InvalidRecordBatch("record field runs past the end of the record", ErrorCode.CORRUPT_MESSAGE)
    return bytes(data[pos : pos + n]), pos + n
