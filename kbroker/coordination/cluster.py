"""A broker's view of the cluster it belongs to, kept in the coordination store with Kafka's ZooKeeper
layout (so a ZooKeeper browser shows what Kafka's would):

    /cluster/id                                   {"version":"1","id":"<cluster id>"}
    /controller                                   ephemeral {"version":2,"brokerid":N,"timestamp":"<ms>"}
    /controller_epoch                             "<epoch>" (its node version fences writes, below)
    /brokers/ids/<id>                             ephemeral {"version":5,"host","port","endpoints":
                                                  ["PLAINTEXT://h:p"],"listener_security_protocol_map",
                                                  "rack","jmx_port":-1,"timestamp":"<ms>"}
    /brokers/topics/<topic>                       {"version":3,"topic_id":"<base64>","partitions":
                                                  {"0":[1,2,3]},"adding_replicas":{},"removing_replicas":{}}
    /brokers/topics/<topic>/partitions/<p>/state  {"controller_epoch":E,"leader":L,"version":1,
                                                  "leader_epoch":LE,"isr":[...]}
    /config/topics/<topic>                        {"version":1,"config":{...}}
    /latest_producer_id_block                     {"version":1,"broker":N,"block_start":"S","block_end":"E"}
    /feature                                      {"version":2,"status":1,"features":{"<name>":<level>}}
                                                  (the finalized feature levels UpdateFeatures set)
    /admin/controlled_shutdown/<id>               ephemeral: broker <id> is shutting down (kbroker's own)

- A broker registers itself with an ephemeral node: it is alive while its session is; a second
  broker with the same id gets BrokerIdTaken.
- Controller election: whoever creates the ephemeral /controller is controller, and then increments
  /controller_epoch. Every write a controller makes is a transaction that first checks the version
  of /controller_epoch it saw when it was elected (its Fence), so a controller that lost its
  session (a zombie, a paused process) cannot change anything once another has been elected.
- A partition's state is written by the controller (leader elections, fenced) or by the partition's
  leader when it shrinks or grows the ISR; both are conditional on the state node's version, so of
  two writers that read the same state only the first succeeds and the other re-reads.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Mapping

import trio

from .store import BadVersion, Check, Create, Delete, NodeExists, NoNode, Operation, SetData, Store

SHUTDOWN_PATH = "/admin/controlled_shutdown"
FEATURE_PATH = "/feature"
PERSISTENT_PATHS = ("/brokers/ids", "/brokers/topics", "/config/topics", "/cluster", "/admin/delete_topics",
                    SHUTDOWN_PATH)


class BrokerIdTaken(Exception):
    """Another live broker is registered with this node id."""


class NotController(Exception):
    """A write by a controller that is no longer the controller (its fence failed)."""


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    node_id: int
    endpoints: tuple[tuple[str, str, int], ...]  # (listener name, host, port)
    rack: str | None = None

    def to_json(self) -> bytes:
        listener, host, port = self.endpoints[0]
        return json.dumps({
            "version": 5, "host": host, "port": port, "jmx_port": -1, "rack": self.rack,
            "timestamp": str(int(time.time() * 1000)),
            "endpoints": [f"{name}://{h}:{p}" for name, h, p in self.endpoints],
            "listener_security_protocol_map": {name: name for name, _, _ in self.endpoints},
        }).encode()

    @classmethod
    def from_json(cls, node_id: int, data: bytes) -> BrokerRegistration:
        value = json.loads(data)
        endpoints = []
        for endpoint in value["endpoints"]:
            name, _, address = endpoint.partition("://")
            host, _, port = address.rpartition(":")
            endpoints.append((name, host, int(port)))
        return cls(node_id, tuple(endpoints), value.get("rack"))


@dataclass(frozen=True, slots=True)
class Fence:
    """What a controller proves with each write: the controller epoch it was elected with."""
    controller_epoch: int
    epoch_node_version: int

    def check(self) -> Check:
        return Check("/controller_epoch", self.epoch_node_version)


@dataclass(frozen=True, slots=True)
class PartitionState:
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int
    version: int = -1  # the state node's version when read (-1: not read from the store)

    def to_json(self) -> bytes:
        return json.dumps({"controller_epoch": self.controller_epoch, "leader": self.leader, "version": 1,
                           "leader_epoch": self.leader_epoch, "isr": list(self.isr)}).encode()

    @classmethod
    def from_json(cls, data: bytes, version: int) -> PartitionState:
        value = json.loads(data)
        return cls(value["leader"], value["leader_epoch"], tuple(value["isr"]), value["controller_epoch"], version)


@dataclass(frozen=True, slots=True)
class TopicAssignment:
    name: str
    topic_id: uuid.UUID
    replicas: Mapping[int, tuple[int, ...]]  # partition -> replicas, the first the preferred leader
    configs: Mapping[str, str] = field(default_factory=dict)


def _topic_id_to_str(topic_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(topic_id.bytes).decode().rstrip("=")  # Kafka's Uuid.toString()


def _topic_id_from_str(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _feature_levels(data: bytes) -> dict[str, int]:
    return {str(name): int(level) for name, level in json.loads(data).get("features", {}).items()}


def _topic_path(name: str) -> str:
    return f"/brokers/topics/{name}"


def _state_path(topic: str, partition: int) -> str:
    return f"/brokers/topics/{topic}/partitions/{partition}/state"


def _assignment_json(topic: TopicAssignment) -> bytes:
    return json.dumps({"version": 3, "topic_id": _topic_id_to_str(topic.topic_id),
                       "partitions": {str(p): list(r) for p, r in sorted(topic.replicas.items())},
                       "adding_replicas": {}, "removing_replicas": {}}).encode()


def _configs_json(configs: Mapping[str, str]) -> bytes:
    return json.dumps({"version": 1, "config": dict(configs)}).encode()


def _first_states(topic: str, states: Mapping[int, PartitionState]) -> list[Operation]:
    """The nodes of new partitions: each one's node and its first state."""
    operations: list[Operation] = []
    for partition, state in sorted(states.items()):
        operations += [Create(f"/brokers/topics/{topic}/partitions/{partition}"),
                       Create(_state_path(topic, partition), state.to_json())]
    return operations


class ClusterCoordination:
    """One broker's calls on the cluster's coordination store (its own session)."""

    def __init__(self, store: Store, node_id: int):
        self.store = store
        self.node_id = node_id

    async def ensure_layout(self) -> None:
        for path in PERSISTENT_PATHS:
            try:
                await self.store.create(path, make_parents=True)
            except NodeExists:
                pass

    async def cluster_id(self, proposed: str) -> str:
        """The cluster's id: the first broker to ask records its own proposal."""
        try:
            await self.store.create("/cluster/id", json.dumps({"version": "1", "id": proposed}).encode())
        except NodeExists:
            pass
        node = await self.store.get("/cluster/id")
        return json.loads(node.data)["id"]

    # -- brokers ------------------------------------------------------------------------------
    async def register(self, registration: BrokerRegistration) -> None:
        try:
            await self.store.create(f"/brokers/ids/{registration.node_id}", registration.to_json(), ephemeral=True)
        except NodeExists:
            raise BrokerIdTaken(f"broker id {registration.node_id} is registered by another live broker") from None

    async def live_brokers(self) -> dict[int, BrokerRegistration]:
        return (await self.watch_brokers())[0]

    async def watch_brokers(self) -> tuple[dict[int, BrokerRegistration], trio.Event]:
        ids, changed = await self.store.children_watch("/brokers/ids")
        brokers = {}
        for child in ids:
            node = await self.store.get(f"/brokers/ids/{child}")
            if node is not None:  # it may have gone between the two reads; the watch says so
                brokers[int(child)] = BrokerRegistration.from_json(int(child), node.data)
        return brokers, changed

    async def watch_shutting_down(self) -> tuple[set[int], trio.Event]:
        """The brokers in controlled shutdown (their ``/admin/controlled_shutdown/<id>``)."""
        ids, changed = await self.store.children_watch(SHUTDOWN_PATH)
        return {int(child) for child in ids}, changed

    # -- the controller -------------------------------------------------------------------------
    async def elect(self) -> Fence | None:
        """Become the controller if there is none; the Fence of this controllership, else None."""
        data = json.dumps({"version": 2, "brokerid": self.node_id, "timestamp": str(int(time.time() * 1000))})
        try:
            await self.store.create("/controller", data.encode(), ephemeral=True)
        except NodeExists:
            return None
        while True:  # bump the epoch; a stale controller racing us retries on a new version
            node = await self.store.get("/controller_epoch")
            try:
                if node is None:
                    await self.store.create("/controller_epoch", b"1")
                    return Fence(1, 0)
                epoch = int(node.data) + 1
                version = await self.store.set("/controller_epoch", str(epoch).encode(), node.version)
                return Fence(epoch, version)
            except (NodeExists, BadVersion):
                continue

    async def watch_controller(self) -> tuple[int | None, trio.Event]:
        node, changed = await self.store.get_watch("/controller")
        return (None if node is None else json.loads(node.data)["brokerid"]), changed

    async def controller_epoch(self) -> int:
        node = await self.store.get("/controller_epoch")
        return 0 if node is None else int(node.data)

    async def _fenced(self, fence: Fence | None, operations: list[Operation]) -> None:
        """Apply the operations at once, after the controller's fence check (``None``: a write any
        broker may make, which no one else's change can be overwritten by)."""
        if fence is None:
            await self.store.transaction(operations)
            return
        try:
            await self.store.transaction([fence.check(), *operations])
        except BadVersion:
            epoch = await self.store.get("/controller_epoch")
            if epoch is None or epoch.version != fence.epoch_node_version:
                raise NotController(f"controller epoch {fence.controller_epoch} is no longer current") from None
            raise

    # -- topics ---------------------------------------------------------------------------------
    async def create_topic(self, fence: Fence | None, topic: TopicAssignment,
                           states: Mapping[int, PartitionState]) -> None:
        """Record a new topic with its assignment, configs and every partition's first state, at once
        (NodeExists if the name is taken). Any broker may: creating cannot overwrite another's
        change, so it needs no fence (``None``); the controller takes it from there."""
        path = _topic_path(topic.name)
        operations: list[Operation] = [
            Create(path, _assignment_json(topic)), Create(f"{path}/partitions"),
            Create(f"/config/topics/{topic.name}", _configs_json(topic.configs))]
        await self._fenced(fence, operations + _first_states(topic.name, states))

    async def watch_topics(self) -> tuple[list[str], trio.Event]:
        return await self.store.children_watch("/brokers/topics")

    async def topic(self, name: str) -> TopicAssignment | None:
        node = await self.store.get(_topic_path(name))
        if node is None:
            return None
        value = json.loads(node.data)
        config = await self.store.get(f"/config/topics/{name}")
        configs = json.loads(config.data)["config"] if config is not None else {}
        replicas = {int(p): tuple(r) for p, r in value["partitions"].items()}
        return TopicAssignment(name, _topic_id_from_str(value["topic_id"]), replicas, configs)

    async def delete_topic(self, fence: Fence | None, name: str) -> None:
        topic = await self.topic(name)
        if topic is None:
            raise NoNode(_topic_path(name))
        path = _topic_path(name)
        operations: list[Operation] = []
        for partition in sorted(topic.replicas):
            operations += [Delete(_state_path(name, partition)), Delete(f"{path}/partitions/{partition}")]
        operations += [Delete(f"{path}/partitions"), Delete(path), Delete(f"/config/topics/{name}")]
        await self._fenced(fence, operations)

    async def add_partitions(self, topic: TopicAssignment, states: Mapping[int, PartitionState],
                             version: int) -> None:
        """Grow a topic: its new assignment (written only over the assignment ``version`` read)
        and the new partitions' first states, at once."""
        operations: list[Operation] = [SetData(_topic_path(topic.name), _assignment_json(topic), version)]
        await self.store.transaction(operations + _first_states(topic.name, states))

    async def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> None:
        await self.store.set(f"/config/topics/{name}", _configs_json(configs))

    # -- producer ids ---------------------------------------------------------------------------
    async def allocate_producer_ids(self, size: int) -> tuple[int, int]:
        """A block of ``size`` producer ids no other broker ever gets: (first, last), as Kafka's
        ZooKeeper-mode brokers allocate them (a conditional update of the latest block)."""
        path = "/latest_producer_id_block"
        while True:
            node = await self.store.get(path)
            first = 0 if node is None else int(json.loads(node.data)["block_end"]) + 1
            data = json.dumps({"version": 1, "broker": self.node_id, "block_start": str(first),
                               "block_end": str(first + size - 1)}).encode()
            try:
                if node is None:
                    await self.store.create(path, data)
                else:
                    await self.store.set(path, data, node.version)
                return first, first + size - 1
            except (NodeExists, BadVersion):
                continue  # another broker took that block: the next one

    # -- feature levels --------------------------------------------------------------------------
    async def watch_features(self) -> tuple[tuple[dict[str, int], int] | None, trio.Event]:
        """The finalized feature levels and the node's version (None until first set), and an event
        set at their next change."""
        node, changed = await self.store.get_watch(FEATURE_PATH)
        return (None if node is None else (_feature_levels(node.data), node.version)), changed

    async def update_features(self, changes: Mapping[str, int]) -> tuple[dict[str, int], int]:
        """Set some feature levels, keeping the others (a conditional read-modify-write, so two
        brokers' concurrent updates both land); the levels and version now."""
        while True:
            node = await self.store.get(FEATURE_PATH)
            levels = {**({} if node is None else _feature_levels(node.data)), **changes}
            data = json.dumps({"version": 2, "status": 1, "features": levels}, sort_keys=True).encode()
            try:
                if node is None:
                    await self.store.create(FEATURE_PATH, data)
                    return levels, 0
                return levels, await self.store.set(FEATURE_PATH, data, node.version)
            except (NodeExists, BadVersion):
                continue  # another broker changed them meanwhile: merge into theirs

    # -- partition state -------------------------------------------------------------------------
    async def partition_state(self, topic: str, partition: int) -> PartitionState | None:
        return (await self.watch_partition_state(topic, partition))[0]

    async def watch_partition_state(self, topic: str, partition: int) -> tuple[PartitionState | None, trio.Event]:
        node, changed = await self.store.get_watch(_state_path(topic, partition))
        return (None if node is None else PartitionState.from_json(node.data, node.version)), changed

    async def elect_leaders(self, fence: Fence, topic: str, states: Mapping[int, PartitionState]) -> None:
        """The controller's new states (leader, epoch, ISR) for partitions whose state it read: each
        is written only if it is still the version read, and all or none."""
        await self._fenced(fence, [SetData(_state_path(topic, p),
                                           replace(s, controller_epoch=fence.controller_epoch).to_json(), s.version)
                                   for p, s in sorted(states.items())])

    async def update_isr(self, topic: str, partition: int, state: PartitionState) -> PartitionState:
        """The leader's new ISR, written only if the state is still the version it read (else
        BadVersion: the controller moved leadership, or another change landed; read again)."""
        version = await self.store.set(_state_path(topic, partition), state.to_json(), state.version)
        return replace(state, version=version)
