"""`kbroker serve` as a user runs it: Kafka's config names from a file and overrides, clear errors for
bad configs, a data directory that keeps its cluster id, and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from kbroker.testing import BrokerProcess


def serve(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kbroker", "serve", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("override,message", [
    ("log.retension.hours=1", "did you mean 'log.retention.hours'"),
    ("num.partitions=many", "Invalid value many for configuration num.partitions"),
    ("listeners=SSL://127.0.0.1:0", "inter.broker.listener.name must be a listener name"),
])
def test_bad_configs_are_clear_errors_at_start(tmp_path, override, message):
    result = serve("--override", f"log.dirs={tmp_path}", "--override", override)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_kafka_server_properties_file_works_as_it_is(tmp_path):
    properties = tmp_path / "server.properties"
    properties.write_text(
        "# a Kafka 4 KRaft combined-mode file\n"
        "process.roles=broker,controller\nnode.id=1\n"
        "controller.quorum.voters=1@localhost:9093\n"
        "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0\n"
        "controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n"
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n"
        "num.network.threads=3\nnum.io.threads=8\n"
        f"log.dirs={tmp_path / 'data'}\nnum.partitions=2\n"
        "offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\n")
    process = subprocess.Popen([sys.executable, "-m", "kbroker", "serve", str(properties)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:
            if "serving on" in line:
                break
        else:
            pytest.fail("broker did not start")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    assert process.returncode == 0
    assert (tmp_path / "data" / "meta.properties").exists()


def test_sigterm_stops_cleanly_and_the_cluster_id_is_kept(tmp_path):
    broker = BrokerProcess(tmp_path / "data").start()
    first_id = (tmp_path / "data" / "meta.properties").read_text()
    broker.stop()
    assert broker.process.returncode == 0
    assert "kbroker stopped" in broker.log_path.read_text()
    broker.start()
    broker.stop()
    assert (tmp_path / "data" / "meta.properties").read_text() == first_id


def test_the_garbage_collector_is_on_again_when_main_returns(tmp_path):
    import gc

    from kbroker.cli import main

    assert main(["serve", "--override", f"log.dirs={tmp_path}", "--override", "num.partitions=many"]) == 2
    assert gc.isenabled()
