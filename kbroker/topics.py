"""Topic administration: creating, growing and deleting topics, the catalogue and the logs together.

Creating a topic (CreateTopics, auto-creation by Metadata, the coordinators' internal topics) or
growing one (CreatePartitions) never blocks the event loop on disk:
1. the change is recorded in the catalogue, on disk at once but not visible (pending; ~1 ms of fsync
   on the loop), and the name is marked as changing;
2. the new partitions' logs are created in a worker thread, in one durability batch: when it returns
   every file and directory is durable (kbroker.log.durability), while the loop serves everyone else;
3. back on the loop the logs are registered and the change published, atomically for every other task.
Other requests therefore see a topic only once its partitions exist and are durable, never half made:
a Metadata or Produce meanwhile finds no such topic (UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers
before its controller commits a topic), a second CreateTopics of the name gets TOPIC_ALREADY_EXISTS,
and auto-creation of that name (Metadata, FindCoordinator) waits for the creation in flight instead of
creating twice (ensure_topic). Kept visible-at-once instead, a request could open a partition on the
loop while the worker thread creates the same directory. Steps 2-3 are shielded from cancellation: a
request cancelled mid-creation (client gone, broker stopping) still completes it, so nothing is left
pending in memory; a crash mid-creation leaves a recorded topic whose partitions are opened or created
on use, exactly as before. A step 2 the disk refuses (full, or out of file descriptors) is undone: the
catalogue forgets the change and the new partition directories are removed, and the request gets
KAFKA_STORAGE_ERROR; nothing of it stays, as Kafka's creations are all or nothing.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Callable, Iterator, Protocol

import trio

from .config.live import LiveConfig
from .metadata import MetadataStore, Topic
from .partitions import PartitionService
from .protocol.errors import ApiError, ErrorCode

log = logging.getLogger("kbroker")


@contextlib.contextmanager
def _storage_errors(what: str) -> Iterator[None]:
    """A change the disk refuses (the catalogue or a log cannot be written) is KAFKA_STORAGE_ERROR for
    the topic; the catalogue has undone it in memory (kbroker.metadata.store), so it can be retried."""
    try:
        yield
    except OSError as exc:
        log.error("could not %s: %s", what, exc)
        raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, f"Could not {what}: {exc.strerror or exc}") from exc


class TopicDirectory(Protocol):
    """Where a cluster records its topics (kbroker.replication.topics): a change is recorded there and
    comes back to every broker's catalogue through ``TopicManager.adopt`` / ``forget``."""

    async def create_topic(self, name: str, partitions: int, replication_factor: int | None,
                           configs: dict[str, str], assignment: dict[int, list[int]] | None) -> None: ...
    async def delete_topic(self, name: str) -> None: ...
    async def add_partitions(self, name: str, count: int, assignment: list[list[int]] | None) -> None: ...


CLUSTER_PROPAGATION_SECONDS = 30.0  # how long a change recorded in the cluster may take to come back


class TopicManager:
    def __init__(self, metadata: MetadataStore, partitions: PartitionService, live_config: LiveConfig):
        self.metadata = metadata
        self.partitions = partitions
        self._live_config = live_config
        # called with the Topic after a topic is deleted (e.g. the group coordinator drops its offsets)
        self.deletion_listeners: list[Callable[[Topic], None]] = []
        self._changing: dict[str, trio.Event] = {}  # names being created or grown, set when done
        # in a cluster, topics are recorded there and adopted back (None: this broker alone)
        self.directory: TopicDirectory | None = None
        self._adopted = trio.Event()

    @property
    def auto_create_topics(self) -> bool:
        return self._live_config.current.auto_create_topics_enable

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None, *,
                           replication_factor: int | None = None,
                           assignment: dict[int, list[int]] | None = None) -> Topic:
        """Record the topic and create its partitions' logs, as Kafka does at creation time; returns
        once all is durable and visible. KeyError if the name is taken, by a topic being created too;
        ApiError(KAFKA_STORAGE_ERROR) if the disk refuses (nothing is recorded then, unless the catalogue
        was written and only the logs failed: the topic exists and its logs are created on use).
        In a cluster: recorded there (with ``replication_factor`` replicas each, or ``assignment``),
        returned once this broker's catalogue has it back."""
        if self.directory is not None:
            await self.directory.create_topic(name, partitions, replication_factor, dict(configs or {}), assignment)
            return await self._until_adopted(name, lambda t: t is not None)
        started = trio.current_time()
        with _storage_errors(f"create topic {name}"):
            topic = self.metadata.create_topic(name, partitions, 1, configs, pending=True)
            await self._carry_out(topic, range(partitions))
        log.info("created topic %s with %d partitions in %.1f ms", name, partitions,
                 (trio.current_time() - started) * 1000)
        return topic

    async def ensure_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> Topic:
        """The topic, created first if it does not exist; a creation in flight is waited for, not repeated."""
        await self.topic_settled(name)
        topic = self.metadata.get(name)  # no checkpoint between the check and the creation
        if topic is not None:
            return topic
        try:
            return await self.create_topic(name, partitions, configs)
        except KeyError:
            if self.directory is None:
                raise
            # another broker of the cluster created it first: it comes here too
            return await self._until_adopted(name, lambda t: t is not None)

    async def topic_settled(self, name: str) -> None:
        """Wait until no creation or partition increase of the topic is in flight."""
        while (changing := self._changing.get(name)) is not None:
            await changing.wait()

    async def _carry_out(self, topic: Topic, partitions: range) -> None:
        """Create the partitions' logs in a worker thread, then register them and publish the topic's
        recorded change. Shielded: once recorded, a change is always completed (module docstring)."""
        changing = self._changing[topic.name] = trio.Event()
        logs = self.partitions.logs
        try:
            with trio.CancelScope(shield=True):
                missing = [p for p in partitions if logs.get(topic.name, p) is None]
                opened = await trio.to_thread.run_sync(logs.open_new, topic.name, missing, topic.topic_id,
                                                       self.partitions.log_config(topic), topic.leader_epoch)
            for partition_log in opened.values():  # the topic's configs may have changed meanwhile
                partition_log.config = self.partitions.log_config(topic)
            logs.add(opened)
        except BaseException:
            self.metadata.abandon(topic)  # the logs could not be made: nothing of the change stays
            raise
        else:
            self.metadata.publish(topic)
        finally:
            del self._changing[topic.name]
            changing.set()

    async def delete_topic(self, name: str) -> Topic | None:
        """Remove the topic from the catalogue and delete its partitions' logs (DeleteTopics), after
        any partition increase in flight (whose new logs would otherwise outlive the topic)."""
        if self.directory is not None:
            topic = self.metadata.get(name)
            await self.directory.delete_topic(name)
            await self._until_adopted(name, lambda t: t is None or (topic is not None and t.topic_id != topic.topic_id))
            return topic
        await self.topic_settled(name)
        with _storage_errors(f"delete topic {name}"):
            topic = self.metadata.delete_topic(name)
        if topic is None:
            return None
        self.partitions.topic_deleted(topic)
        for listener in list(self.deletion_listeners):
            listener(topic)
        log.info("deleted topic %s (%s)", name, topic.topic_id)
        return topic

    async def add_partitions(self, name: str, count: int) -> Topic:
        """Grow the topic to `count` partitions and create the new partitions' logs (CreatePartitions);
        returns once they are durable and visible. Callers wait for topic_settled(name) first."""
        if self.directory is not None:
            await self.directory.add_partitions(name, count, None)
            return await self._until_adopted(name, lambda t: t is None or t.partitions >= count)
        assert name not in self._changing, "one change of a topic at a time"
        with _storage_errors(f"add partitions to {name}"):
            topic = self.metadata.set_partitions(name, count, pending=True)
            await self._carry_out(topic, range(count))
        return topic

    def set_topic_configs(self, name: str, configs: dict[str, str]) -> Topic:
        """Replace the topic's config overrides (AlterConfigs) and apply them to its logs."""
        with _storage_errors(f"change the configs of {name}"):
            topic = self.metadata.set_configs(name, configs)
        self.partitions.topic_configs_changed(topic)
        return topic

    # ------------------------------------------------------------------------------ in a cluster

    def adopt(self, name: str, topic_id: uuid.UUID, partitions: int, replication_factor: int,
              configs: dict[str, str]) -> Topic:
        """The cluster has this topic (kbroker.replication): make the catalogue agree. A topic of the
        same name with another id was deleted and created again while we were away: it goes first."""
        topic = self.metadata.get(name)
        if topic is not None and topic.topic_id != topic_id:
            self.forget(name)
            topic = None
        with _storage_errors(f"record topic {name}"):
            if topic is None:
                topic = self.metadata.create_topic(name, partitions, replication_factor, configs, topic_id=topic_id)
                log.info("topic %s (%s) with %d partitions", name, topic_id, partitions)
            else:
                if partitions > topic.partitions:
                    self.metadata.set_partitions(name, partitions)
                if configs != topic.configs:
                    topic = self.metadata.set_configs(name, configs)
                    self.partitions.topic_configs_changed(topic)
        self._note_adopted()
        return topic

    def forget(self, name: str) -> None:
        """The cluster no longer has this topic: drop it and this broker's replicas of it."""
        with _storage_errors(f"delete topic {name}"):
            topic = self.metadata.delete_topic(name)
        if topic is not None:
            self.partitions.topic_deleted(topic)
            for listener in list(self.deletion_listeners):
                listener(topic)
            log.info("deleted topic %s (%s)", name, topic.topic_id)
        self._note_adopted()

    def _note_adopted(self) -> None:
        self._adopted.set()
        self._adopted = trio.Event()

    async def _until_adopted(self, name: str, done: Callable[[Topic | None], bool]) -> Topic:
        """Wait for the catalogue to show a change recorded in the cluster."""
        with trio.move_on_after(CLUSTER_PROPAGATION_SECONDS):
            while not done(topic := self.metadata.get(name)):
                await self._adopted.wait()
            return topic
        raise ApiError(ErrorCode.REQUEST_TIMED_OUT, f"the change of topic {name} was not seen in time")
