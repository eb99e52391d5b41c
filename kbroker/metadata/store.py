"""The topic catalogue: which topics exist, their ids, partition counts and config overrides.

MetadataStore is the small interface the broker uses. MemoryMetadataStore keeps everything in
dicts; FileMetadataStore is the same plus a JSON snapshot in the data directory, rewritten atomically
(temp file, fsync, rename, fsync directory) after every change, so a crash leaves either the old or the
new catalogue, never a torn one. Single-broker Kafka: every partition's leader and only replica is this
node, and its leader epoch starts at 0.

A topic, or a larger partition count, can be recorded before it is visible (``pending=True``): it is
in the snapshot on disk at once, so a crash leaves it as a created topic whose partitions recovery
opens or creates, while get(), topics() and the Topic's partition count only show it once the broker
has created its partitions' logs and calls publish(). The name is taken meanwhile (names()).

A change is all or nothing: when the snapshot cannot be written (a full disk, an I/O error) the
OSError reaches the caller and the change is undone in memory too, so nothing is left pending or
taken that the disk does not have, and the same change succeeds once the disk has room again.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

from ..durable_files import write_atomically

log = logging.getLogger("kbroker.metadata")
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
    def names(self) -> set[str]: ...
    def create_topic(self, name: str, partitions: int, replication_factor: int = 1,
                     configs: dict[str, str] | None = None, *, pending: bool = False,
                     topic_id: uuid.UUID | None = None) -> Topic: ...
    def delete_topic(self, name: str) -> Topic | None: ...
    def set_partitions(self, name: str, partitions: int, *, pending: bool = False) -> Topic: ...
    def publish(self, topic: Topic) -> None: ...
    def abandon(self, topic: Topic) -> None: ...
    def set_configs(self, name: str, configs: dict[str, str]) -> Topic: ...


class MemoryMetadataStore:
    def __init__(self) -> None:
        self._topics: dict[str, Topic] = {}
        self._by_id: dict[uuid.UUID, Topic] = {}
        self._pending: dict[str, Topic] = {}  # recorded, not yet visible
        self._growing: dict[str, int] = {}  # a visible topic's recorded partition count, not yet visible

    def topics(self) -> list[Topic]:
        return list(self._topics.values())

    def get(self, name: str) -> Topic | None:
        return self._topics.get(name)

    def get_by_id(self, topic_id: uuid.UUID) -> Topic | None:
        return self._by_id.get(topic_id)

    def names(self) -> set[str]:
        """Every name taken, by a visible topic or a pending one."""
        return self._topics.keys() | self._pending.keys()

    def create_topic(self, name: str, partitions: int, replication_factor: int = 1,
                     configs: dict[str, str] | None = None, *, pending: bool = False,
                     topic_id: uuid.UUID | None = None) -> Topic:
        if name in self._topics or name in self._pending:
            raise KeyError(f"topic {name!r} already exists")
        topic = Topic(name, topic_id or uuid.uuid4(), partitions, replication_factor, dict(configs or {}))
        if pending:
            self._pending[name] = topic
            self._record(lambda: self._pending.pop(name))
        else:
            self._add(topic)
            self._record(lambda: self._remove(topic))
        return topic

    def delete_topic(self, name: str) -> Topic | None:
        topic = self._topics.get(name)
        if topic is not None:
            growing = self._growing.pop(name, None)
            self._remove(topic)

            def undo() -> None:
                self._add(topic)
                if growing is not None:
                    self._growing[name] = growing
            self._record(undo)
        return topic

    def set_partitions(self, name: str, partitions: int, *, pending: bool = False) -> Topic:
        topic = self._topics[name]
        if pending:
            self._growing[name] = partitions
            self._record(lambda: self._growing.pop(name))
        else:
            before, topic.partitions = topic.partitions, partitions
            self._record(lambda: setattr(topic, "partitions", before))
        return topic

    def publish(self, topic: Topic) -> None:
        """Make the topic's pending creation or partition count visible (a no-op if it was deleted)."""
        if self._pending.get(topic.name) is topic:
            del self._pending[topic.name]
            self._add(topic)
        elif self._topics.get(topic.name) is topic and topic.name in self._growing:
            topic.partitions = self._growing.pop(topic.name)

    def abandon(self, topic: Topic) -> None:
        """Forget the topic's pending creation or partition increase: its logs could not be made.
        Forgotten in memory even if the disk refuses the snapshot too (it then still records the
        change, and a restart carries it out as it does after a crash mid-creation)."""
        if self._pending.get(topic.name) is topic:
            del self._pending[topic.name]
        elif self._topics.get(topic.name) is topic and topic.name in self._growing:
            del self._growing[topic.name]
        else:
            return
        try:
            self._changed()
        except OSError as exc:
            log.warning("could not record that topic %s's change was abandoned: %s", topic.name, exc)

    def set_configs(self, name: str, configs: dict[str, str]) -> Topic:
        topic = self._topics[name]
        before, topic.configs = topic.configs, dict(configs)
        self._record(lambda: setattr(topic, "configs", before))
        return topic

    def _add(self, topic: Topic) -> None:
        self._topics[topic.name] = topic
        self._by_id[topic.topic_id] = topic

    def _remove(self, topic: Topic) -> None:
        del self._topics[topic.name]
        del self._by_id[topic.topic_id]

    def _record(self, undo: Callable[[], object]) -> None:
        """Persist the change just made in memory; if that fails, undo it and re-raise."""
        try:
            self._changed()
        except BaseException:
            undo()
            raise

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
        recorded = [t.to_json() | ({"partitions": self._growing[t.name]} if t.name in self._growing else {})
                    for t in self._topics.values()] + [t.to_json() for t in self._pending.values()]
        write_atomically(self.path, json.dumps({"version": 1, "topics": recorded}, indent=1).encode())
