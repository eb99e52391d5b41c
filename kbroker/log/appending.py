"""The steps of an append that do not depend on where the batches are kept, as pure functions over
the batch bytes (a writable memoryview) and their headers; kbroker.log.base runs them in order.

1. ``append_headers``: the records as a writable, flat memoryview (copied once if read-only); a
   client's batch is validated as Kafka validates a Produce (records.py: framing, CRC, counts, no
   control batches), the broker's own batches are only framed. Too large for a segment is
   RECORD_LIST_TOO_LARGE.
2. ``check_timestamps``: CreateTime within message.timestamp.{before,after}.max.ms of now;
   ``check_keys``: on a compacted topic every record has a key (only those topics pay: it walks the
   varints up to each key on the memoryview, kbroker.log.compaction).
3. ``assign_offsets``: offsets, the leader epoch and LogAppendTime patched into the headers in place.

Per batch work only, but for compacted topics' key check: records are decoded solely to name the
record a failed timestamp check found.
"""

from __future__ import annotations

from kbroker.log.compaction import keyless_records
from kbroker.log.config import LogConfig
from kbroker.log.errors import RecordsRejected
from kbroker.protocol import records as rec
from kbroker.protocol.errors import ApiError, ErrorCode
from kbroker.protocol.records import BatchHeader


def append_headers(records, config: LogConfig, client: bool) -> tuple[memoryview, list[BatchHeader]]:
    """The bytes to append as a writable, flat memoryview (``records`` itself when it is writable,
    else a copy) and the headers of their whole batches (a trailing partial batch is dropped, as
    Kafka trims it). Raises ApiError for what may not be appended."""
    mv = records if isinstance(records, memoryview) else memoryview(records)
    if mv.readonly:
        mv = memoryview(bytearray(mv))
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    if client:
        headers = rec.validate_produce_records(mv, max_batch_bytes=config.max_message_bytes)
    else:
        headers = list(rec.iter_batches(mv))
        if not headers:
            raise ApiError(ErrorCode.CORRUPT_MESSAGE, "no complete record batch")
    end = headers[-1].position + headers[-1].size
    if end != len(mv):
        mv = mv[:end]
    if end > config.segment_bytes:
        raise ApiError(ErrorCode.RECORD_LIST_TOO_LARGE,
                       f"{end} bytes of records exceed segment.bytes {config.segment_bytes}")
    return mv, headers


def check_timestamps(mv: memoryview, headers: list[BatchHeader], now_ms: int, config: LogConfig) -> None:
    """Kafka checks each record's timestamp. The batch's first and max timestamps bound them all,
    so only a batch that fails is decoded, to name the offending record as Kafka does."""
    for h in headers:
        if config.log_append_time:
            if h.timestamp_type == rec.LOG_APPEND_TIME:
                raise ApiError(ErrorCode.INVALID_TIMESTAMP, "producer should not set timestamp type to LogAppendTime")
            continue
        lo = now_ms - config.message_timestamp_before_max_ms
        hi = now_ms + config.message_timestamp_after_max_ms
        stamps = (h.max_timestamp,) if h.timestamp_type == rec.LOG_APPEND_TIME else (h.base_timestamp, h.max_timestamp)
        if all(ts == rec.NO_TIMESTAMP or lo <= ts <= hi for ts in stamps):
            continue
        offending = next((r for r in rec.decode_batch_records(mv[h.position:h.position + h.size])
                          if not lo <= r.timestamp <= hi), None)
        offset, ts = (offending.offset, offending.timestamp) if offending else (0, h.max_timestamp)
        raise ApiError(ErrorCode.INVALID_TIMESTAMP, f"Timestamp {ts} of message with offset {offset} is out of range. "
                       f"The timestamp should be within [{lo}, {hi}]", record_index=offset - h.base_offset)


def check_keys(mv: memoryview, headers: list[BatchHeader], topic_partition: str) -> None:
    """A compacted topic refuses records without a key, as Kafka's LogValidator does: INVALID_RECORD
    with a record error for each such record."""
    for h in headers:
        keyless = keyless_records(mv, h)
        if keyless:
            why = f"Compacted topic cannot accept message without key in topic partition {topic_partition}"
            shown = ", ".join(f"RecordError(batchIndex={i}, message='{why}')" for i in keyless[:3])
            raise RecordsRejected(ErrorCode.INVALID_RECORD,
                                  f"One or more records have been rejected due to {len(keyless)} record errors in "
                                  f"total, and only showing the first three errors at most: [{shown}]",
                                  [(i, why) for i in keyless])


def assign_offsets(mv: memoryview, headers: list[BatchHeader], next_offset: int, *, leader_epoch: int,
                   client: bool, log_append_time_ms: int | None) -> tuple[int, int, int]:
    """Patch offsets from ``next_offset`` into the batches (and the leader epoch: always for a
    client's batch, where unset for the broker's; LogAppendTime when given). Returns (the next
    offset after them, their max timestamp, their record count)."""
    max_ts = -1
    count = 0
    for h in headers:
        h.base_offset = next_offset
        rec.set_base_offset(mv, h.position, next_offset)
        if client or h.partition_leader_epoch < 0:
            h.partition_leader_epoch = leader_epoch
            rec.set_partition_leader_epoch(mv, h.position, leader_epoch)
        if log_append_time_ms is not None:
            rec.set_log_append_time(mv, h, log_append_time_ms)
        next_offset = h.next_offset
        max_ts = max(max_ts, h.max_timestamp)
        count += h.record_count
    return next_offset, max_ts, count
