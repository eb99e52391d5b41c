"""The in-memory log under the Fetch path: what it reads goes into the response as bytes (the disk
log's goes as a file region for sendfile), and a client decodes the same batches from either."""

from __future__ import annotations

import pytest

from kbroker.handlers import fetch
from kbroker.log import Log, MemoryLog, PartitionLog
from kbroker.partitions import Partition
from kbroker.protocol import codec
from kbroker.protocol import records as R
from kbroker.protocol.messages import FetchRequest, FetchResponse
from kbroker.protocol.file_region import FileRegion

NOW = 1_700_000_000_000


def fetched_records(log, fetch_offset: int, max_bytes: int = 1 << 20):
    """What a Fetch v12 answer carries for ``log``, as the handler fills it, encoded and decoded."""
    response = FetchResponse.PartitionData(partition_index=0, high_watermark=-1, last_stable_offset=-1,
                                           log_start_offset=-1, records=b"", aborted_transactions=None)
    topic = FetchResponse.FetchableTopicResponse(topic="orders", partitions=[response])
    wanted = fetch._Wanted(topic, response, FetchRequest.FetchPartition(
        partition=0, fetch_offset=fetch_offset, partition_max_bytes=max_bytes), Partition("orders", 0, log, 0))
    total, errored = fetch._read_all([wanted], max_bytes, read_committed=False)
    sent = response.records
    frame = b"".join(bytes(p) for p in codec.encode_response(7, FetchRequest.API_KEY, 12,
                                                             FetchResponse(responses=[topic])))
    _, decoded = codec.decode_response(frame[4:], FetchRequest.API_KEY, 12)
    (partition,) = decoded.responses[0].partitions
    return sent, total, bytes(partition.records), partition.high_watermark


@pytest.mark.parametrize("kind", ["disk", "memory"])
def test_a_fetch_carries_the_same_batches_from_either_log(kind, tmp_path):
    log = PartitionLog.open(str(tmp_path / "orders-0")) if kind == "disk" else MemoryLog(topic="orders")
    for i in range(3):
        log.append(bytearray(R.build_batch([R.Record(b"k", b"v%d" % i, (), NOW)])), NOW)
    sent, total, records, high_watermark = fetched_records(log, 1)
    assert isinstance(sent, FileRegion if kind == "disk" else memoryview)
    assert total == len(records) and high_watermark == 3
    batches = [(h.base_offset, R.decode_batch_records(records[h.position:h.position + h.size])[0].value)
               for h in R.iter_batches(records)]
    assert batches == [(1, b"v1"), (2, b"v2")]
    log.close()


def test_a_memory_read_is_one_view_of_whole_batches():
    log = MemoryLog()
    for i in range(4):
        log.append(bytearray(R.build_batch([R.Record(b"k", b"v%d" % i, (), NOW)])), NOW)
    one = len(log.read_bytes(0, 1))
    result = log.read(1, 2 * one)
    (part,) = result.slices
    assert type(part) is memoryview and (len(part), result.size, result.next_offset) == (2 * one, 2 * one, 3)
    assert [h.base_offset for h in R.iter_batches(part)] == [1, 2]


def test_both_logs_offer_everything_the_broker_uses_of_a_log(tmp_path):
    disk = PartitionLog.open(str(tmp_path / "orders-0"))
    assert isinstance(disk, Log) and isinstance(MemoryLog(), Log)
    disk.close()
