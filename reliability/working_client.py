"""A working client: what must keep working while a probe attacks the broker next to it.

A confluent-kafka idempotent acks=all producer writes unique values to its own topic from a thread;
a group consumer reads them from another. Every delivery error, consume error and client error
callback counts as an error. `lost()` reads the topic back and counts acknowledged values missing.
"""

from __future__ import annotations

import threading
import time

from .common import create_topic, read_partitions

TOPIC, GROUP, PARTITIONS = "work-ledger", "work-group", 3


class WorkingClient:
    def __init__(self, bootstrap: str, rate_per_second: int = 300):
        self.bootstrap, self.rate = bootstrap, rate_per_second
        self.acknowledged: list[bytes] = []
        self.consumed = 0
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._produce, daemon=True),
                        threading.Thread(target=self._consume, daemon=True)]

    def _error(self, error) -> None:
        self.errors.append(str(error))

    def start(self) -> "WorkingClient":
        create_topic(self.bootstrap, TOPIC, PARTITIONS)
        for thread in self.threads:
            thread.start()
        return self

    def _produce(self) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 5, "error_cb": self._error, "log_level": 0})

        def on_delivery(error, message):
            if error is None:
                self.acknowledged.append(message.value())
            else:
                self._error(error)

        sequence = 0
        while not self.stopping.is_set():
            for _ in range(max(1, self.rate // 20)):
                producer.produce(TOPIC, value=b"work-%d" % sequence, partition=sequence % PARTITIONS,
                                 on_delivery=on_delivery)
                sequence += 1
            producer.poll(0.05)
        if producer.flush(60):
            self._error("producer could not flush within 60 s")

    def _consume(self) -> None:
        from confluent_kafka import Consumer, KafkaError

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": GROUP, "auto.offset.reset": "earliest",
                             "error_cb": self._error, "log_level": 0, "session.timeout.ms": 30000})
        consumer.subscribe([TOPIC])
        while not self.stopping.is_set():
            for message in consumer.consume(500, timeout=0.2):
                if message.error() and message.error().code() != KafkaError._PARTITION_EOF:
                    self._error(message.error())
                else:
                    self.consumed += 1
        consumer.close()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(90)

    def lost(self) -> int:
        present = {value for _, _, value in read_partitions(self.bootstrap, TOPIC, PARTITIONS)}
        return len(set(self.acknowledged) - present)


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
