"""The coordination store on a real ZooKeeper, through kazoo (kbroker.coordination.store describes
the interface; the same scenario tests run against this and the in-memory tree).

kazoo is a threaded client: its calls block, and its watch callbacks and connection-state listener
run on its own threads. This module is the one edge where those threads meet trio:
- every call runs in a worker thread (trio.to_thread.run_sync, abandoned on cancel, so a cancelled
  wait returns at once; a write already sent to ZooKeeper may still land, which is why every write
  that matters is conditional: a version, a Check of the controller epoch);
- a watch callback and a lost session are handed to the event loop with the trio token
  (run_sync_soon), which only sets a trio.Event: no kbroker code ever runs on a kazoo thread.
`zookeeper.connect` is Kafka's `host:port[,host:port...][/chroot]`; the chroot is created if missing.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Sequence

import trio

from .store import (BadVersion, Check, CoordinationError, Create, Delete, Node, NodeExists, NoNode, Operation,
                    SessionClosed, SetData)

log = logging.getLogger("kbroker.coordination")


def _translate(exc: Exception) -> Exception:
    from kazoo import exceptions as zk

    if isinstance(exc, zk.NodeExistsError):
        return NodeExists(str(exc))
    if isinstance(exc, zk.NoNodeError):
        return NoNode(str(exc))
    if isinstance(exc, zk.BadVersionError):
        return BadVersion(str(exc))
    if isinstance(exc, (zk.SessionExpiredError, zk.ConnectionClosedError)):
        return SessionClosed(str(exc))
    if isinstance(exc, zk.KazooException):
        return CoordinationError(f"{type(exc).__name__}: {exc}")
    return exc


class ZooKeeperStore:
    def __init__(self, client: Any, token: trio.lowlevel.TrioToken):
        self._zk = client
        self._token = token
        self.session_id: int = client.client_id[0] if client.client_id else 0
        self.lost = trio.Event()  # set when ZooKeeper expired the session (its ephemeral nodes are gone)
        client.add_listener(self._state_changed)

    @classmethod
    async def connect(cls, connect: str, *, timeout: float = 10.0,
                      session_timeout: float = 18.0) -> ZooKeeperStore:
        """A session on the ensemble `connect` (Kafka's zookeeper.connect syntax)."""
        from kazoo.client import KazooClient

        hosts, _, chroot = connect.partition("/")
        if chroot:
            await cls._ensure_chroot(hosts, "/" + chroot, timeout)
        client = KazooClient(hosts=connect, timeout=session_timeout)
        try:
            await trio.to_thread.run_sync(functools.partial(client.start, timeout=timeout), abandon_on_cancel=True)
        except Exception as exc:
            raise CoordinationError(f"could not connect to ZooKeeper at {connect}: {exc}") from exc
        return cls(client, trio.lowlevel.current_trio_token())

    @staticmethod
    async def _ensure_chroot(hosts: str, chroot: str, timeout: float) -> None:
        from kazoo.client import KazooClient

        def ensure() -> None:
            client = KazooClient(hosts=hosts)
            client.start(timeout=timeout)
            try:
                client.ensure_path(chroot)
            finally:
                client.stop()
                client.close()

        await trio.to_thread.run_sync(ensure, abandon_on_cancel=True)

    def _state_changed(self, state: str) -> None:  # on a kazoo thread
        if state == "LOST":
            self._token.run_sync_soon(self.lost.set)

    def _watcher(self, event: trio.Event) -> Callable[[Any], None]:
        def fired(_watched_event: Any) -> None:  # on a kazoo thread
            try:
                self._token.run_sync_soon(event.set)
            except trio.RunFinishedError:
                pass
        return fired

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.lost.is_set():
            raise SessionClosed("the ZooKeeper session expired")
        try:
            return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), abandon_on_cancel=True)
        except Exception as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    # -- the Store interface ----------------------------------------------------------------
    async def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False,
                     sequence: bool = False, make_parents: bool = False) -> str:
        return await self._call(self._zk.create, path, data, ephemeral=ephemeral, sequence=sequence,
                                makepath=make_parents)

    async def get(self, path: str) -> Node | None:
        try:
            data, stat = await self._call(self._zk.get, path)
        except NoNode:
            return None
        return Node(data, stat.version, stat.ephemeralOwner)

    async def get_watch(self, path: str) -> tuple[Node | None, trio.Event]:
        event = trio.Event()
        watch = self._watcher(event)
        while True:
            try:
                data, stat = await self._call(self._zk.get, path, watch=watch)
                return Node(data, stat.version, stat.ephemeralOwner), event
            except NoNode:
                # watch for its creation; if it was created meanwhile, read it again
                if await self._call(self._zk.exists, path, watch=watch) is None:
                    return None, event

    async def children(self, path: str) -> list[str]:
        return sorted(await self._call(self._zk.get_children, path))

    async def children_watch(self, path: str) -> tuple[list[str], trio.Event]:
        event = trio.Event()
        children = await self._call(self._zk.get_children, path, watch=self._watcher(event))
        return sorted(children), event

    async def set(self, path: str, data: bytes, version: int = -1) -> int:
        stat = await self._call(self._zk.set, path, data, version=version)
        return stat.version

    async def delete(self, path: str, version: int = -1, *, recursive: bool = False) -> None:
        await self._call(self._zk.delete, path, version=version, recursive=recursive)

    async def transaction(self, operations: Sequence[Operation]) -> None:
        def commit() -> list[Any]:
            transaction = self._zk.transaction()
            for op in operations:
                if isinstance(op, Create):
                    transaction.create(op.path, op.data, ephemeral=op.ephemeral)
                elif isinstance(op, SetData):
                    transaction.set_data(op.path, op.data, version=op.version)
                elif isinstance(op, Delete):
                    transaction.delete(op.path, version=op.version)
                elif isinstance(op, Check):
                    transaction.check(op.path, op.version)
            return transaction.commit()

        from kazoo.exceptions import RolledBackError

        results = await self._call(commit)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, RolledBackError):
                raise _translate(result)

    async def close(self) -> None:
        def stop() -> None:
            self._zk.stop()
            self._zk.close()

        with trio.CancelScope(shield=True):  # a session is always ended, so its ephemeral nodes go now
            await trio.to_thread.run_sync(stop)
        self.lost.set()
