"""Record batches real clients sent (tests/golden, captured in front of Apache Kafka): our validator
accepts them, our decoder reads them, and the log stores them as they came."""

import glob
import os
import struct

import pytest

from kbroker.log import PartitionLog
from kbroker.protocol import records as R

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
FRAMES = sorted(glob.glob(os.path.join(GOLDEN, "*", "*-Produce-*-request.bin")))


def find_batch(frame: bytes) -> bytes:
    """The first CRC-valid v2 batch inside a Produce request frame (no request decoder needed)."""
    for p in range(len(frame) - R.HEADER_SIZE + 1):
        if frame[p + R.MAGIC_OFFSET] != 2:
            continue
        size = struct.unpack_from(">i", frame, p + R.LENGTH_OFFSET)[0] + R.LOG_OVERHEAD
        if R.HEADER_SIZE <= size <= len(frame) - p:
            candidate = frame[p : p + size]
            if R.compute_crc(candidate, 0, size) == struct.unpack_from(">I", candidate, R.CRC_OFFSET)[0]:
                return candidate
    raise AssertionError("no record batch in frame")


@pytest.mark.skipif(not FRAMES, reason="no golden Produce frames")
@pytest.mark.parametrize("path", FRAMES, ids=[os.path.relpath(f, GOLDEN) for f in FRAMES])
def test_real_client_batches_validate_decode_and_store(path, tmp_path):
    with open(path, "rb") as f:
        batch = find_batch(f.read())
    (h,) = R.validate_produce_records(batch)
    records = R.decode_batch_records(batch)
    assert len(records) == h.record_count > 0
    assert all(b"value" in r.value for r in records)
    log = PartitionLog.open(str(tmp_path / "golden-0"))
    log.append(bytearray(R.build_batch([R.Record(b"k", b"v", (), h.max_timestamp)])), h.max_timestamp)
    r = log.append(bytearray(batch), h.max_timestamp)
    assert r.base_offset == 1 and r.last_offset == h.record_count
    stored = log.read_bytes(1, 1 << 20)
    # only the base offset and the partition leader epoch (stamped by the leader) changed
    assert stored[8:12] == batch[8:12] and stored[16:] == batch[16:]
    assert R.parse_header(stored).partition_leader_epoch == 0
    assert [x.offset for x in R.decode_batch_records(stored)] == list(range(1, h.record_count + 1))
    log.close()


def test_we_saw_every_codec_real_clients_use():
    codecs = set()
    for path in FRAMES:
        with open(path, "rb") as f:
            codecs.add(R.parse_header(find_batch(f.read())).compression)
    if FRAMES:
        assert codecs >= {1, 2, 3}  # gzip (Java, aiokafka, kafka-python), snappy (kcat), lz4 (librdkafka)
