"""Time from a second consumer joining a group to both members having an assignment, on kbroker
and on Apache Kafka (compat/kafka oracle), with the same librdkafka client and settings.

    python -m benchmarks.group_rebalance [--runs N]

Both brokers run with group.initial.rebalance.delay.ms=0 and a 6-partition topic. Member A joins and
owns everything; then member B is created (t0) and we wait until A and B own disjoint halves (t1).
What dominates is how soon A hears of the rebalance (its next heartbeat: heartbeat.interval.ms),
then a JoinGroup/SyncGroup round for both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

SETTINGS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
            "enable.auto.commit": False}


class Member:
    def __init__(self, bootstrap, group, topic):
        self.assignment = set()
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **SETTINGS})
        self.c.subscribe([topic], on_assign=self._assign, on_revoke=lambda c, ps: setattr(self, "assignment", set()))
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _assign(self, c, ps):
        self.assignment = {p.partition for p in ps}

    def _run(self):
        while not self.stop.is_set():
            self.c.poll(0.01)

    def close(self):
        self.stop.set()
        self.t.join()
        self.c.close()


def wait(pred, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.002)
    raise TimeoutError


def measure(bootstrap: str, runs: int) -> list[float]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic("rebalance", 6, 1)]).values():
        try:
            f.result()
        except Exception as exc:  # already exists
            print(exc, file=sys.stderr)
    times = []
    for run in range(runs):
        group = f"bench-{run}-{time.time_ns()}"
        a = Member(bootstrap, group, "rebalance")
        wait(lambda: a.assignment == set(range(6)))
        time.sleep(1)
        t0 = time.monotonic()
        b = Member(bootstrap, group, "rebalance")
        wait(lambda: a.assignment and b.assignment and not (a.assignment & b.assignment)
             and a.assignment | b.assignment == set(range(6)))
        times.append(time.monotonic() - t0)
        b.close()
        a.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from kbroker.testing import InProcessBroker
    from compat.kafka.oracle import start_kafka

    rows = []
    with InProcessBroker(tempfile.mkdtemp()) as kb:
        rows.append(("kbroker", measure(kb.bootstrap, args.runs)))
    with start_kafka() as kafka:
        rows.append(("Apache Kafka 4.4", measure(kafka.bootstrap, args.runs)))
    print(f"second member joins -> both assigned (librdkafka, heartbeat.interval.ms="
          f"{SETTINGS['heartbeat.interval.ms']}, {args.runs} runs)")
    print(f"{'broker':<18} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, t in rows:
        print(f"{name:<18} {statistics.median(t):9.3f} {min(t):7.3f} {max(t):7.3f}")
    print(f"ratio kbroker/Kafka (median): {statistics.median(rows[0][1]) / statistics.median(rows[1][1]):.2f}")


if __name__ == "__main__":
    main()
