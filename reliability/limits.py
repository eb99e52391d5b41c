"""Limits and backpressure: what one client can do to the broker's memory and to everyone else.

Each check starts the broker it needs, attacks it over raw sockets, and measures the broker's RSS
(/proc) and the round trip of another client's ApiVersions request on a new connection meanwhile:

- socket.request.max.bytes: a prefix one byte over the limit is closed at once; a frame under it is served.
- max.connections / max.connections.per.ip: Kafka closes new connections over the limit.
- connections.max.idle.ms: an idle connection is closed after about that long.
- 1,000 idle connections; slowloris (frames trickling a byte at a time); clients that pipeline Fetch
  requests and never read; a produce flood pipelined without reading answers: memory stays bounded and
  the other client is answered.
- ten connections each sending a 99 MB size prefix and 20 bytes: Kafka's goal is < 50 MB of growth.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kbroker.protocol.codec import encode_request
from kbroker.protocol.messages import ApiVersionsRequest, FetchRequest, ProduceRequest
from kbroker.protocol.records import Record, build_batch

from .common import (ProbeResult, Size, api_versions_round_trip, count_lines, create_topic, host_port, log_since,
                     rss_mb, running_broker)

MEMORY_GOAL_MB = 50
ROUND_TRIP_GOAL_S = 0.5


@dataclass
class Check:
    name: str
    inputs: str
    ok: bool
    figures: str
    defect: str = ""


def connect(bootstrap: str, timeout: float = 10) -> socket.socket:
    return socket.create_connection(host_port(bootstrap), timeout=timeout)


def answered(sock: socket.socket, timeout: float = 3) -> bool:
    """Sends ApiVersions on an open connection; True if an answer comes back."""
    sock.settimeout(timeout)
    try:
        sock.sendall(encode_request(1, 3, ApiVersionsRequest(client_software_name="p", client_software_version="1")))
        head = sock.recv(4)
        if len(head) < 4:
            return False
        size, got = struct.unpack(">i", head)[0], 0
        while got < size:
            chunk = sock.recv(size - got)
            if not chunk:
                return False
            got += len(chunk)
        return True
    except OSError:
        return False


def closed_by_broker(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the broker closes the connection, or None if it stays open for `timeout`."""
    started = time.monotonic()
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return time.monotonic() - started
    except ConnectionResetError:
        return time.monotonic() - started
    except socket.timeout:
        return None


def worst_round_trip(bootstrap: str, samples: int = 5) -> float:
    worst = 0.0
    for _ in range(samples):
        try:
            worst = max(worst, api_versions_round_trip(bootstrap, timeout=10))
        except OSError:
            return float("inf")
        time.sleep(0.05)
    return worst


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


# --- the checks --------------------------------------------------------------------------------------

def request_max_bytes(workdir: Path) -> Check:
    limit = 1 << 20
    with running_broker(workdir / "max-bytes", {"socket.request.max.bytes": limit}) as broker:
        create_topic(broker.bootstrap, "big", 1)
        over = connect(broker.bootstrap)
        over.sendall(struct.pack(">i", limit + 1) + b"\x00" * 20)
        closed_after = closed_by_broker(over, 5)
        over.close()
        batch = build_batch([Record(b"k", b"v" * (limit - 4096))])
        request = ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
            name="big", partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)])])
        under = connect(broker.bootstrap)
        under.sendall(encode_request(2, 9, request))
        under_answered = len(under.recv(4)) == 4
        under.close()
    ok = closed_after is not None and closed_after < 1 and under_answered
    figures = (f"prefix limit+1 closed in {closed_after * 1000:.0f} ms" if closed_after is not None else
               "prefix limit+1 NOT closed in 5 s") + f"; a {limit - 4096:,} B produce {'answered' if under_answered else 'NOT answered'}"
    return Check("socket.request.max.bytes", "limit 1 MiB", ok, figures,
                 "" if ok else f"socket.request.max.bytes: {figures}")


def connection_limit(workdir: Path, key: str, limit: int) -> Check:
    attempts = limit + 10
    with running_broker(workdir / key, {key: limit}) as broker:
        warned = count_lines(log_since(broker, 0), rf"WARNING .*{key}")
        sockets = [connect(broker.bootstrap) for _ in range(attempts)]
        served = sum(answered(s) for s in sockets)
        close_all(sockets)
        time.sleep(0.3)
        after = answered(connect(broker.bootstrap))
    ok = served <= limit and after
    figures = (f"{served} of {attempts} connections served at {key}={limit}; a new one after closing them "
               f"{'served' if after else 'NOT served'}" + ("; the config is warned about as not acted on" if warned else ""))
    defect = "" if ok else (f"{key}={limit} is not enforced: {served} of {attempts} simultaneous connections from "
                            f"127.0.0.1 got ApiVersions answers (Kafka closes the connections over the limit)")
    return Check(key, f"{attempts} connections, limit {limit}", ok, figures, defect)


def idle_close(workdir: Path) -> Check:
    idle_ms = 1000
    with running_broker(workdir / "idle", {"connections.max.idle.ms": idle_ms}) as broker:
        sock = connect(broker.bootstrap)
        answered(sock)
        closed_after = closed_by_broker(sock, 10)
        sock.close()
    ok = closed_after is not None and idle_ms / 1000 * 0.9 <= closed_after <= idle_ms / 1000 * 2 + 0.5
    figures = f"idle connection closed after {closed_after:.2f} s" if closed_after else "idle connection NOT closed in 10 s"
    return Check("connections.max.idle.ms", f"{idle_ms} ms", ok, figures, "" if ok else f"connections.max.idle.ms: {figures}")


def under_attack(broker, name: str, inputs: str, attack, *, memory_goal: float = MEMORY_GOAL_MB) -> Check:
    """Runs `attack(bootstrap) -> (sockets, stop)`, then measures RSS and another client's round trip."""
    before = rss_mb(broker.pid)
    sockets, stop = attack(broker.bootstrap)
    try:
        time.sleep(1)
        round_trip = worst_round_trip(broker.bootstrap)
        after = rss_mb(broker.pid)
    finally:
        stop.set()
        close_all(sockets)
    alive = broker.process.poll() is None
    growth = after - before
    ok = alive and growth < memory_goal and round_trip < ROUND_TRIP_GOAL_S
    figures = (f"RSS {before:.0f} → {after:.0f} MB (+{growth:.0f}); other client's round trip ≤ "
               f"{round_trip * 1000:.0f} ms" + ("" if alive else "; BROKER DIED"))
    defect = "" if ok else f"{name} ({inputs}): {figures} (goals: < {memory_goal} MB growth, < {ROUND_TRIP_GOAL_S * 1000:.0f} ms)"
    time.sleep(0.5)
    return Check(name, inputs, ok, figures, defect)


def idle_connections(count: int):
    def attack(bootstrap):
        sockets = [connect(bootstrap) for _ in range(count)]
        return sockets, threading.Event()
    return attack


def slowloris(count: int):
    def attack(bootstrap):
        sockets = [connect(bootstrap) for _ in range(count)]
        frame = encode_request(1, 3, ApiVersionsRequest(client_software_name="slow", client_software_version="1"))
        stop = threading.Event()

        def trickle():
            for byte in frame[:-1] * 1000:
                if stop.is_set():
                    return
                for sock in sockets:
                    try:
                        sock.send(bytes([byte]))
                    except OSError:
                        pass
                time.sleep(0.1)
        threading.Thread(target=trickle, daemon=True).start()
        return sockets, stop
    return attack


def fetch_request(topic: str) -> bytes:
    request = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=4 << 20, isolation_level=0,
                           topics=[FetchRequest.FetchTopic(topic=topic, partitions=[FetchRequest.FetchPartition(
                               partition=0, fetch_offset=0, partition_max_bytes=4 << 20)])])
    return encode_request(3, 11, request)


def non_readers(count: int, requests: int):
    def attack(bootstrap):
        sockets = [connect(bootstrap) for _ in range(count)]
        frame = fetch_request("bulk")
        for sock in sockets:
            sock.setblocking(False)
            for _ in range(requests):
                try:
                    sock.send(frame)
                except BlockingIOError:
                    break
        return sockets, threading.Event()
    return attack


def produce_flood(connections: int, megabytes: int):
    def attack(bootstrap):
        batch = build_batch([Record(None, b"f" * 1000) for _ in range(100)])
        request = ProduceRequest(acks=1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
            name="flood", partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)])])
        frame = encode_request(4, 9, request)
        sockets = [connect(bootstrap) for _ in range(connections)]
        stop = threading.Event()

        def flood(sock):  # pipelines without ever reading an answer
            for _ in range(megabytes * 1024 * 1024 // len(frame) // connections):
                if stop.is_set():
                    return
                try:
                    sock.sendall(frame)
                except OSError:
                    return
        for sock in sockets:
            threading.Thread(target=flood, args=(sock,), daemon=True).start()
        return sockets, stop
    return attack


def huge_prefixes(count: int, announced: int):
    def attack(bootstrap):
        sockets = [connect(bootstrap) for _ in range(count)]
        for sock in sockets:
            sock.sendall(struct.pack(">i", announced) + b"\x01" * 20)
        return sockets, threading.Event()
    return attack


def produce_bulk(bootstrap: str, topic: str, megabytes: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "log_level": 0})
    for _ in range(megabytes * 1024):
        producer.produce(topic, value=b"b" * 1024, partition=0)
        producer.poll(0)
    producer.flush(60)


def run(size: Size, workdir: Path) -> list[ProbeResult]:
    idle_count = 1000 if not size.quick else 300
    checks = [request_max_bytes(workdir), connection_limit(workdir, "max.connections", 50),
              connection_limit(workdir, "max.connections.per.ip", 20), idle_close(workdir)]
    with running_broker(workdir / "attacks") as broker:
        create_topic(broker.bootstrap, "bulk", 1)
        create_topic(broker.bootstrap, "flood", 1)
        produce_bulk(broker.bootstrap, "bulk", 8)
        checks += [
            under_attack(broker, "idle connections", f"{idle_count:,} connections", idle_connections(idle_count),
                         memory_goal=100),
            under_attack(broker, "slowloris", "100 connections, 1 byte / 100 ms", slowloris(100)),
            under_attack(broker, "non-reading clients", "20 connections pipelining 4 MB fetches", non_readers(20, 200)),
            under_attack(broker, "produce flood", "4 connections, 400 MB pipelined acks=1", produce_flood(4, 400)),
            under_attack(broker, "99 MB size prefixes", "10 connections, 99 MB prefix + 20 B",
                         huge_prefixes(10, 99 * 1024 * 1024)),
        ]
    return [ProbeResult(f"limits: {c.name}", c.inputs, c.ok, c.figures, [c.defect] if c.defect else []) for c in checks]
