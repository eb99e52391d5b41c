"""ClusterView: one broker's up-to-date copy of the cluster's state, followed through watches.

What it keeps: the live brokers (``/brokers/ids``), those in controlled shutdown
(``/admin/controlled_shutdown``: a leader takes none of them into an ISR, KIP-841), the controller's
id, every topic's assignment and configs (``/config/topics``, followed too), and every partition's
state (leader, leader epoch, ISR). Kafka's brokers get the same from the controller's metadata
updates; here each broker follows the coordination store itself, which needs no broker-to-broker
protocol and cannot miss an update: a watch fires once per change and the follower reads again (so it always ends on the latest value, possibly skipping
intermediate ones, which no consumer of this view needs).

``run`` loads everything once, reports it to the listener, then starts one task per watched thing
(the broker set, the controller, the topic list, each topic's assignment, each partition's state)
in its nursery; a deleted topic's tasks are cancelled with it. The listener's methods are called
on the trio thread, synchronously, in the order changes are seen; ``changed`` is an event set at
every change (waiters such as a CreateTopics that waits to see its topic).
"""

from __future__ import annotations

import logging
from typing import Protocol

import trio

from .cluster import BrokerRegistration, ClusterCoordination, PartitionState, TopicAssignment

log = logging.getLogger("kbroker.coordination")

CONCURRENT_READS = 32  # store reads in flight while loading a topic's partition states


class ClusterListener(Protocol):
    def brokers_changed(self, brokers: dict[int, BrokerRegistration]) -> None: ...
    def topic_changed(self, topic: TopicAssignment) -> None: ...
    def topic_deleted(self, name: str) -> None: ...
    def partition_changed(self, topic: str, partition: int, state: PartitionState) -> None: ...


class ClusterView:
    def __init__(self, coordination: ClusterCoordination, listener: ClusterListener | None = None):
        self.coordination = coordination
        self.listener = listener
        self.brokers: dict[int, BrokerRegistration] = {}
        self.shutting_down: set[int] = set()
        self.controller_id: int | None = None
        self.topics: dict[str, TopicAssignment] = {}
        self.states: dict[tuple[str, int], PartitionState] = {}
        self._topic_scopes: dict[str, trio.CancelScope] = {}
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._reads = trio.CapacityLimiter(CONCURRENT_READS)

    # ------------------------------------------------------------------------------ queries

    def state(self, topic: str, partition: int) -> PartitionState | None:
        return self.states.get((topic, partition))

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def _note_change(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ------------------------------------------------------------------------------ following

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._follow_brokers_once()
            shutting_down_changed = await self._follow_shutting_down_once()
            for name in (await self.coordination.watch_topics())[0]:
                await self._load_topic(name)
            nursery.start_soon(self._follow_brokers)
            nursery.start_soon(self._follow_shutting_down, shutting_down_changed)
            nursery.start_soon(self._follow_controller)
            nursery.start_soon(self._follow_topics)
            task_status.started()

    async def _follow_brokers_once(self) -> trio.Event:
        brokers, changed = await self.coordination.watch_brokers()
        if brokers != self.brokers:
            self.brokers = brokers
            if self.listener is not None:
                self.listener.brokers_changed(brokers)
            self._note_change()
        return changed

    async def _follow_brokers(self) -> None:
        changed = await self._follow_brokers_once()
        while True:
            await changed.wait()
            changed = await self._follow_brokers_once()

    async def _follow_shutting_down_once(self) -> trio.Event:
        self.shutting_down, changed = await self.coordination.watch_shutting_down()
        self._note_change()
        return changed

    async def _follow_shutting_down(self, changed: trio.Event) -> None:
        while True:
            await changed.wait()
            changed = await self._follow_shutting_down_once()

    def eligible_for_isr(self, broker_id: int) -> bool:
        """Alive and not shutting down: a broker a leader may take (back) into an ISR (KIP-841)."""
        return broker_id in self.brokers and broker_id not in self.shutting_down

    async def _follow_controller(self) -> None:
        while True:
            self.controller_id, changed = await self.coordination.watch_controller()
            self._note_change()
            await changed.wait()

    async def _follow_topics(self) -> None:
        while True:
            names, changed = await self.coordination.watch_topics()
            for name in names:
                if name not in self._topic_scopes:
                    await self._load_topic(name)
            for name in [n for n in self._topic_scopes if n not in names]:
                self._forget_topic(name)
            await changed.wait()

    async def _load_topic(self, name: str) -> None:
        assignment = await self.coordination.topic(name)
        if assignment is None:  # deleted between the listing and the read
            return
        states = await self._read_states(name, sorted(assignment.replicas))
        # the topic and its partitions' states are applied together: nobody sees one without the other
        self._topic_changed(assignment)
        for partition, state in states.items():
            if state is not None:
                self._partition_changed(name, partition, state)
        scope = self._topic_scopes[name] = trio.CancelScope()
        self._nursery.start_soon(self._follow_topic, name, scope)

    async def _read_states(self, name: str, partitions: list[int]) -> dict[int, PartitionState | None]:
        """The partitions' states, read concurrently (one store round trip each: with ZooKeeper,
        loading a topic of many partitions one after the other was its main cost)."""
        states: dict[int, PartitionState | None] = {}

        async def read(partition: int) -> None:
            async with self._reads:
                states[partition] = await self.coordination.partition_state(name, partition)

        async with trio.open_nursery() as nursery:
            for partition in partitions:
                nursery.start_soon(read, partition)
        return dict(sorted(states.items()))

    def _forget_topic(self, name: str) -> None:
        self._topic_scopes.pop(name).cancel()
        assignment = self.topics.pop(name, None)
        if assignment is not None:
            for partition in assignment.replicas:
                self.states.pop((name, partition), None)
        if self.listener is not None:
            self.listener.topic_deleted(name)
        self._note_change()

    async def _follow_topic(self, name: str, scope: trio.CancelScope) -> None:
        """The topic's assignment (grown partitions, moved replicas) and its partitions' states."""
        with scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_topic_configs, name)
                followed: set[int] = set()
                while True:
                    node, changed = await self.coordination.store.get_watch(f"/brokers/topics/{name}")
                    if node is None:
                        return  # deleted: the topic list's watch forgets it
                    assignment = await self.coordination.topic(name)
                    if assignment is not None:
                        if assignment != self.topics.get(name):
                            self._topic_changed(assignment)
                        for partition in sorted(set(assignment.replicas) - followed):
                            followed.add(partition)
                            nursery.start_soon(self._follow_partition, name, partition)
                    await changed.wait()

    async def _follow_topic_configs(self, name: str) -> None:
        """The topic's config overrides (AlterConfigs on any broker writes them)."""
        while True:
            _, changed = await self.coordination.store.get_watch(f"/config/topics/{name}")
            assignment = await self.coordination.topic(name)
            if assignment is not None and assignment != self.topics.get(name):
                self._topic_changed(assignment)
            await changed.wait()

    async def _follow_partition(self, topic: str, partition: int) -> None:
        while True:
            state, changed = await self.coordination.watch_partition_state(topic, partition)
            if state is not None and state != self.states.get((topic, partition)):
                self._partition_changed(topic, partition, state)
            await changed.wait()

    def _topic_changed(self, assignment: TopicAssignment) -> None:
        self.topics[assignment.name] = assignment
        if self.listener is not None:
            self.listener.topic_changed(assignment)
        self._note_change()

    def _partition_changed(self, topic: str, partition: int, state: PartitionState) -> None:
        self.states[(topic, partition)] = state
        if self.listener is not None:
            self.listener.partition_changed(topic, partition, state)
        self._note_change()
