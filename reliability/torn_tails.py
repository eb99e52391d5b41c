"""Torn tails: tear the end of a stopped broker's files, restart, and check what survives.

A broker gets 25,000 acknowledged records in three 1 MB segments of one partition and ten offset commits
(10, 20, ..., 100) of one group, each its own record in `__consumer_offsets`; then it is killed with
SIGKILL, as a torn tail is what a crash leaves (after a clean shutdown the recovery point says all is
fsynced and, as in Kafka, nothing is re-checked). Each case copies that data directory, tears one file as a crash or a bad disk would
(truncate inside the last batch, garble bytes, append garbage, cut or overwrite an index), starts a
broker on the copy and checks:

- every record whose batch is still intact is readable (CRCs checked by librdkafka), nothing else lost;
- the group's committed offset is the last commit whose record is intact;
- the broker logged at most one warning line for the torn partition (one per repair);
- a new record can be appended and read after the repair.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kbroker.protocol.records import iter_batches

from .common import (ProbeResult, Size, count_lines, create_topic, log_since, log_size, new_broker,
                     read_partitions, running_broker, stop_broker)

TOPIC, GROUP, RECORDS = "events", "torn-tails-group", 25000
COMMITS = list(range(10, 101, 10))


@dataclass
class Base:
    data_dir: Path
    offsets: dict[bytes, int]  # value -> offset, as acknowledged


def produce_acknowledged(bootstrap: str, count: int) -> dict[bytes, int]:
    from confluent_kafka import Producer

    offsets: dict[bytes, int] = {}
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "log_level": 0})

    def on_delivery(error, message):
        if error is None:
            offsets[message.value()] = message.offset()

    for i in range(count):
        producer.produce(TOPIC, value=b"event-%05d-" % i + b"x" * 80, partition=0, on_delivery=on_delivery)
        if i % 5000 == 0:
            producer.flush(30)
    producer.flush(30)
    return offsets


def commit_each(bootstrap: str, offsets: list[int]) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                         "log_level": 0})
    try:
        for offset in offsets:
            consumer.commit(offsets=[TopicPartition(TOPIC, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def committed_offset(bootstrap: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                         "log_level": 0})
    try:
        return consumer.committed([TopicPartition(TOPIC, 0)], timeout=30)[0].offset
    finally:
        consumer.close()


def build_base(workdir: Path) -> Base:
    with running_broker(workdir / "base") as broker:
        create_topic(broker.bootstrap, TOPIC, 1, **{"segment.bytes": str(1 << 20)})
        offsets = produce_acknowledged(broker.bootstrap, RECORDS)
        commit_each(broker.bootstrap, COMMITS)
        broker.kill()  # a torn tail is what a crash leaves: the recovery point stays behind the tail
    return Base(workdir / "base", offsets)


# --- the files to tear -------------------------------------------------------------------------------

def segments(partition_dir: Path, suffix: str) -> list[Path]:
    return sorted(partition_dir.glob(f"*{suffix}"))


def offsets_partition_dir(data_dir: Path) -> Path:
    dirs = [d for d in data_dir.glob("__consumer_offsets-*") if any(f.stat().st_size for f in d.glob("*.log"))]
    assert len(dirs) == 1, f"expected one __consumer_offsets partition with data, found {dirs}"
    return dirs[0]


def last_batch(segment: Path):
    return list(iter_batches(segment.read_bytes()))[-1]


def cut_inside_last_batch(segment: Path) -> int:
    """Truncates the segment in the middle of its last batch; returns the batch's base offset."""
    batch = last_batch(segment)
    os.truncate(segment, batch.position + batch.size // 2)
    return batch.base_offset


def garble_last_batch(segment: Path) -> int:
    batch = last_batch(segment)
    with open(segment, "r+b") as f:
        f.seek(batch.position + batch.size - 20)
        f.write(b"\xde\xad\xbe\xef" * 4)
    return batch.base_offset


def append_garbage(segment: Path) -> None:
    with open(segment, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\xc8\x00\x00\x01\x00torn write" + os.urandom(25))


def cut_index(index: Path) -> None:
    os.truncate(index, max(0, index.stat().st_size // 2 - 3))


def overwrite_index(index: Path) -> None:
    size = index.stat().st_size
    with open(index, "r+b") as f:
        f.seek(size // 3)
        f.write(b"\xff" * max(12, size // 3))


@dataclass
class Tear:
    name: str
    apply: Callable[[Path], int | None]  # tears a copy of the data dir; the first offset lost, or None
    partition: str  # the partition (or internal topic) whose loading repairs it
    commit_expected: int = COMMITS[-1]


def _events(data_dir: Path) -> Path:
    return data_dir / f"{TOPIC}-0"


TEARS = [
    Tear(".log cut inside its last batch", lambda d: cut_inside_last_batch(segments(_events(d), ".log")[-1]), f"{TOPIC}-0"),
    Tear(".log last batch garbled", lambda d: garble_last_batch(segments(_events(d), ".log")[-1]), f"{TOPIC}-0"),
    Tear(".log garbage appended", lambda d: append_garbage(segments(_events(d), ".log")[-1]), f"{TOPIC}-0"),
    Tear(".index cut", lambda d: cut_index(segments(_events(d), ".index")[-1]), f"{TOPIC}-0"),
    Tear(".index overwritten", lambda d: overwrite_index(segments(_events(d), ".index")[-1]), f"{TOPIC}-0"),
    Tear("older segment's .index overwritten", lambda d: overwrite_index(segments(_events(d), ".index")[0]), f"{TOPIC}-0"),
    Tear(".timeindex cut", lambda d: cut_index(segments(_events(d), ".timeindex")[-1]), f"{TOPIC}-0"),
    Tear(".timeindex overwritten", lambda d: overwrite_index(segments(_events(d), ".timeindex")[-1]), f"{TOPIC}-0"),
    Tear("__consumer_offsets .log cut inside its last batch",
         lambda d: (cut_inside_last_batch(segments(offsets_partition_dir(d), ".log")[-1]), None)[1],
         "__consumer_offsets", COMMITS[-2]),
    Tear("__consumer_offsets .log garbage appended",
         lambda d: append_garbage(segments(offsets_partition_dir(d), ".log")[-1]), "__consumer_offsets"),
    Tear("__consumer_offsets .index overwritten",
         lambda d: overwrite_index(segments(offsets_partition_dir(d), ".index")[-1]), "__consumer_offsets"),
]


def check_tear(base: Base, tear: Tear, workdir: Path) -> tuple[list[str], int]:
    """The problems found after this tear (none when the broker repaired it as it should), and the
    warning lines the broker logged for the torn partition."""
    case_dir = workdir / tear.name.replace(" ", "_").replace("'", "").lstrip(".")
    shutil.copytree(base.data_dir, case_dir / "data")
    first_lost = tear.apply(case_dir / "data")
    expected = {v for v, o in base.offsets.items() if first_lost is None or o < first_lost}
    broker = new_broker(case_dir / "data")
    problems, warnings = [], 0
    try:
        broker.start(timeout=60)
        present = [value for _, _, value in read_partitions(broker.bootstrap, TOPIC, 1)]
        # counted after the reads: a log is recovered when it is opened, at its first use or by the
        # background opening that follows the start (kbroker.log.manager)
        warnings = count_lines(log_since(broker, 0), rf"WARNING .*{tear.partition}")
        lost = len(expected - set(present))
        if lost:
            problems.append(f"{lost} intact acknowledged records not readable")
        if len(present) != len(set(present)):
            problems.append(f"{len(present) - len(set(present))} duplicated")
        committed = committed_offset(broker.bootstrap)
        if committed != tear.commit_expected:
            problems.append(f"committed offset {committed}, expected {tear.commit_expected}")
        if warnings > 1:
            problems.append(f"{warnings} warning lines for one repair")
        if first_lost is not None and warnings == 0:
            problems.append("data truncated without a warning")
        after = produce_acknowledged(broker.bootstrap, 1)
        if not after or set(after) - {v for _, _, v in read_partitions(broker.bootstrap, TOPIC, 1)}:
            problems.append("a record appended after the repair is not readable")
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        stop_broker(broker)
        tail = log_since(broker, 0)
        if "Traceback" in tail:
            problems.append("traceback in the broker log")
    return problems, warnings


def run(size: Size, workdir: Path) -> ProbeResult:
    base = build_base(workdir)
    tears = TEARS if size.name != "ci" else TEARS[::2]
    failed, warning_lines, silent = {}, 0, []
    for tear in tears:
        problems, warnings = check_tear(base, tear, workdir)
        warning_lines += warnings
        if not warnings:
            silent.append(tear.name)
        if problems:
            failed[tear.name] = problems
    defects = [f"torn tail ({name}): {'; '.join(p)}" for name, p in failed.items()]
    return ProbeResult("torn tails", f"{len(tears)} tears of .log/.index/.timeindex/__consumer_offsets",
                       not failed, f"{len(tears) - len(failed)} of {len(tears)} repaired: intact records readable, "
                       f"commits intact; {warning_lines} warning lines in all"
                       + (f" (none, and nothing lost, for: {', '.join(silent)})" if silent else "") + (f"; failed: {', '.join(failed)}" if failed else ""),
                       defects)
