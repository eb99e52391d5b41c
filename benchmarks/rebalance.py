"""Rebalance time for 4 consumers joining one new group, classic protocol vs KIP-848 consumer
protocol, kbroker vs Apache Kafka 4.4, in one run.

    python -m benchmarks.rebalance [--runs 3] [--heartbeat-ms 500]

Brokers: kbroker as users start it (`kbroker serve`, kbroker.testing.BrokerProcess) and Apache Kafka
4.4 (compat/kafka oracle, KRaft, one node), one after the other, each with the same settings:
group.initial.rebalance.delay.ms=0 (a classic group rebalances as soon as its members joined, as the
compat suite runs both), and group.consumer.heartbeat.interval.ms (and its minimum) set to
--heartbeat-ms, the interval the classic members are given too. Clients: librdkafka
(confluent-kafka), `group.protocol=classic` (range assignor, its default) or `consumer` (the
broker's uniform assignor). A run: a new group on an 8-partition topic; the 4 consumers are
created at t0; it ends when each holds 2 partitions and no partition is held twice. Reported: the
median of the runs per cell, min and max, and the ratios kbroker/Kafka per protocol and
consumer/classic per broker.

What dominates: for classic, the JoinGroup round (every member waits for the last to join) and the
SyncGroup; for the consumer protocol, heartbeats: a member learns of a new target assignment at its
next heartbeat, revokes, and the partition's next owner gets it at its own next heartbeat after
that, so a few heartbeat intervals pass.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Consumer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CONSUMERS, PARTITIONS, TOPIC = 4, 8, "rebalance"


class Member:
    def __init__(self, bootstrap: str, group: str, protocol: str, heartbeat_ms: int):
        config = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": protocol,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False}
        if protocol == "classic":  # the consumer protocol takes both from the broker
            config.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": heartbeat_ms})
        self.assignment: set[int] = set()
        self.consumer = Consumer(config)
        self.consumer.subscribe([TOPIC], on_assign=self._assign, on_revoke=self._revoke)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _assign(self, consumer, partitions):
        self.assignment = self.assignment | {p.partition for p in partitions}

    def _revoke(self, consumer, partitions):
        self.assignment = self.assignment - {p.partition for p in partitions}

    def _run(self):
        while not self.stop.is_set():
            self.consumer.poll(0.01)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.consumer.close()


def balanced(members: list[Member]) -> bool:
    owned = [p for m in members for p in m.assignment]
    return sorted(owned) == list(range(PARTITIONS)) and all(len(m.assignment) == PARTITIONS // CONSUMERS
                                                            for m in members)


def measure(bootstrap: str, protocol: str, runs: int, heartbeat_ms: int) -> list[float]:
    times = []
    for run in range(runs):
        group = f"bench-{protocol}-{run}-{time.time_ns()}"
        t0 = time.monotonic()
        members = [Member(bootstrap, group, protocol, heartbeat_ms) for _ in range(CONSUMERS)]
        try:
            deadline = t0 + 120
            while not balanced(members):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{protocol} group never balanced: {[m.assignment for m in members]}")
                time.sleep(0.002)
            times.append(time.monotonic() - t0)
        finally:
            for m in members:
                m.close()
    return times


def create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
        future.result()
    time.sleep(1)  # Kafka answers CreateTopics before every listener has the topic


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--heartbeat-ms", type=int, default=500)
    args = parser.parse_args()
    from compat.kafka.oracle import start_kafka
    from kbroker.testing import BrokerProcess

    settings = {"group.initial.rebalance.delay.ms": "0",
                "group.consumer.heartbeat.interval.ms": str(args.heartbeat_ms),
                "group.consumer.min.heartbeat.interval.ms": str(min(args.heartbeat_ms, 5000))}
    results: dict[tuple[str, str], list[float]] = {}
    kbroker = BrokerProcess(Path(tempfile.mkdtemp()) / "data", {**settings, "offsets.topic.num.partitions": "50"})
    kbroker.start()
    try:
        create_topic(kbroker.bootstrap)
        for protocol in ("classic", "consumer"):
            results[("kbroker", protocol)] = measure(kbroker.bootstrap, protocol, args.runs, args.heartbeat_ms)
    finally:
        kbroker.stop()
    with start_kafka(overrides=settings) as kafka:
        create_topic(kafka.bootstrap)
        for protocol in ("classic", "consumer"):
            results[("Kafka 4.4", protocol)] = measure(kafka.bootstrap, protocol, args.runs, args.heartbeat_ms)

    print(f"{CONSUMERS} consumers join a new group, {PARTITIONS} partitions -> each holds "
          f"{PARTITIONS // CONSUMERS} (librdkafka, heartbeat {args.heartbeat_ms} ms, {args.runs} runs)")
    print(f"{'broker':<10} {'protocol':<9} {'median s':>9} {'min s':>7} {'max s':>7}")
    for (broker, protocol), t in results.items():
        print(f"{broker:<10} {protocol:<9} {statistics.median(t):9.3f} {min(t):7.3f} {max(t):7.3f}")
    median = {key: statistics.median(t) for key, t in results.items()}
    for protocol in ("classic", "consumer"):
        print(f"ratio kbroker/Kafka, {protocol}: {median[('kbroker', protocol)] / median[('Kafka 4.4', protocol)]:.2f}")
    for broker in ("kbroker", "Kafka 4.4"):
        print(f"ratio consumer/classic, {broker}: {median[(broker, 'consumer')] / median[(broker, 'classic')]:.2f}")


if __name__ == "__main__":
    main()
