"""Shared fixtures. The coordination scenarios run the same tests on the in-memory tree and on a real
ZooKeeper server (one per test session, each test in its own chroot)."""

from __future__ import annotations

import uuid

import pytest

from kbroker.coordination import MemoryTree
from kbroker.coordination.zookeeper import ZooKeeperStore
from kbroker.testing_zookeeper import ZooKeeperServer


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory):
    with ZooKeeperServer(tmp_path_factory.mktemp("zookeeper")) as server:
        yield server


class Sessions:
    """Opens sessions on one store (several brokers' views of one cluster); closes them at the end."""

    def __init__(self, kind: str, zookeeper_server=None):
        self.kind = kind
        self.tree = MemoryTree() if kind == "memory" else None
        self.connect = f"{zookeeper_server.connect}/kbroker-test-{uuid.uuid4().hex[:8]}" if zookeeper_server else None
        self.opened: list = []

    async def open(self):
        store = self.tree.session() if self.tree is not None else await ZooKeeperStore.connect(self.connect)
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


@pytest.fixture(params=["memory", "zookeeper"])
async def sessions(request):
    server = request.getfixturevalue("zookeeper_server") if request.param == "zookeeper" else None
    opened = Sessions(request.param, server)
    try:
        yield opened
    finally:
        await opened.close_all()
