"""The two kinds of partition log, for scenario tests that must hold for both: ``new_log`` is a
parametrized fixture (disk, memory) giving a factory of empty logs, as tests/test_metadata_store.py
does for the topic catalogue. Tests about files (recovery, torn tails, indexes, durability) open a
PartitionLog themselves."""

from __future__ import annotations

import pytest

from kbroker.log import MemoryLog, PartitionLog


def kafka_names(config: dict) -> dict:
    """segment_bytes=... -> {"segment.bytes": ...}"""
    return {k.replace("_", "."): v for k, v in config.items()}


@pytest.fixture(params=["disk", "memory"])
def new_log(request, tmp_path):
    """``new_log(name="orders-0", **config)``: an empty log of this run's kind (config in Python
    spelling: segment_bytes=1500)."""
    opened = []

    def make(name: str = "orders-0", **config):
        if request.param == "disk":
            log = PartitionLog.open(str(tmp_path / name), kafka_names(config))
        else:
            topic, _, partition = name.rpartition("-")
            log = MemoryLog(kafka_names(config), topic=topic, partition=int(partition))
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()
