"""A broker started under the common soft limit of 1,024 open files (here 256, to keep the test
small) raises it to the hard limit, as the JVM does for Kafka, and holds far more partitions than the
soft limit would allow (issue 14, defect 4: at 1,024 the broker wedged at 300 partitions)."""

from __future__ import annotations

import resource

from confluent_kafka.admin import AdminClient, NewTopic

from kbroker.testing import BrokerProcess


def _soft_open_files_limit(pid: int) -> int:
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open files line in /proc/PID/limits")


def test_the_open_files_limit_is_raised_to_the_hard_limit(tmp_path):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 2048, f"the machine's hard limit ({hard}) is too small for this story"
    broker = BrokerProcess(tmp_path / "data", open_files=(256, hard)).start()
    try:
        assert _soft_open_files_limit(broker.process.pid) == hard
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        topics = [NewTopic(f"orders-{i}", 50, 1) for i in range(4)]  # 200 partitions, ~3 files each
        for future in admin.create_topics(topics).values():
            future.result(timeout=60)
        metadata = admin.list_topics(timeout=10)
        assert sum(len(metadata.topics[t.topic].partitions) for t in topics) == 200
    finally:
        broker.stop()
    assert "open files limit raised from 256" in broker.log_path.read_text()
