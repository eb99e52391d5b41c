"""Disk full: the issue's reproduction on a real 40 MB ext4 filesystem (loop mount; needs root).

A 6 MB filler file is written to the filesystem, a broker keeps its log there (4 MB segments), and
acks=all Produce requests of 10 × 1 KB records go to a 2-partition topic over the wire until 25 in a row
fail (an error code or a closed connection). An offset commit and an InitProducerId are tried on the
full disk. Then the filler is deleted and 40 more requests are sent. Held when every acknowledged record
is readable with valid CRCs (librdkafka checks them) both before and after a restart, nothing is
duplicated, and the broker told the client KAFKA_STORAGE_ERROR (not a closed connection).

The filesystem is unmounted and its image deleted in a finally, whatever happens.
"""

from __future__ import annotations

import collections
import contextlib
import subprocess
import time
from pathlib import Path
from typing import Iterator

from kbroker.protocol.errors import ErrorCode
from kbroker.protocol.messages import (CreateTopicsRequest, FindCoordinatorRequest, InitProducerIdRequest,
                                      OffsetCommitRequest, ProduceRequest)
from kbroker.protocol.records import Record, build_batch

from .common import ProbeResult, Size, create_topic, duplicates, new_broker, read_partitions, stop_broker

TOPIC, PARTITIONS = "filling", 2


@contextlib.contextmanager
def small_filesystem(workdir: Path, megabytes: int = 40) -> Iterator[Path]:
    image, mount_point = workdir / "disk.img", workdir / "mnt"
    mount_point.mkdir()
    subprocess.run(["truncate", "-s", f"{megabytes}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
        if subprocess.run(["mountpoint", "-q", str(mount_point)]).returncode == 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)
        image.unlink(missing_ok=True)


class WireProducer:
    """acks=all Produce requests over one wire connection at a time; a closed connection is reopened."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.client = None
        self.acknowledged: list[bytes] = []
        self.outcomes: collections.Counter = collections.Counter()
        self.sequence = 0

    def _connected(self):
        from tests.kafka_wire import WireClient

        if self.client is None:
            self.client = WireClient(self.bootstrap, timeout=30)
        return self.client

    def send(self, partition: int) -> bool:
        values = [b"df-%08d-" % (self.sequence + i) + b"r" * 1000 for i in range(10)]
        self.sequence += 10
        request = ProduceRequest(acks=-1, timeout_ms=10000, topic_data=[ProduceRequest.TopicProduceData(
            name=TOPIC, partition_data=[ProduceRequest.PartitionProduceData(
                index=partition, records=build_batch([Record(None, v) for v in values]))])])
        try:
            answer = self._connected().request(request, 9).responses[0].partition_responses[0]
        except (OSError, ConnectionError):
            self.outcomes["connection closed"] += 1
            self.close()
            return False
        self.outcomes[ErrorCode(answer.error_code).name] += 1
        if answer.error_code == ErrorCode.NONE:
            self.acknowledged += values
            return True
        return False

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def other_requests(bootstrap: str, new_topic: str) -> dict[str, str]:
    """InitProducerId, FindCoordinator, an offset commit and a CreateTopics: their error codes, or a
    closed connection."""
    from tests.kafka_wire import WireClient

    results = {}
    requests = {
        "CreateTopics": (CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
            name=new_topic, num_partitions=1, replication_factor=1, configs=[], assignments=[])], timeout_ms=30000), 7,
                         lambda r: r.topics[0].error_code),
        "FindCoordinator": (FindCoordinatorRequest(key_type=0, coordinator_keys=["df-group"]), 4,
                            lambda r: r.coordinators[0].error_code),
        "InitProducerId": (InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4,
                           lambda r: r.error_code),
        "OffsetCommit": (OffsetCommitRequest(group_id="df-group", generation_id_or_member_epoch=-1, member_id="",
                                             topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name=TOPIC, partitions=[
                                                 OffsetCommitRequest.OffsetCommitRequestPartition(
                                                     partition_index=0, committed_offset=5)])]), 8,
                         lambda r: r.topics[0].partitions[0].error_code),
    }
    for name, (request, version, error_of) in requests.items():
        try:
            with WireClient(bootstrap, timeout=30) as client:
                results[name] = ErrorCode(error_of(client.request(request, version))).name
        except (OSError, ConnectionError) as exc:
            results[name] = f"connection closed ({type(exc).__name__})"
    return results


def verify(bootstrap: str, acknowledged: list[bytes]) -> tuple[int, int, str]:
    """(lost, duplicated, read error) of the acknowledged values."""
    errors: list[str] = []
    try:
        values = [v for _, _, v in read_partitions(bootstrap, TOPIC, PARTITIONS, timeout=60, errors=errors)]
    except Exception as exc:
        return len(acknowledged), 0, f"{type(exc).__name__}: {exc}"[:200]
    return len(set(acknowledged) - set(values)), duplicates(values), "; ".join(errors)[:300]


def fill_and_free(workdir: Path) -> dict:
    with small_filesystem(workdir) as mount_point:
        filler = mount_point / "filler"
        filler.write_bytes(b"\x00" * (6 << 20))
        broker = new_broker(mount_point / "kb", {"log.segment.bytes": 4194304}, log_path=workdir / "broker.log")
        try:
            broker.start()
            create_topic(broker.bootstrap, TOPIC, PARTITIONS)
            producer, failures_in_a_row, sent = WireProducer(broker.bootstrap), 0, 0
            while failures_in_a_row < 25 and sent < 10_000:
                failures_in_a_row = 0 if producer.send(sent % PARTITIONS) else failures_in_a_row + 1
                sent += 1
            full_outcomes = dict(producer.outcomes)
            others = other_requests(broker.bootstrap, "df-created-on-a-full-disk")
            filler.unlink()
            time.sleep(1)
            producer.outcomes.clear()
            for i in range(40):
                producer.send(i % PARTITIONS)
            freed_outcomes = dict(producer.outcomes)
            others_freed = other_requests(broker.bootstrap, "df-created-after-space-is-freed")
            producer.close()
            lost, duplicated, read_error = verify(broker.bootstrap, producer.acknowledged)
            broker.stop()
            broker.start(timeout=60)
            lost_after_restart, dup_after_restart, read_error_after_restart = verify(broker.bootstrap, producer.acknowledged)
            log_text = broker.log_path.read_text(errors="replace")
        finally:
            stop_broker(broker)
    return {"acknowledged": len(producer.acknowledged), "full": full_outcomes, "others": others,
            "others_freed": others_freed,
            "freed": freed_outcomes, "lost": lost, "duplicated": duplicated, "read_error": read_error,
            "lost_restart": lost_after_restart, "dup_restart": dup_after_restart,
            "read_error_restart": read_error_after_restart, "internal_errors": log_text.count("after an internal error"),
            "truncated": log_text.count("truncated")}


def requests_summary(results: dict[str, str]) -> str:
    return ", ".join(f"{name} {outcome}" for name, outcome in results.items())


def outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} ×{n}" for name, n in sorted(counts.items(), key=lambda item: -item[1]))


def run(size: Size, workdir: Path) -> ProbeResult:
    f = fill_and_free(workdir)
    storage_error_told = "KAFKA_STORAGE_ERROR" in f["full"]
    closed = f["full"].get("connection closed", 0)
    freed_ok = f["freed"].get("NONE", 0)
    defects = []
    if f["lost"] or f["read_error"] or f["duplicated"]:
        defects.append(f"disk full: before a restart {f['lost']} of {f['acknowledged']} acknowledged records not readable, "
                       f"{f['duplicated']} duplicated {f['read_error']}")
    if f["lost_restart"] or f["read_error_restart"] or f["dup_restart"]:
        defects.append(f"disk full: after a restart {f['lost_restart']} of {f['acknowledged']} acknowledged records lost, "
                       f"{f['dup_restart']} duplicated {f['read_error_restart']}")
    if not storage_error_told or closed:
        defects.append(f"disk full: Produce on the full disk was answered {outcomes(f['full'])} (Kafka: "
                       f"KAFKA_STORAGE_ERROR, connection kept)")
    if any("closed" in v for v in f["others"].values()):
        defects.append(f"disk full: other requests on the full disk: {f['others']}")
    if any(v != "NONE" for v in f["others_freed"].values()):
        defects.append(f"disk full: after freeing space, without a restart: {f['others_freed']}")
    figures = (f"{f['acknowledged']:,} acknowledged; Produce on the full disk: {outcomes(f['full'])}; "
               f"other requests: {requests_summary(f['others'])}; after freeing space 40 Produce: {outcomes(f['freed'])}, "
               f"other requests: {requests_summary(f['others_freed'])}; acknowledged not readable: {f['lost']}, "
               f"after a restart: {f['lost_restart']}; {f['internal_errors']} internal errors in the broker log")
    return ProbeResult("disk full (40 MB ext4)", "produce until 25 failures, free 6 MB, 40 more, restart",
                       not defects, figures, defects)
