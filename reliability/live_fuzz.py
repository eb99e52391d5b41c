"""Live fuzzer: mutated real frames on extra connections next to a working client.

Seeds are real client requests captured through a recording proxy (three in four frames) and every
request type's own encoding at every version (`capture.py`). A fresh broker serves a working client (`working_client.py`: an idempotent
producer and a group consumer on their own topic) while fuzz threads each open a connection, send 1
(most often) to 6 mutated frames (`mutate.py`, CreateTopics and CreatePartitions included), half-close it, read what
comes back for at most half a second and reset it. Nothing is excluded.

Held when: the broker process never dies, the working client sees 0 errors and 0 acknowledged
records are lost. Also reported: how many frames were answered, handler exceptions in the broker's
log ("after an internal error", a handler bug each: Kafka answers an error code), and how many
topics and partitions the mutations created.
"""

from __future__ import annotations

import collections
import random
import re
import socket
import struct
import threading
import time
from pathlib import Path

from .capture import every_request_type, real_client_frames
from .common import ProbeResult, Size, host_port, log_since, new_broker, rss_mb, stop_broker
from .mutate import framed, mutate
from .working_client import WorkingClient

FUZZ_THREADS = 3


class FuzzSender(threading.Thread):
    def __init__(self, bootstrap: str, real: list[bytes], synthetic: list[bytes], frames: int, seed: int):
        super().__init__(daemon=True)
        self.address, self.real, self.synthetic, self.frames = host_port(bootstrap), real, synthetic, frames
        self.corpus = real + synthetic
        self.rng = random.Random(seed)
        self.sent = self.connections = self.response_bytes = self.answered = self.refused = 0
        self.keys: collections.Counter = collections.Counter()

    def run(self) -> None:
        while self.sent < self.frames:
            per_connection = 1 if self.rng.random() < 0.6 else self.rng.randint(2, 6)  # a bad frame ends its connection
            batch = [self._next_frame() for _ in range(min(per_connection, self.frames - self.sent))]
            self._send(batch)
            self.sent += len(batch)

    def _next_frame(self) -> bytes:
        seed = self.rng.choice(self.real if self.rng.random() < 0.75 else self.synthetic)
        self.keys[struct.unpack(">h", seed[:2])[0]] += 1
        body = seed if self.rng.random() < 0.05 else mutate(seed, self.rng, self.corpus)
        return framed(body, self.rng)

    def _send(self, batch: list[bytes]) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=5)
        except OSError:
            self.refused += 1
            time.sleep(0.05)
            return
        self.connections += 1
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, no TIME_WAIT
        received = bytearray()
        try:
            sock.sendall(b"".join(batch))
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.5)
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
        finally:
            sock.close()
        self.response_bytes += len(received)
        self.answered += complete_frames(received)


def complete_frames(stream: bytes | bytearray) -> int:
    count, pos = 0, 0
    while len(stream) - pos >= 4:
        pos += 4 + struct.unpack_from(">i", stream, pos)[0]
        if pos > len(stream):
            break
        count += 1
    return count


def handler_exceptions(log_text: str) -> collections.Counter:
    """Exception type and raising frame of each 'after an internal error' traceback in the log."""
    found: collections.Counter = collections.Counter()
    for block in log_text.split("after an internal error")[1:]:
        lines = block.splitlines()
        files = [l.strip() for l in lines if l.strip().startswith("File ")]
        last = next((l for l in lines[1:] if re.match(r"^[A-Za-z_.]+(Error|Exception|Interrupt)\b", l)), "?")
        where = files[-1].replace('File "', "").split('", line ')[0].split("kbroker/")[-1] if files else "?"
        line = files[-1].split(", line ")[1].split(",")[0] if files else "?"
        found[f"{last.split(':')[0]} at {where}:{line}"] += 1
    return found


def partitions_created(bootstrap: str) -> tuple[int, int]:
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=30)
    return len(metadata.topics), sum(len(t.partitions) for t in metadata.topics.values())


def live_fuzz(workdir: Path, frames: int) -> dict:
    real, synthetic = real_client_frames(workdir), every_request_type()
    broker = new_broker(workdir / "data").start()
    figures = {"frames": 0, "corpus": len(real) + len(synthetic)}
    client = WorkingClient(broker.bootstrap).start()
    try:
        rss_before = rss_mb(broker.pid)
        started = time.monotonic()
        senders = [FuzzSender(broker.bootstrap, real, synthetic, -(-frames // FUZZ_THREADS), seed) for seed in range(FUZZ_THREADS)]
        for sender in senders:
            sender.start()
        peak_rss = rss_before
        while any(s.is_alive() for s in senders) and broker.process.poll() is None:
            peak_rss = max(peak_rss, rss_mb(broker.pid))
            time.sleep(0.5)
        for sender in senders:
            sender.join(10)
        figures.update(
            frames=sum(s.sent for s in senders), connections=sum(s.connections for s in senders),
            refused=sum(s.refused for s in senders), seconds=time.monotonic() - started,
            response_bytes=sum(s.response_bytes for s in senders), answered=sum(s.answered for s in senders), died=broker.process.poll() is not None,
            rss=(rss_before, peak_rss), keys=len(set().union(*(s.keys for s in senders))))
        time.sleep(2)  # the working client goes on a little after the last frame
        client.stop()
        figures["died"] = figures["died"] or broker.process.poll() is not None
        figures["client_errors"] = list(client.errors)
        figures["acknowledged"], figures["consumed"] = len(client.acknowledged), client.consumed
        if not figures["died"]:
            figures["lost"] = client.lost()
            figures["topics"], figures["partitions"] = partitions_created(broker.bootstrap)
    finally:
        client.stopping.set()
        stop_broker(broker)
    figures["handler_exceptions"] = handler_exceptions(log_since(broker, 0))
    return figures


def run(size: Size, workdir: Path) -> ProbeResult:
    frames = {"full": 100_000, "quick": 6_000, "ci": 1_000}[size.name]
    f = live_fuzz(workdir, frames)
    errors = f.get("client_errors", [])
    held = not f["died"] and not errors and f.get("lost", 1) == 0
    exceptions = f["handler_exceptions"]
    defects = []
    if f["died"]:
        defects.append("live fuzz: the broker process died")
    if errors:
        defects.append(f"live fuzz: working client saw {len(errors)} errors, first: {errors[:3]}")
    if f.get("lost"):
        defects.append(f"live fuzz: {f['lost']} acknowledged records of the working client lost")
    if exceptions:
        defects.append("live fuzz: handler exceptions closed fuzz connections (Kafka answers an error code): "
                       + "; ".join(f"{n}× {sig}" for sig, n in exceptions.most_common(8)))
    figures = (f"{f['frames']:,} frames ({f.get('keys', 0)} API keys, {f['corpus']} seeds) on {f.get('connections', 0):,} "
               f"connections in {f.get('seconds', 0):.0f} s, {f.get('answered', 0):,} of them answered; broker died: {'yes' if f['died'] else 'no'}; working "
               f"client: {f.get('acknowledged', 0):,} acknowledged, {len(errors)} errors, {f.get('lost', '?')} lost; "
               f"RSS {f.get('rss', (0, 0))[0]:.0f} → peak {f.get('rss', (0, 0))[1]:.0f} MB; "
               f"{sum(exceptions.values())} handler exceptions; mutations created {f.get('topics', '?')} topics / "
               f"{f.get('partitions', '?')} partitions")
    return ProbeResult("live fuzzer", f"{f['frames']:,} mutated real frames", held and not exceptions, figures, defects)
