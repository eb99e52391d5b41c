"""What a coordinator needs from the layers below it, as small Protocols (never the Broker).

The composition root (kbroker.broker) passes the real services: the topic catalogue
(kbroker.metadata), topic administration's ensure_topic (kbroker.topics) and the partition layer
(kbroker.partitions). A unit test passes the same real services, built over a log in a temporary
directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Protocol

if TYPE_CHECKING:
    from ..log import PartitionLog
    from ..metadata import Topic
    from ..partitions import Partition


class Catalogue(Protocol):
    """The topic catalogue, read only (kbroker.metadata.MetadataStore)."""

    def get(self, name: str) -> Topic | None: ...

    def topics(self) -> Iterable[Topic]: ...


class PartitionLogs(Protocol):
    """The partition layer (kbroker.partitions.PartitionService): a partition to append to (the
    coordinators' records and transaction markers go through it, as clients' do), and its log,
    opened on first use, to replay."""

    def partition(self, topic: Topic, index: int) -> Partition: ...

    def partition_log(self, topic: Topic, partition: int) -> PartitionLog: ...


class EnsureTopic(Protocol):
    """kbroker.topics.TopicManager.ensure_topic: the topic, created first if missing, never twice."""

    async def __call__(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> Topic: ...


class AppendListener(Protocol):
    """kbroker.partitions.AppendNotifier: wakes long-polling fetches when a partition got data."""

    def notify(self) -> None: ...


# called with a deleted Topic (kbroker.topics.TopicManager.deletion_listeners holds them)
TopicDeletionListener = Callable[["Topic"], None]
