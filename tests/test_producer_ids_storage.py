"""Producer ids are reserved in durable blocks. When the next block cannot be written (a full disk),
InitProducerId answers COORDINATOR_LOAD_IN_PROGRESS — a producer retries it — instead of closing the
connection, and no id of the unwritten block is ever handed out (issue 14, defect 2)."""

from __future__ import annotations

import errno

import pytest

import kbroker.txn.producer_ids as producer_ids
from kbroker.protocol.errors import ApiError, ErrorCode
from kbroker.protocol.messages import InitProducerIdRequest
from kbroker.txn.producer_ids import BLOCK_SIZE, ProducerIdManager
from tests.kafka_wire import WireClient


def _disk_full(monkeypatch):
    def no_space(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(producer_ids, "write_atomically", no_space)


def test_an_unreserved_block_hands_out_no_id(tmp_path, monkeypatch):
    manager = ProducerIdManager(tmp_path)
    first = manager.new_producer_id()
    manager._next_id = BLOCK_SIZE  # the block is used up
    _disk_full(monkeypatch)
    with pytest.raises(ApiError) as refused:
        manager.new_producer_id()
    assert refused.value.error_code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    monkeypatch.undo()
    assert manager.new_producer_id() == BLOCK_SIZE  # the next try reserves it
    assert ProducerIdManager(tmp_path).new_producer_id() == 2 * BLOCK_SIZE > first


def test_init_producer_id_on_a_full_disk_is_retriable_and_the_connection_stays(kbroker, monkeypatch):
    _disk_full(monkeypatch)
    with WireClient(kbroker.bootstrap) as client:
        idempotent = client.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4)
        assert (idempotent.error_code, idempotent.producer_id) == (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, -1)
        transactional = client.request(InitProducerIdRequest(transactional_id="orders-app",
                                                             transaction_timeout_ms=60000), 4)
        assert transactional.error_code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        monkeypatch.undo()  # space is back
        again = client.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4)
        assert again.error_code == ErrorCode.NONE and again.producer_id >= 0
