"""A compressed batch whose CRC is right but whose payload is not a valid stream is CORRUPT_MESSAGE,
as Kafka finds when it decompresses on append."""

from __future__ import annotations

import pytest

from kbroker.protocol import compression
from kbroker.protocol.errors import ErrorCode, InvalidRecordBatch
from kbroker.protocol.records import HEADER_SIZE, Record, build_batch, compute_crc, parse_header, validate_produce_records


def with_fixed_crc(batch: bytearray) -> bytes:
    header = parse_header(batch, 0)
    batch[17:21] = compute_crc(batch, 0, header.size).to_bytes(4, "big")
    return bytes(batch)


@pytest.mark.parametrize("codec", [compression.GZIP, compression.SNAPPY, compression.LZ4, compression.ZSTD])
def test_valid_crc_over_a_broken_compressed_stream(codec):
    records = [Record(b"k%d" % i, b"value" * 20) for i in range(50)]
    batch = bytearray(build_batch(records, compression_type=codec))
    validate_produce_records(bytes(batch))
    middle = HEADER_SIZE + (len(batch) - HEADER_SIZE) // 2
    batch[HEADER_SIZE:middle] = bytes(middle - HEADER_SIZE)  # zero the first half of the stream
    with pytest.raises(InvalidRecordBatch) as raised:
        validate_produce_records(with_fixed_crc(batch))
    assert raised.value.error_code == ErrorCode.CORRUPT_MESSAGE
