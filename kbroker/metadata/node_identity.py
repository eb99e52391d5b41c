"""meta.properties: the node id and cluster id stamped into a data directory, in Kafka's format.

Kafka writes it when a log dir is formatted and refuses to start when it disagrees with the config.
kbroker formats an empty directory on first start (a fresh random cluster id, like `kafka-storage
random-uuid`), then holds every later start to the same identity.
"""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

from ..durable_files import write_atomically

FILE_NAME = "meta.properties"


class IdentityMismatch(Exception):
    pass


def random_kafka_uuid() -> str:
    """Kafka's textual Uuid: URL-safe base64 of 16 random bytes, unpadded (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _read(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def load_or_format(directory: Path, node_id: int, cluster_id: str | None = None) -> str:
    """Return the directory's cluster id, formatting the directory if it has no meta.properties."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    if path.exists():
        values = _read(path)
        if int(values.get("node.id", node_id)) != node_id:
            raise IdentityMismatch(f"{path} belongs to node.id={values['node.id']}, but this broker is "
                                   f"node.id={node_id}")
        if cluster_id is not None and values.get("cluster.id") != cluster_id:
            raise IdentityMismatch(f"{path} belongs to cluster {values.get('cluster.id')}, not {cluster_id}")
        return values["cluster.id"]
    cluster_id = cluster_id or random_kafka_uuid()
    text = (f"#\n#{time.strftime('%a %b %d %H:%M:%S %Z %Y')}\n"
            f"cluster.id={cluster_id}\ndirectory.id={random_kafka_uuid()}\nnode.id={node_id}\nversion=1\n")
    write_atomically(path, text.encode())
    return cluster_id
