"""Reliability probes for kbroker: repeatable experiments against real `kbroker serve` processes.

Theory of operation: each probe module exposes `run(size, workdir) -> ProbeResult`, where `size` is
`QUICK` or `FULL` (the probe's own knob values for each). A probe starts its own brokers with
`kbroker.testing.BrokerProcess` in `workdir`, drives them with real clients (confluent-kafka,
kafka-python, `tests/kafka_wire.py` for exact frames), stops every process it started, and reports one
row: what it ran, whether the broker held, and the figures. `python -m reliability` (the
`scripts/reliability` command) runs the probes and prints the table; `tests/test_reliability_short.py`
runs small sizes of some of them in CI.
"""
