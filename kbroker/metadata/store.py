"""The topic catalogue: which topics exist, their ids, partition counts and config overrides.

MetadataStore is the small interface the broker uses. MemoryMetadataStore keeps everything in
dicts; FileMetadataStore is the same plus a JSON snapshot in the data directory, rewritten atomically
(temp file, fsync, rename, fsync directory) after every change, so a crash leaves either the old or the
new catalogue, never a torn one. Single-broker Kafka: every partition's leader and only replica is this
node, and its leader epoch starts at 0.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from ..durable_files import write_atomically
from .topic_names import INTERNAL_TOPICS


@dataclass
class Topic:
    name: str
    topic_id: uuid.UUID
    partitions: int
    replication_factor: int = 1
    configs: dict[str, str] = field(default_factory=dict)
    leader_epoch: int = 0

    @property
    def is_internal(self) -> bool:
        return self.name in INTERNAL_TOPICS

    def to_json(self) -> dict:
        return {"name": self.name, "id": str(self.topic_id), "partitions": self.partitions,
                "replication_factor": self.replication_factor, "configs": self.configs,
                "leader_epoch": self.leader_epoch}

    @classmethod
    def from_json(cls, data: dict) -> "Topic":
        return cls(data["name"], uuid.UUID(data["id"]), int(data["partitions"]),
                   int(data.get("replication_factor", 1)), dict(data.get("configs", {})),
                   int(data.get("leader_epoch", 0)))


class MetadataStore(Protocol):
    def topics(self) -> Iterable[Topic]: ...
    def get(self, name: str) -> Topic | None: ...
    def get_by_id(self, topic_id: uuid.UUID) -> Topic | None: ...
    def create_topic(self, name: str, partitions: int, replication_factor: int = 1,
                     configs: dict[str, str] | None = None) -> Topic: ...
    def delete_topic(self, name: str) -> Topic | None: ...
    def set_partitions(self, name: str, partitions: int) -> Topic: ...
    def set_configs(self, name: str, configs: dict[str, str]) -> Topic: ...


class MemoryMetadataStore:
    def __init__(self) -> None:
        self._topics: dict[str, Topic] = {}
        self._by_id: dict[uuid.UUID, Topic] = {}

    def topics(self) -> list[Topic]:
        return list(self._topics.values())

    def get(self, name: str) -> Topic | None:
        return self._topics.get(name)

    def get_by_id(self, topic_id: uuid.UUID) -> Topic | None:
        return self._by_id.get(topic_id)

    def create_topic(self, name: str, partitions: int, replication_factor: int = 1,
                     configs: dict[str, str] | None = None) -> Topic:
        if name in self._topics:
            raise KeyError(f"topic {name!r} already exists")
        topic = Topic(name, uuid.uuid4(), partitions, replication_factor, dict(configs or {}))
        self._add(topic)
        self._changed()
        return topic

    def delete_topic(self, name: str) -> Topic | None:
        topic = self._topics.pop(name, None)
        if topic is not None:
            del self._by_id[topic.topic_id]
            self._changed()
        return topic

    def set_partitions(self, name: str, partitions: int) -> Topic:
        topic = self._topics[name]
        topic.partitions = partitions
        self._changed()
        return topic

    def set_configs(self, name: str, configs: dict[str, str]) -> Topic:
        topic = self._topics[name]
        topic.configs = dict(configs)
        self._changed()
        return topic

    def _add(self, topic: Topic) -> None:
        self._topics[topic.name] = topic
        self._by_id[topic.topic_id] = topic

    def _changed(self) -> None:
        """Hook for persistent subclasses."""


class FileMetadataStore(MemoryMetadataStore):
    FILE_NAME = "kbroker-metadata.json"

    def __init__(self, directory: Path):
        super().__init__()
        self.path = Path(directory) / self.FILE_NAME
        if self.path.exists():
            for data in json.loads(self.path.read_text())["topics"]:
                self._add(Topic.from_json(data))

    def _changed(self) -> None:
        write_atomically(self.path, json.dumps(
            {"version": 1, "topics": [t.to_json() for t in self._topics.values()]}, indent=1).encode())
