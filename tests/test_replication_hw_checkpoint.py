"""A replica's high watermark survives its broker's restart (Kafka's replication-offset-checkpoint):
a restarted broker elected leader starts from what was committed, not from its log end, so it never
serves records the rest of its ISR may not have."""

from __future__ import annotations

from kbroker.partitions import hw_checkpoint
from kbroker.partitions.partition import Partition
from kbroker.protocol.records import Record, build_batch
from tests.log_kinds import new_log  # noqa: F401 (a fixture)
from tests.replication_story import Acks, create_topic, wait_until


def test_the_checkpoint_file_has_kafkas_format(tmp_path):
    hw_checkpoint.write(tmp_path, {("orders", 1): 42, ("orders", 0): 7, ("payments", 3): 0})
    assert (tmp_path / "replication-offset-checkpoint").read_text() == "0\n3\norders 0 7\norders 1 42\npayments 3 0\n"
    assert hw_checkpoint.read(tmp_path) == {("orders", 1): 42, ("orders", 0): 7, ("payments", 3): 0}


def test_an_unreadable_checkpoint_means_zero(tmp_path):
    (tmp_path / "replication-offset-checkpoint").write_text("0\n5\norders 0 7\n")
    assert hw_checkpoint.read(tmp_path) == {}
    assert hw_checkpoint.read(tmp_path / "missing") == {}


def test_a_restored_leader_starts_from_the_checkpoint_until_its_followers_fetch(new_log):
    log = new_log("orders-0")
    for i in range(10):
        log.append(build_batch([Record(None, b"v%d" % i)]))
    partition = Partition("orders", 0, log, 0, local_id=1)
    partition.restore_high_watermark(6)  # records 6-9 were not known to be committed
    partition.become_leader(1, replicas=(1, 2, 3), isr=(1, 2, 3))
    assert partition.high_watermark == 6
    partition.follower_fetch(2, 10)
    assert partition.high_watermark == 6  # broker 3 may not have them
    partition.follower_fetch(3, 8)
    assert partition.high_watermark == 8
    # alone in its ISR it is the whole truth: everything is committed
    alone = Partition("orders", 0, log, 0, local_id=1)
    alone.restore_high_watermark(6)
    alone.become_leader(1, replicas=(1, 2, 3), isr=(1,))
    assert alone.high_watermark == 10


def test_a_stopped_broker_leaves_its_replicas_high_watermarks(kbroker_cluster):
    cluster = kbroker_cluster(3)
    create_topic(cluster, "ledger", partitions=2, replication_factor=3)
    producer = Acks(cluster)
    producer.send("ledger", [b"entry-%d" % i for i in range(50)])
    assert producer.flush() == 0
    ends = producer.ends()
    replicas = {p: cluster.brokers[3].partitions.replica(cluster.brokers[3].metadata.get("ledger"), p)
                for p in range(2)}
    # a follower learns the leader's high watermark with its next fetch
    wait_until(lambda: all(replicas[p].high_watermark == ends.get(p, 0) for p in range(2)),
               what="broker 3 to know both high watermarks")
    cluster.stop_broker(3)
    written = hw_checkpoint.read(cluster.base_dir / "broker-3")
    assert {p: written[("ledger", p)] for p in range(2)} == {p: ends.get(p, 0) for p in range(2)}
