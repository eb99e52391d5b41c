"""A Kafka Streams 4.4 application with processing.guarantee=exactly_once_v2 (compat/streams: words
re-keyed through a repartition topic, a running count:sum per word in a RocksDB store with a changelog)
runs against a kbroker process and is killed with SIGKILL in the middle of its work, more than once,
then restarted on the same state directory. Read with read_committed, its output is exactly one
update per input record: per word the counts run 1, 2, ... N without a gap or a repeat, each update
adds one input value to the previous sum, and the final sums are the input's totals. What the killed
instances had written in their open transactions is in the log but aborted, so read_committed never
shows it. The application ran as one transactional producer per stream thread
(``<application.id>-<process id>-<thread>``, EOS v2) whose epoch moved at every commit
(transactions v2, KIP-890).

The zombie story: an instance paused (SIGSTOP) while another instance takes its tasks is fenced once
the coordinator aborts its timed-out transaction, rejoins, and the output is still exactly once.
``python -m tests.test_streams_eos`` runs both stories against Apache Kafka 4.4 (they pass there too)."""

from __future__ import annotations

import random
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

from kbroker.protocol.messages import DescribeTransactionsRequest, ListTransactionsRequest
from tests.kafka_wire import WireClient

STREAMS_APP = Path(__file__).resolve().parent.parent / "compat" / "streams" / "run"
PARTITIONS = 3
WORDS = [f"w{i}" for i in range(8)]
KILLS = 3
THREADS = 2
PROGRESS = 500  # committed updates an instance makes before it is killed


@pytest.fixture(scope="module")
def streams_app_built():
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.skip("no java or maven for compat/streams")
    subprocess.run([str(STREAMS_APP), "--build"], check=True, timeout=600)


class StreamsApp:
    """compat/streams as its own JVM; every start appends to one log."""

    def __init__(self, bootstrap: str, app_id: str, input_topic: str, output_topic: str, work: Path):
        work.mkdir(parents=True, exist_ok=True)
        self.args = [str(STREAMS_APP), "--bootstrap", bootstrap, "--app-id", app_id, "--input", input_topic,
                     "--output", output_topic, "--state-dir", str(work / "state"), "--threads", str(THREADS)]
        self.log_path = work / "streams.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def wait_until_running(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "state RUNNING" not in self.log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, self.log_tail()
            self.check_alive()
            time.sleep(0.05)

    def check_alive(self) -> None:
        assert self.process.poll() is None, f"streams app exited:\n{self.log_tail()}"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


class OutputReader:
    """A read_committed consumer of the whole output topic, kept up to date by poll()."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                                  "isolation.level": "read_committed"})
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        self.updates: dict[str, list[tuple[int, int]]] = defaultdict(list)  # word -> (count, sum) in log order
        self.count = 0

    def poll(self, seconds: float) -> None:
        for message in self.consumer.consume(10000, seconds):
            assert message.error() is None, message.error()
            count, total = message.value().decode().split(":")
            self.updates[message.key().decode()].append((int(count), int(total)))
            self.count += 1

    def wait_for(self, count: int, *apps: StreamsApp, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count:
            assert time.monotonic() < deadline, f"{self.count} of {count} updates\n" + "\n".join(
                app.log_tail() for app in apps)
            for app in apps:
                app.check_alive()
            self.poll(0.05)

    def close(self) -> None:
        self.consumer.close()


class SteadyInput:
    """A producer thread writing "word:n" records at a steady rate until stopped, under distinct keys
    (so a word's records are spread over the input partitions); remembers what it wrote."""

    def __init__(self, bootstrap: str, topic: str, per_second: int = 400):
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
        self.topic, self.per_second = topic, per_second
        self.inputs: dict[str, list[int]] = defaultdict(list)
        self.produced = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(16)
        while not self.stopping.wait(0.05):
            for _ in range(self.per_second // 20):
                word, n = rng.choice(WORDS), rng.randint(1, 100)
                self.inputs[word].append(n)
                self.producer.produce(self.topic, key=str(self.produced), value=f"{word}:{n}")
                self.produced += 1
            self.producer.poll(0)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> int:
        """How many records were produced, all of them acknowledged."""
        self.stopping.set()
        self.thread.join(10)
        assert self.producer.flush(30) == 0
        return self.produced


def end_offsets(bootstrap: str, topic: str, isolation: str) -> int:
    """The partitions' end offsets added up: the high watermarks, or for read_committed the last stable
    offsets (which stop at the first open transaction)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "isolation.level": isolation})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                   for p in range(PARTITIONS))
    finally:
        consumer.close()


def start_offsets(bootstrap: str, topic: str) -> int:
    """The partitions' log start offsets added up."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[0]
                   for p in range(PARTITIONS))
    finally:
        consumer.close()


def internal_topic_configs(admin: AdminClient, app_id: str) -> dict[str, dict[str, str]]:
    """The configs each internal topic was created with (not broker defaults)."""
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(app_id)]
    described = admin.describe_configs([ConfigResource("topic", t) for t in topics])
    return {resource.name: {name: entry.value for name, entry in future.result(10).items()
                            if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}
            for resource, future in described.items()}


def records_in_log(bootstrap: str, topic: str) -> int:
    """Every data record of the topic, committed or aborted (read_uncommitted)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                         "isolation.level": "read_uncommitted", "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records, at_end = 0, set()
    try:
        while len(at_end) < PARTITIONS:
            for message in consumer.consume(10000, 1):
                if message.error() is None:
                    records += 1
                else:
                    at_end.add(message.partition())
        return records
    finally:
        consumer.close()


def the_apps_transactions(bootstrap: str, app_id: str) -> list:
    with WireClient(bootstrap) as client:
        listed = client.request(ListTransactionsRequest(), 0).transaction_states
        ids = sorted(t.transactional_id for t in listed if t.transactional_id.startswith(app_id))
        return client.request(DescribeTransactionsRequest(transactional_ids=ids), 0).transaction_states


@dataclass
class Story:
    total: int  # input records
    inputs: dict[str, list[int]]  # word -> its values in the order produced
    updates: dict[str, list[tuple[int, int]]]  # word -> the (count, sum) updates read with read_committed
    left_open: list[int] = field(default_factory=list)  # per kill: records its open transaction had written
    records_in_log: int = 0  # output records, committed or not
    restored: int = 0  # records the restarted instances restored into their stores from the changelog
    internal_topics: dict[str, dict[str, str]] = field(default_factory=dict)  # -> configs set at creation
    purged: int = 0  # records deleted (DeleteRecords) from the repartition topic once consumed


def kill_and_restart_a_streams_app(bootstrap: str, work: Path, app_id: str = "word-totals-app") -> Story:
    """Input flows in at a steady rate while the app is killed KILLS times, each time after it has
    committed PROGRESS more updates, and started again; then the input stops and the app catches up."""
    input_topic, output_topic = f"sentences-of-{app_id}", f"word-totals-of-{app_id}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in (input_topic, output_topic)]).values():
        future.result(30)
    app = StreamsApp(bootstrap, app_id, input_topic, output_topic, work)
    output = OutputReader(bootstrap, output_topic)
    source = SteadyInput(bootstrap, input_topic)
    left_open = []
    try:
        source.start()
        app.start()
        for _ in range(KILLS):
            output.wait_for(output.count + PROGRESS, app)
            app.kill()
            left_open.append(end_offsets(bootstrap, output_topic, "read_uncommitted")
                             - end_offsets(bootstrap, output_topic, "read_committed"))
            app.start()
        output.wait_for(output.count + PROGRESS, app)
        total = source.stop()
        output.wait_for(total, app)
        output.poll(1)  # nothing more comes: one update per input record, never two
        app.stop()
    finally:
        source.stop()
        app.stop()
        output.close()
    return Story(total, source.inputs, output.updates, left_open, records_in_log(bootstrap, output_topic),
                 restored=sum(int(n) for n in re.findall(r"^restored (\d+) totals ", app.log_path.read_text(), re.M)),
                 internal_topics=internal_topic_configs(admin, app_id),
                 purged=start_offsets(bootstrap, f"{app_id}-by-word-repartition"))


def assert_exactly_once(story: Story) -> None:
    assert sum(map(len, story.updates.values())) == story.total
    for word in WORDS:
        inputs, updates = story.inputs[word], story.updates[word]
        assert [count for count, _ in updates] == list(range(1, len(inputs) + 1)), word  # no gap, no repeat
        added = Counter(b - a for (_, a), (_, b) in zip([(0, 0)] + updates, updates))
        assert added == Counter(inputs), word  # every update added one input value to the previous sum
        assert updates[-1][1] == sum(inputs)


def test_a_streams_app_killed_mid_run_outputs_every_update_exactly_once(kbroker_process, streams_app_built, tmp_path):
    broker = kbroker_process()
    story = kill_and_restart_a_streams_app(broker.bootstrap, tmp_path)
    assert_as_kafka(story, broker.bootstrap)


def assert_as_kafka(story: Story, bootstrap: str) -> None:
    """What the story shows against Apache Kafka 4.4 too (``python -m tests.test_streams_eos``)."""
    assert_exactly_once(story)
    assert sum(story.left_open) > 0, story.left_open  # a kill interrupted a transaction that had written output
    assert story.records_in_log > story.total  # ... which was aborted, so read_committed hid it
    assert story.restored > 0  # the stores came back from their changelog after a kill

    assert story.purged > 0  # Streams deleted consumed records from its repartition topic
    assert story.internal_topics == {
        "word-totals-app-by-word-repartition": {"cleanup.policy": "delete", "retention.ms": "-1",
                                                "segment.bytes": "52428800", "message.timestamp.type": "CreateTime"},
        "word-totals-app-totals-changelog": {"cleanup.policy": "compact", "message.timestamp.type": "CreateTime"}}

    # EOS v2: one transactional producer per stream thread, the same ones across restarts
    txns = the_apps_transactions(bootstrap, "word-totals-app")
    process_id = txns[0].transactional_id.removeprefix("word-totals-app-")[:36]
    assert [t.transactional_id for t in txns] == [f"word-totals-app-{process_id}-{n}" for n in range(1, THREADS + 1)]
    # TV2 bumps the epoch at every EndTxn; TV1 only at InitProducerId (at most twice a start)
    assert max(t.producer_epoch for t in txns) > 2 * (KILLS + 1), txns


def pause_an_instance_while_another_takes_over(bootstrap: str, work: Path, app_id: str = "zombie-app"
                                               ) -> tuple[Story, str]:
    """A zombie: instance A stops (SIGSTOP) in the middle of its work; instance B, on another state
    directory (another process id, so other transactional ids: B's InitProducerId cannot fence A),
    gets every task once A's members' sessions expire and runs once A's open transaction has timed
    out and been aborted by the coordinator (which bumps A's epoch). A, resumed, finds its producers
    fenced, rejoins and the two share the work. Returns the story and A's log."""
    input_topic, output_topic = f"sentences-of-{app_id}", f"word-totals-of-{app_id}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in (input_topic, output_topic)]).values():
        future.result(30)
    a = StreamsApp(bootstrap, app_id, input_topic, output_topic, work / "a")
    b = StreamsApp(bootstrap, app_id, input_topic, output_topic, work / "b")
    output = OutputReader(bootstrap, output_topic)
    source = SteadyInput(bootstrap, input_topic)
    try:
        source.start()
        a.start()
        output.wait_for(PROGRESS, a)
        a.pause()
        b.start()
        b.wait_until_running()
        a.resume()
        output.wait_for(output.count + PROGRESS, a, b)
        total = source.stop()
        output.wait_for(total, a, b)
        output.poll(1)
    finally:
        source.stop()
        a.resume()
        a.stop()
        b.stop()
        output.close()
    return Story(total, source.inputs, output.updates), a.log_path.read_text(errors="replace")


def test_a_paused_streams_instance_is_fenced_and_its_output_aborted(kbroker_process, streams_app_built, tmp_path):
    broker = kbroker_process()
    story, zombie_log = pause_an_instance_while_another_takes_over(broker.bootstrap, tmp_path)
    assert_zombie_fenced(story, zombie_log)


def assert_zombie_fenced(story: Story, zombie_log: str) -> None:
    assert_exactly_once(story)
    assert "Detected that the thread is being fenced" in zombie_log


if __name__ == "__main__":  # the same story against Apache Kafka 4.4 (compat/kafka's oracle)
    import tempfile

    from compat.kafka.oracle import start_kafka

    subprocess.run([str(STREAMS_APP), "--build"], check=True)
    with tempfile.TemporaryDirectory() as work:
        kafka = start_kafka(Path(work) / "kafka", {"group.initial.rebalance.delay.ms": 0})
        try:
            assert_as_kafka(kill_and_restart_a_streams_app(kafka.bootstrap, Path(work) / "killed"), kafka.bootstrap)
            print("Apache Kafka 4.4, killed and restarted: passed")
            assert_zombie_fenced(*pause_an_instance_while_another_takes_over(kafka.bootstrap, Path(work) / "paused"))
            print("Apache Kafka 4.4, paused while another took over: passed")
        finally:
            kafka.stop()
