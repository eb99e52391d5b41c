"""Crash loop: kill -9 at random moments under three idempotent acks=all producers.

Three confluent-kafka producers (enable.idempotence, acks=all) write unique values to a topic of
several partitions from their own threads, across every crash: librdkafka reconnects and retries, so
the broker's producer state after a restart decides whether a retried batch is stored twice. Each
round waits a random time, notes what has been acknowledged so far, kills the broker with SIGKILL,
starts it again on the same port and data directory, and reads every partition from offset 0:

- lost: acknowledged before the kill but not present after the restart;
- duplicated: a value present more than once.

It runs once with log.flush.interval.messages=1 (fsync before acknowledging) and once with the
default policy (page cache only; a process crash keeps what was written).
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from kbroker.testing import BrokerProcess

from .common import ProbeResult, new_broker, Size, create_topic, duplicates, read_partitions, stop_broker

TOPIC = "ledger"
PARTITIONS = 6
PRODUCERS = 3
PADDING = b"." * 100


class AcknowledgingProducer:
    """One idempotent producer in its own thread; remembers every value the broker acknowledged."""

    def __init__(self, bootstrap: str, name: str, rate_per_second: int):
        self.bootstrap, self.name, self.rate = bootstrap, name, rate_per_second
        self.acknowledged: list[bytes] = []
        self.errors: list[str] = []
        self.fatal_restarts = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"producer-{name}", daemon=True)

    def _new_producer(self):
        from confluent_kafka import Producer

        return Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 2, "message.timeout.ms": 120000, "reconnect.backoff.ms": 20,
                         "reconnect.backoff.max.ms": 200, "retry.backoff.ms": 20, "log_level": 0})

    def _on_delivery(self, error, message) -> None:
        if error is None:
            self.acknowledged.append(message.value())
        else:
            self.errors.append(str(error))

    def _run(self) -> None:
        producer, sequence = self._new_producer(), 0
        while not self.stopping.is_set():
            for _ in range(max(1, self.rate // 100)):
                value = b"%s-%d-" % (self.name.encode(), sequence) + PADDING
                try:
                    producer.produce(TOPIC, value=value, partition=sequence % PARTITIONS, on_delivery=self._on_delivery)
                    sequence += 1
                except BufferError:
                    break
            producer.poll(0.01)
            if self._fatal(producer):
                producer.flush(10)
                producer, self.fatal_restarts = self._new_producer(), self.fatal_restarts + 1
        producer.flush(60)

    @staticmethod
    def _fatal(producer) -> bool:
        from confluent_kafka import KafkaException

        try:
            producer.poll(0)
        except KafkaException as exc:
            return exc.args[0].fatal()
        return False

    def snapshot(self) -> set[bytes]:
        return set(self.acknowledged)


def crash_round(broker: BrokerProcess, producers: list[AcknowledgingProducer], rng: random.Random,
                max_wait: float) -> tuple[int, int, int, float]:
    """(acknowledged before the kill, lost, duplicated, restart seconds) for one kill -9 and restart."""
    time.sleep(rng.uniform(0.2, max_wait))
    acknowledged = set().union(*(p.snapshot() for p in producers))
    broker.kill()
    started = time.monotonic()
    broker.start(timeout=60)
    restart_seconds = time.monotonic() - started
    values = [value for _, _, value in read_partitions(broker.bootstrap, TOPIC, PARTITIONS)]
    return len(acknowledged), len(acknowledged - set(values)), duplicates(values), restart_seconds


def crash_loop(workdir: Path, overrides: dict, rounds: int, rate: int, max_wait: float) -> dict:
    broker = new_broker(workdir / "data", overrides).start()
    producers: list[AcknowledgingProducer] = []
    figures = {"rounds": 0, "acknowledged": 0, "lost": 0, "duplicated": 0, "max_restart_s": 0.0, "errors": 0,
               "fatal": 0, "lost_rounds": [], "dup_rounds": [], "restarts_s": []}
    try:
        create_topic(broker.bootstrap, TOPIC, PARTITIONS)
        producers = [AcknowledgingProducer(broker.bootstrap, f"p{i}", rate) for i in range(PRODUCERS)]
        for producer in producers:
            producer.thread.start()
        rng = random.Random(14)
        for round_number in range(1, rounds + 1):
            acknowledged, lost, duplicated, restart = crash_round(broker, producers, rng, max_wait)
            figures.update(rounds=round_number, acknowledged=acknowledged,
                           max_restart_s=max(figures["max_restart_s"], restart))
            figures["restarts_s"].append(restart)
            figures["lost"] = max(figures["lost"], lost)
            figures["duplicated"] = max(figures["duplicated"], duplicated)
            if lost:
                figures["lost_rounds"].append(round_number)
            if duplicated:
                figures["dup_rounds"].append(round_number)
    finally:
        for producer in producers:
            producer.stopping.set()
        for producer in producers:
            producer.thread.join(90)
        figures["errors"] = sum(len(p.errors) for p in producers)
        figures["fatal"] = sum(p.fatal_restarts for p in producers)
        final = set().union(*(p.snapshot() for p in producers)) if producers else set()
        if broker.process.poll() is None and final:
            values = [value for _, _, value in read_partitions(broker.bootstrap, TOPIC, PARTITIONS)]
            figures["acknowledged"] = len(final)
            figures["lost"] = max(figures["lost"], len(final - set(values)))
            figures["duplicated"] = max(figures["duplicated"], duplicates(values))
        stop_broker(broker)
    return figures


POLICIES = {"flush every message": {"log.flush.interval.messages": 1}, "default flush policy": {}}


def run(size: Size, workdir: Path) -> list[ProbeResult]:
    rounds = 20 if not size.quick else (2 if size.name == "ci" else 4)
    rate = 1000 if not size.quick else 800
    results = []
    for policy, overrides in POLICIES.items():
        f = crash_loop(workdir / policy.replace(" ", "-"), overrides, rounds, rate, max_wait=1.5)
        ok = f["lost"] == 0 and f["duplicated"] == 0
        defects = []
        if not ok:
            defects.append(f"crash loop ({policy}): lost {f['lost']} in rounds {f['lost_rounds']}, duplicated "
                           f"{f['duplicated']} in rounds {f['dup_rounds']}")
        results.append(ProbeResult(
            f"crash loop, {policy}", f"{f['rounds']} kill -9 rounds, 3 idempotent producers, {PARTITIONS} partitions", ok,
            f"{f['acknowledged']:,} acknowledged, {f['lost']} lost, {f['duplicated']} duplicated; "
            f"restart {f['restarts_s'][0]:.2f} s first, {f['restarts_s'][-1]:.2f} s last, {f['max_restart_s']:.2f} s max; "
            f"{f['errors']} delivery errors, {f['fatal']} fatal producer errors",
            defects))
    return results
