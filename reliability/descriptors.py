"""Descriptor exhaustion: a broker under a small `ulimit -n` creating topics until it fails.

The broker starts with RLIMIT_NOFILE (256, 512) — kbroker raises its soft limit to the hard one, so
512 is the real ceiling. Over one wire connection CreateTopics requests of 10 partitions each are sent
until one fails (an error code, or a closed connection), and then once more in one request of 2,000
partitions. Held when:

- the failure is a clean one: an error code on an open connection, not a closed connection;
- the listener stays alive: a new client's ApiVersions is answered (accept() not stuck on EMFILE), and
  so is its Metadata request;
- a topic whose creation failed is not in Metadata (Kafka's creations are all or nothing);
- the broker restarts under the same limit and answers.
"""

from __future__ import annotations

import time
from pathlib import Path

from kbroker.protocol.errors import ErrorCode
from kbroker.protocol.messages import CreateTopicsRequest, MetadataRequest

from .common import ProbeResult, Size, is_answered, log_since, new_broker, open_descriptors, stop_broker

CT = CreateTopicsRequest
LIMIT = (256, 512)


def create_request(name: str, partitions: int) -> CreateTopicsRequest:
    return CT(topics=[CT.CreatableTopic(name=name, num_partitions=partitions, replication_factor=1, configs=[],
                                        assignments=[])], timeout_ms=60_000)


def create(bootstrap: str, name: str, partitions: int) -> str:
    """The error name CreateTopics answered, or 'connection closed'."""
    from tests.kafka_wire import WireClient

    try:
        with WireClient(bootstrap, timeout=60) as client:
            return ErrorCode(client.request(create_request(name, partitions), 7).topics[0].error_code).name
    except (OSError, ConnectionError):
        return "connection closed"


def reported_partitions(bootstrap: str) -> dict[str, int] | None:
    from tests.kafka_wire import WireClient

    try:
        with WireClient(bootstrap, timeout=20) as client:
            response = client.request(MetadataRequest(topics=None, allow_auto_topic_creation=False), 12)
        return {t.name: len(t.partitions) for t in response.topics}
    except (OSError, ConnectionError):
        return None


def exhaust(workdir: Path) -> dict:
    broker = new_broker(workdir / "data", open_files=LIMIT)
    figures: dict = {}
    try:
        broker.start()
        created, outcome = 0, "NONE"
        while outcome == "NONE" and created < 2000:
            outcome = create(broker.bootstrap, f"fd-{created // 10}", 10)
            created += 10 if outcome == "NONE" else 0
        failed_names = [f"fd-{created // 10}", "fd-big"]
        figures.update(created=created, first_failure=outcome, descriptors=open_descriptors(broker.pid))
        figures["big_request"] = create(broker.bootstrap, "fd-big", 2000)
        time.sleep(0.5)
        figures["listener_alive"] = is_answered(broker.bootstrap, timeout=5)
        reported = reported_partitions(broker.bootstrap)
        figures["metadata_answered"] = reported is not None
        reported = reported or {}
        # a creation that failed must leave no topic behind (Kafka's are all or nothing)
        figures["phantom"] = {name: reported[name] for name in failed_names if reported.get(name)}
        figures["reported_total"] = sum(n for name, n in reported.items() if name.startswith("fd-"))
        log_text = log_since(broker, 0)
        figures["emfile_lines"] = log_text.count("Too many open files")
        broker.stop()
        broker.start(timeout=60)
        figures["restart_answered"] = is_answered(broker.bootstrap, timeout=5)
    except RuntimeError as exc:  # the broker did not (re)start
        figures["restart_answered"] = False
        figures["restart_error"] = str(exc).splitlines()[-1][:200]
    finally:
        stop_broker(broker)
    return figures


def run(size: Size, workdir: Path) -> ProbeResult:
    f = exhaust(workdir)
    clean = f.get("first_failure") not in ("connection closed", None) and f.get("big_request") != "connection closed"
    held = (clean and f.get("listener_alive") and f.get("metadata_answered") and not f.get("phantom")
            and f.get("restart_answered"))
    defects = []
    if not clean:
        defects.append(f"descriptors: at ulimit -n {LIMIT[1]} CreateTopics failed with {f.get('first_failure')} after "
                       f"{f.get('created')} partitions, then 2,000 partitions: {f.get('big_request')} (Kafka: an error code)")
    if not f.get("listener_alive"):
        defects.append(f"descriptors: the listener is dead after exhaustion (a new client's ApiVersions not answered; "
                       f"{f.get('emfile_lines')} 'Too many open files' lines in the log)")
    if not f.get("metadata_answered"):
        defects.append("descriptors: after exhaustion a new client's Metadata request closes its connection "
                       "(an internal error in the broker's log)")
    if f.get("phantom"):
        defects.append(f"descriptors: topics whose CreateTopics failed are in Metadata, with these partition counts: "
                       f"{f['phantom']}")
    if not f.get("restart_answered"):
        defects.append(f"descriptors: no restart under the same limit {f.get('restart_error', '')}")
    figures = (f"ulimit -n {LIMIT}: {f.get('created')} partitions created, then {f.get('first_failure')}; 2,000 more in one "
               f"request: {f.get('big_request')}; {f.get('descriptors')} fds open; listener "
               f"{'alive' if f.get('listener_alive') else 'DEAD'}; Metadata "
               + (f"shows {f.get('reported_total')} partitions; " if f.get("metadata_answered") else "CLOSES the connection; ") +
               f"restart {'answered' if f.get('restart_answered') else 'FAILED'}")
    return ProbeResult("descriptor exhaustion", "10-partition topics until a failure", bool(held), figures, defects)
