"""Normalisation of observations before comparing Apache Kafka with kbroker.

Only values that legitimately differ between two brokers are replaced, each by a token that still
carries its shape: the cluster id (any non-empty string -> "<cluster-id>"), topic ids (numbered in
order of appearance, so "same id twice" vs "two ids" still shows), node ids (numbered likewise),
host and port of listeners, wall-clock timestamps of records produced "now" (within ten minutes of
the run -> "<now>"), and wall-clock values quoted in error messages (within a day of now). Everything else — offsets, error codes, error messages, record contents,
timestamps a scenario chose, config values and sources — is compared as is.
"""
from __future__ import annotations

import re
import time

_BIG_INT = re.compile(r"-?\d{13,}")
LONG_MAX = 2**63 - 1
DAY_MS = 86_400_000

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
NODE_KEYS = {"node_id", "leader_id", "controller_id", "broker_id", "coordinator_id"}
NODE_LIST_KEYS = {"replica_nodes", "isr_nodes", "offline_replicas", "eligible_leader_replicas", "last_known_elr"}
TIMESTAMP_KEYS = {"timestamp", "base_timestamp", "max_timestamp", "log_append_time_ms"}


class Normalizer:
    def __init__(self):
        self.topic_ids: dict[str, str] = {}
        self.nodes: dict[int, str] = {}
        self.now = int(time.time() * 1000)

    def node(self, v):
        if not isinstance(v, int) or v < 0:
            return v
        return self.nodes.setdefault(v, f"<node-{len(self.nodes)}>")

    def __call__(self, obj, key: str | None = None):
        if isinstance(obj, dict):
            return {k: self(v, k) for k, v in obj.items()}
        if isinstance(obj, list):
            if key in NODE_LIST_KEYS:
                return [self.node(v) for v in obj]
            return [self(v) for v in obj]
        if key == "cluster_id" and isinstance(obj, str) and obj:
            return "<cluster-id>"
        if key == "topic_id" and isinstance(obj, str) and obj != ZERO_UUID:
            return self.topic_ids.setdefault(obj, f"<topic-id-{len(self.topic_ids)}>")
        if key in NODE_KEYS:
            return self.node(obj)
        if key == "host" and isinstance(obj, str):
            return "<host>"
        if key == "port" and isinstance(obj, int):
            return "<port>"
        if key in TIMESTAMP_KEYS and isinstance(obj, int) and abs(obj - self.now) < 600_000:
            return "<now>"
        if isinstance(obj, str) and key and key.endswith("message"):
            return _BIG_INT.sub(self._message_number, obj)
        return obj

    def _message_number(self, m) -> str:
        """Wall-clock values inside error messages (e.g. the allowed timestamp range) -> tokens."""
        n = int(m.group())
        if abs(n - self.now) < DAY_MS:
            return "<now>"
        if abs(n - (self.now - LONG_MAX)) < DAY_MS:
            return "<now-Long.MAX>"
        return m.group()


def normalize(obs):
    return Normalizer()(obs)


def diff(a, b, path: str = "") -> list[tuple[str, object, object]]:
    """Differences between two plain structures: (path, kafka value, kbroker value)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            p = f"{path}.{k}" if path else str(k)
            if k not in b:
                out.append((p, a[k], "<missing>"))
            elif k not in a:
                out.append((p, "<missing>", b[k]))
            else:
                out += diff(a[k], b[k], p)
        return out
    if isinstance(a, list) and isinstance(b, list):
        ka, kb = _names(a), _names(b)
        if ka is not None and kb is not None:  # e.g. configs: compare by name, then their order
            out = diff(dict(zip(ka, a)), dict(zip(kb, b)), path)
            common = [n for n in ka if n in kb]
            if [n for n in kb if n in ka] != common:
                out.append((f"{path}.order", "kafka's order", "another order"))
            return out
        out = []
        if len(a) != len(b):
            out.append((f"{path}.length", len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [(path, a, b)]


def _names(items: list) -> list | None:
    """The "name" of every element when the list is a list of uniquely named dicts."""
    if not items or not all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in items):
        return None
    names = [x["name"] for x in items]
    return names if len(set(names)) == len(names) else None
