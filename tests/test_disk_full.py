"""A full disk loses nothing acknowledged, corrupts nothing, and service comes back without a restart
once space is freed (issue 14, defect 1: a short write used to leave half a batch in the segment, so
every later append landed after garbage and the records acknowledged after space came back were lost
at the next restart). The disk is a real, small ext4 filesystem on a loop device."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kbroker.testing import BrokerProcess


@pytest.fixture
def small_disk(tmp_path):
    """A 40 MB ext4 filesystem mounted on a loop device (needs root, as mounting does)."""
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        pytest.skip("mounting a loop filesystem needs root and mkfs.ext4 (e2fsprogs); this test's disk is real")
    image, mount = tmp_path / "disk.img", tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["truncate", "-s", "40M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> dict[bytes, tuple[int, int]]:
    """Send values with acks=all; the (partition, offset) of each one the broker acknowledged."""
    acknowledged: dict[bytes, tuple[int, int]] = {}
    errors: list[KafkaError] = []

    def delivered(err, msg):
        if err is None:
            acknowledged[msg.value()] = (msg.partition(), msg.offset())
        else:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "batch.num.messages": 10, "message.timeout.ms": 3000})
    for value in values:
        while True:
            try:
                producer.produce(topic, value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(30)
    return acknowledged


def _read_all(bootstrap: str, topic: str) -> dict[tuple[int, int], bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                         "check.crcs": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
    seen: dict[tuple[int, int], bytes] = {}
    idle = 0
    while idle < 10:
        messages = consumer.consume(1000, timeout=0.5)
        idle = idle + 1 if not messages else 0
        for message in messages:
            assert message.error() is None, message.error()
            seen[(message.partition(), message.offset())] = message.value()
    consumer.close()
    return seen


def test_a_full_disk_loses_nothing_acknowledged_and_recovers_once_space_is_freed(small_disk):
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 6_000_000)
    broker = BrokerProcess(small_disk / "kb", {"log.segment.bytes": 4_194_304},
                           log_path=small_disk.parent / "broker.log")  # the broker's own log is not on that disk
    broker.start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("orders", 2, 1)])["orders"].result(timeout=30)

        before = _produce(broker.bootstrap, "orders", [b"before-%06d-" % i + b"x" * 1000 for i in range(40_000)])
        assert len(before) < 40_000, "the disk never filled"
        filler.unlink()  # space is back
        after = _produce(broker.bootstrap, "orders", [b"after-%06d-" % i + b"y" * 1000 for i in range(400)])
        assert len(after) == 400, "service did not come back once space was freed"

        acknowledged = {**before, **after}
        stored = _read_all(broker.bootstrap, "orders")
        assert all(stored.get(where) == value for value, where in acknowledged.items())

        broker.kill()  # and a crash on top: recovery keeps every acknowledged record
        broker.start()
        recovered = _read_all(broker.bootstrap, "orders")
        assert all(recovered.get(where) == value for value, where in acknowledged.items())
        assert "storage error" in broker.log_path.read_text().lower()
    finally:
        broker.stop()
