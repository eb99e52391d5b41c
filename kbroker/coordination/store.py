"""The coordination store: a tree of versioned nodes with sessions, ephemeral nodes, one-shot watches
and atomic transactions — the part of ZooKeeper's model that a Kafka cluster's coordination needs.

Two implementations pass the same scenario tests (tests/test_coordination_*.py): MemoryStore, one
tree in this process shared by every broker of an in-process cluster (each broker has its own
session: closing it removes the broker's ephemeral nodes, as a ZooKeeper session expiry does), and
ZooKeeperStore (kbroker.coordination.zookeeper), the same calls on a real ZooKeeper through kazoo.
The cluster logic on top (kbroker.coordination.cluster) is written once, against this interface.

Semantics, as ZooKeeper's:
- a node has bytes and a version that every set() bumps; set/delete/check with version=-1 match any;
- create() fails with NodeExists, get() of a missing node is None, set/delete of one NoNode;
  a stale version is BadVersion; a child of an ephemeral node cannot be created;
- a watch fires once, on the next change of what was read: the node's data, creation or deletion
  (get_watch), or the set of its children (children_watch); the caller reads again to see what
  changed and to set the next watch;
- transaction() applies every operation or none (a Check in it fences a stale writer: Kafka's
  controller checks its controller-epoch node this way before every write).
Every call is a trio coroutine and every wait (a watch) is cancellable.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Protocol, Sequence, Union

import trio


class CoordinationError(Exception):
    """The store refused an operation."""


class NodeExists(CoordinationError):
    pass


class NoNode(CoordinationError):
    pass


class BadVersion(CoordinationError):
    pass


class SessionClosed(CoordinationError):
    """The session is gone (closed, or expired on the server): its ephemeral nodes are deleted."""


@dataclass(frozen=True, slots=True)
class Node:
    data: bytes
    version: int
    ephemeral_owner: int = 0  # the session that owns an ephemeral node, else 0


@dataclass(frozen=True, slots=True)
class Create:
    path: str
    data: bytes = b""
    ephemeral: bool = False


@dataclass(frozen=True, slots=True)
class SetData:
    path: str
    data: bytes
    version: int = -1


@dataclass(frozen=True, slots=True)
class Delete:
    path: str
    version: int = -1


@dataclass(frozen=True, slots=True)
class Check:
    path: str
    version: int


Operation = Union[Create, SetData, Delete, Check]


class Store(Protocol):
    """One session's view of the coordination store."""

    session_id: int
    lost: trio.Event  # set once the session is gone (closed, or expired by the server)

    async def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False,
                     sequence: bool = False, make_parents: bool = False) -> str: ...
    async def get(self, path: str) -> Node | None: ...
    async def get_watch(self, path: str) -> tuple[Node | None, trio.Event]: ...
    async def children(self, path: str) -> list[str]: ...
    async def children_watch(self, path: str) -> tuple[list[str], trio.Event]: ...
    async def set(self, path: str, data: bytes, version: int = -1) -> int: ...
    async def delete(self, path: str, version: int = -1, *, recursive: bool = False) -> None: ...
    async def transaction(self, operations: Sequence[Operation]) -> None: ...
    async def close(self) -> None: ...


def parent_of(path: str) -> str:
    parent = path.rsplit("/", 1)[0]
    return parent or "/"


def _check_path(path: str) -> None:
    if not path.startswith("/") or (path != "/" and path.endswith("/")) or "//" in path:
        raise ValueError(f"invalid node path {path!r}")


@dataclass
class _Entry:
    data: bytes
    version: int = 0
    owner: int = 0
    children: set[str] = field(default_factory=set)
    sequence: int = 0  # the next sequential child number


class MemoryTree:
    """The shared tree of an in-process cluster; each broker opens its own session on it."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Entry] = {"/": _Entry(b"")}
        self._data_watches: dict[str, list[trio.Event]] = {}
        self._child_watches: dict[str, list[trio.Event]] = {}
        self._sessions = itertools.count(1)

    def session(self) -> MemoryStore:
        return MemoryStore(self, next(self._sessions))

    # -- watches --------------------------------------------------------------------------
    def _fire(self, watches: dict[str, list[trio.Event]], path: str) -> None:
        for event in watches.pop(path, ()):
            event.set()

    def _watch(self, watches: dict[str, list[trio.Event]], path: str) -> trio.Event:
        event = trio.Event()
        watches.setdefault(path, []).append(event)
        return event

    # -- the operations, synchronous and atomic (no checkpoint inside) ------------------------
    def _validate(self, op: Operation, session: int, created: set[str], deleted: set[str]) -> None:
        """Raise what applying `op` would raise, given the paths earlier operations create or delete."""
        exists = (op.path in self._nodes or op.path in created) and op.path not in deleted
        if isinstance(op, Create):
            _check_path(op.path)
            if exists:
                raise NodeExists(op.path)
            parent = parent_of(op.path)
            if (parent not in self._nodes and parent not in created) or parent in deleted:
                raise NoNode(parent)
            if parent in self._nodes and self._nodes[parent].owner:
                raise CoordinationError(f"ephemeral node {parent} cannot have children")
            created.add(op.path)
            deleted.discard(op.path)
            return
        if not exists:
            raise NoNode(op.path)
        entry = self._nodes.get(op.path)
        if op.version != -1 and entry is not None and op.path not in created and entry.version != op.version:
            raise BadVersion(f"{op.path}: version {entry.version}, expected {op.version}")
        if isinstance(op, Delete):
            if entry is not None and {f"{op.path}/{child}" for child in entry.children} - deleted:
                raise CoordinationError(f"node {op.path} has children")
            deleted.add(op.path)

    def apply(self, operations: Sequence[Operation], session: int) -> list[str]:
        created: set[str] = set()
        deleted: set[str] = set()
        for op in operations:
            self._validate(op, session, created, deleted)
        return [self._apply(op, session) for op in operations]

    def _apply(self, op: Operation, session: int) -> str:
        if isinstance(op, Create):
            self._nodes[op.path] = _Entry(op.data, owner=session if op.ephemeral else 0)
            parent = parent_of(op.path)
            self._nodes[parent].children.add(op.path.rsplit("/", 1)[1])
            self._fire(self._data_watches, op.path)
            self._fire(self._child_watches, parent)
        elif isinstance(op, SetData):
            entry = self._nodes[op.path]
            entry.data, entry.version = op.data, entry.version + 1
            self._fire(self._data_watches, op.path)
        elif isinstance(op, Delete):
            self._remove(op.path)
        return op.path

    def _remove(self, path: str) -> None:
        del self._nodes[path]
        parent = parent_of(path)
        self._nodes[parent].children.discard(path.rsplit("/", 1)[1])
        self._fire(self._data_watches, path)
        self._fire(self._child_watches, path)
        self._fire(self._child_watches, parent)

    def next_sequential(self, path: str) -> str:
        parent = self._nodes.get(parent_of(path))
        if parent is None:
            raise NoNode(parent_of(path))
        number, parent.sequence = parent.sequence, parent.sequence + 1
        return f"{path}{number:010d}"

    def end_session(self, session: int) -> None:
        for path in sorted((p for p, e in self._nodes.items() if e.owner == session), reverse=True):
            self._remove(path)


class MemoryStore:
    """A session on a MemoryTree. Every call completes at once (one checkpoint, so it behaves like a
    call that goes over the network: other tasks run, and cancellation lands)."""

    def __init__(self, tree: MemoryTree, session_id: int):
        self.tree = tree
        self.session_id = session_id
        self.closed = False
        self.lost = trio.Event()

    async def _enter(self) -> MemoryTree:
        await trio.lowlevel.checkpoint()
        if self.closed:
            raise SessionClosed(f"session {self.session_id} is closed")
        return self.tree

    async def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False,
                     sequence: bool = False, make_parents: bool = False) -> str:
        tree = await self._enter()
        if make_parents:
            missing = []
            parent = parent_of(path)
            while parent not in tree._nodes:
                missing.append(parent)
                parent = parent_of(parent)
            for ancestor in reversed(missing):
                tree.apply([Create(ancestor)], self.session_id)
        if sequence:
            path = tree.next_sequential(path)
        return tree.apply([Create(path, data, ephemeral)], self.session_id)[0]

    async def get(self, path: str) -> Node | None:
        tree = await self._enter()
        entry = tree._nodes.get(path)
        return None if entry is None else Node(entry.data, entry.version, entry.owner)

    async def get_watch(self, path: str) -> tuple[Node | None, trio.Event]:
        node = await self.get(path)
        return node, self.tree._watch(self.tree._data_watches, path)

    async def children(self, path: str) -> list[str]:
        tree = await self._enter()
        entry = tree._nodes.get(path)
        if entry is None:
            raise NoNode(path)
        return sorted(entry.children)

    async def children_watch(self, path: str) -> tuple[list[str], trio.Event]:
        children = await self.children(path)
        return children, self.tree._watch(self.tree._child_watches, path)

    async def set(self, path: str, data: bytes, version: int = -1) -> int:
        tree = await self._enter()
        tree.apply([SetData(path, data, version)], self.session_id)
        return tree._nodes[path].version

    async def delete(self, path: str, version: int = -1, *, recursive: bool = False) -> None:
        tree = await self._enter()
        if recursive and path in tree._nodes:
            below = sorted((p for p in tree._nodes if p.startswith(path + "/")), key=len, reverse=True)
            tree.apply([Delete(p) for p in below] + [Delete(path, version)], self.session_id)
        else:
            tree.apply([Delete(path, version)], self.session_id)

    async def transaction(self, operations: Sequence[Operation]) -> None:
        tree = await self._enter()
        tree.apply(operations, self.session_id)

    async def close(self) -> None:
        """End the session: its ephemeral nodes go, as when a broker's ZooKeeper session expires."""
        if not self.closed:
            self.closed = True
            self.tree.end_session(self.session_id)
            self.lost.set()
