"""A 3-broker cell, side by side: kbroker (three `kbroker serve` processes on ZooKeeper) and Apache
Kafka 4.4 (a 3-node KRaft cluster, each node broker and controller) on this machine, one after the
other in one run, with the same librdkafka (confluent-kafka) load:

- produce MB/s: acks=all, idempotent, 1 KB records, to a topic of 3 partitions, replication factor
  3, min.insync.replicas=2;
- produce latency: a paced acks=all producer (linger.ms=0), p50/p99 from send to delivery report,
  after a first second that is not counted (the new producer's id and metadata: ~0.6 s of stall);
- transactions/s: a transactional producer commits transactions of 100 records (1 KB, over the 3
  partitions, so the markers go to three leaders) one after the other, for ``--txn-seconds``;
- failover: a producer sends to partition 0 every 5 ms; the leader of partition 0 is killed with
  -9; the time from the kill to the first delivery of a record sent after it. Both sides detect the
  dead broker by a 9 s session (KRaft's broker.session.timeout.ms default; kbroker's
  zookeeper.session.timeout.ms set to the same), so this compares the election and the clients'
  recovery, not two different timeouts.

    python benchmarks/replicated.py                 # both, the default sizes
    python benchmarks/replicated.py --records 50000 --only kbroker

Not a test: the table goes into issue notes and benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from kbroker.testing import ProcessCluster  # noqa: E402
from kbroker.testing_zookeeper import ZooKeeperServer  # noqa: E402

TOPIC = "cell"
SESSION_MS = 9000
WARM_UP_S = 1.0


def create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, 3, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partitions = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
        if partitions and all(p.leader >= 0 and len(p.isrs) == 3 for p in partitions.values()):
            return
        time.sleep(0.2)
    raise RuntimeError("the topic did not get leaders and full ISRs")


def leader_of_partition_0(bootstrap: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0].leader


def throughput(bootstrap: str, records: int, size: int) -> float:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 2_000_000})
    payload = os.urandom(size)
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(TOPIC, payload, partition=i % 3)
                break
            except BufferError:
                producer.poll(0.001)
    if producer.flush(300):
        raise RuntimeError("records left unsent")
    return records * size / (time.perf_counter() - started) / 1e6


def latency(bootstrap: str, rate: int, seconds: float, size: int) -> tuple[float, float]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 0})
    payload = os.urandom(size)
    samples: list[float] = []

    warm_until = time.perf_counter() + WARM_UP_S  # the new producer's start (its id, metadata) is not counted

    def delivered(err, msg, sent):
        if err is None and sent >= warm_until:
            samples.append(time.perf_counter() - sent)

    interval = 1 / rate
    seconds += WARM_UP_S
    started = time.perf_counter()
    n = 0
    while time.perf_counter() - started < seconds:
        now = time.perf_counter()
        producer.produce(TOPIC, payload, partition=n % 3, on_delivery=lambda e, m, s=now: delivered(e, m, s))
        n += 1
        producer.poll(0)
        delay = started + n * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    producer.flush(60)
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99)] * 1000


def transactions(bootstrap: str, seconds: float, size: int, per_transaction: int = 100) -> float:
    """Committed transactions per second, one after the other (each: 100 records, commit)."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "linger.ms": 5})
    producer.init_transactions(60)
    payload = os.urandom(size)
    committed = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        producer.begin_transaction()
        for i in range(per_transaction):
            producer.produce(TOPIC, payload, partition=i % 3)
        producer.commit_transaction(60)
        committed += 1
    return committed / (time.perf_counter() - started)


def failover(bootstrap: str, kill) -> float:
    """Seconds from kill -9 of partition 0's leader to the first delivery of a record sent after it."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 0, "message.timeout.ms": 120000, "log_level": 0})
    killed_at: list[float] = []
    recovered: list[float] = []
    stop = threading.Event()

    def delivered(err, msg, sent):
        if err is None and killed_at and sent > killed_at[0] and not recovered:
            recovered.append(time.monotonic())

    def send():
        while not stop.is_set():
            producer.produce(TOPIC, b"x" * 1024, partition=0,
                             on_delivery=lambda e, m, s=time.monotonic(): delivered(e, m, s))
            producer.poll(0.005)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(2)
    leader = leader_of_partition_0(bootstrap)
    killed_at.append(time.monotonic())
    kill(leader)
    deadline = time.monotonic() + 120
    while not recovered and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    sender.join(10)
    producer.flush(30)
    return (recovered[0] - killed_at[0]) if recovered else float("nan")


def measure(name: str, bootstrap: str, kill, args) -> dict[str, float]:
    create_topic(bootstrap)
    throughput(bootstrap, min(args.records, 20_000), args.size)  # warm up
    mbs = throughput(bootstrap, args.records, args.size)
    p50, p99 = latency(bootstrap, args.rate, args.latency_seconds, args.size)
    txns = transactions(bootstrap, args.txn_seconds, args.size)
    seconds = failover(bootstrap, kill)
    result = {"produce MB/s": mbs, "p50 produce latency ms": p50, "p99 produce latency ms": p99,
              "transactions/s (100 records)": txns, "failover s": seconds}
    print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)
    return result


def run_kbroker(args) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-replicated-"))
    with ZooKeeperServer(work / "zookeeper") as zookeeper:
        cluster = ProcessCluster(work / "cluster", f"{zookeeper.connect}/bench-{uuid.uuid4().hex[:6]}", 3,
                                 {"zookeeper.session.timeout.ms": SESSION_MS})
        cluster.start()
        try:
            time.sleep(2)
            return measure("kbroker", cluster.bootstrap, cluster.stop_broker, args)
        finally:
            cluster.stop()


def run_kafka(args) -> dict[str, float]:
    from compat.kafka.oracle import start_kafka_cluster

    cluster = start_kafka_cluster(3, {"broker.session.timeout.ms": SESSION_MS})
    try:
        def kill(node_id: int) -> None:
            cluster.nodes[node_id].proc.send_signal(signal.SIGKILL)
        return measure("kafka", cluster.bootstrap, kill, args)
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rate", type=int, default=500, help="records/s of the latency producer")
    parser.add_argument("--latency-seconds", type=float, default=10)
    parser.add_argument("--txn-seconds", type=float, default=10, help="how long transactions are committed")
    parser.add_argument("--only", choices=["kbroker", "kafka"])
    args = parser.parse_args()
    results = {}
    if args.only != "kafka":
        results["kbroker"] = run_kbroker(args)
    if args.only != "kbroker":
        results["kafka"] = run_kafka(args)
    print(f"\n3 brokers, RF 3, min.insync.replicas 2, acks=all, {args.size} B records, librdkafka "
          f"{__import__('confluent_kafka').libversion()[0]}")
    print(f"| metric | {' | '.join(results)} |" + (" kbroker/kafka |" if len(results) == 2 else ""))
    print("|---|" + "---|" * len(results) + ("---|" if len(results) == 2 else ""))
    for metric in next(iter(results.values())):
        values = [results[name][metric] for name in results]
        ratio = f" {values[0] / values[1]:.2f} |" if len(values) == 2 and values[1] else ""
        print(f"| {metric} | " + " | ".join(f"{v:.2f}" for v in values) + " |" + ratio)


if __name__ == "__main__":
    main()
