"""`kbroker cluster --brokers 3`: one command gives a developer a 3-broker cluster on localhost,
replicated topics included, with nothing else to install or run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient


def _free_consecutive_ports(count: int) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count >= 65535:
            continue
        held = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                held.append(sock)
            for sock in held:
                sock.close()
            return base
        except OSError:
            for sock in held:
                sock.close()
    raise RuntimeError("no free consecutive ports")


def test_one_command_gives_a_three_broker_cluster_with_replicated_topics(tmp_path):
    base = _free_consecutive_ports(3)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "kbroker", "cluster", "--brokers", "3", "--port", str(base)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        bootstrap = ",".join(f"localhost:{base + i}" for i in range(3))
        admin = AdminClient({"bootstrap.servers": bootstrap})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if len(admin.list_topics(timeout=2).brokers) == 3:
                    break
            except Exception:
                time.sleep(0.2)
        assert sorted(admin.list_topics(timeout=5).brokers) == [1, 2, 3]
        producer = Producer({"bootstrap.servers": f"localhost:{base + 1}", "acks": "all"})
        for i in range(10):
            producer.produce("dev", b"hello-%d" % i)
        assert producer.flush(30) == 0
        partition = admin.list_topics("dev", timeout=5).topics["dev"].partitions[0]
        assert sorted(partition.replicas) == [1, 2, 3]  # replicated three times by default
        consumer = Consumer({"bootstrap.servers": f"localhost:{base + 2}", "group.id": "dev-reader"})
        consumer.assign([TopicPartition("dev", 0, 0)])
        seen = []
        while len(seen) < 10 and time.monotonic() < deadline + 30:
            msg = consumer.poll(1)
            if msg is not None and not msg.error():
                seen.append(msg.value())
        consumer.close()
        assert seen == [b"hello-%d" % i for i in range(10)]
        assert (tmp_path / "kbroker" / "cluster" / "broker-1").is_dir()
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "kbroker cluster stopped" in output
