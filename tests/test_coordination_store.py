"""The coordination store keeps ZooKeeper's promises, on the in-memory tree and on a real ZooKeeper
alike: versioned nodes, ephemeral nodes that go with their session, one-shot watches, and
transactions that apply all or nothing (a stale writer is fenced by a Check)."""

from __future__ import annotations

import pytest
import trio

from kbroker.coordination import BadVersion, Check, Create, Delete, NodeExists, NoNode, SessionClosed, SetData


async def test_nodes_are_created_read_versioned_and_deleted(sessions):
    store = await sessions.open()
    await store.create("/brokers/topics", b"", make_parents=True)
    assert await store.create("/brokers/topics/orders", b'{"partitions":1}') == "/brokers/topics/orders"
    with pytest.raises(NodeExists):
        await store.create("/brokers/topics/orders", b"again")
    node = await store.get("/brokers/topics/orders")
    assert (node.data, node.version) == (b'{"partitions":1}', 0)
    assert await store.set("/brokers/topics/orders", b"v1", version=0) == 1
    with pytest.raises(BadVersion):
        await store.set("/brokers/topics/orders", b"stale", version=0)
    assert await store.children("/brokers/topics") == ["orders"]
    await store.delete("/brokers/topics/orders", version=1)
    assert await store.get("/brokers/topics/orders") is None
    with pytest.raises(NoNode):
        await store.set("/brokers/topics/orders", b"gone")
    with pytest.raises(NoNode):
        await store.create("/no/parent/here", b"")


async def test_a_brokers_ephemeral_registration_goes_with_its_session(sessions):
    broker_1, broker_2 = await sessions.open(), await sessions.open()
    await broker_1.create("/brokers/ids", make_parents=True)
    await broker_1.create("/brokers/ids/1", b"one", ephemeral=True)
    await broker_2.create("/brokers/ids/2", b"two", ephemeral=True)
    children, changed = await broker_2.children_watch("/brokers/ids")
    assert children == ["1", "2"]
    assert (await broker_2.get("/brokers/ids/1")).ephemeral_owner == broker_1.session_id != 0
    await broker_1.close()  # broker 1 dies
    with trio.fail_after(10):
        await changed.wait()
    assert await broker_2.children("/brokers/ids") == ["2"]
    assert broker_1.lost.is_set()
    with pytest.raises(SessionClosed):
        await broker_1.get("/brokers/ids/2")


async def test_a_watch_fires_once_on_the_next_change(sessions):
    store, other = await sessions.open(), await sessions.open()
    node, created = await store.get_watch("/controller")
    assert node is None
    await other.create("/controller", b'{"brokerid":2}', ephemeral=True)
    with trio.fail_after(10):
        await created.wait()
    node, changed = await store.get_watch("/controller")
    assert node.data == b'{"brokerid":2}'
    await other.set("/controller", b'{"brokerid":3}')
    with trio.fail_after(10):
        await changed.wait()
    node, deleted = await store.get_watch("/controller")
    await other.delete("/controller")
    with trio.fail_after(10):
        await deleted.wait()
    assert await store.get("/controller") is None


async def test_a_transaction_applies_all_or_nothing_and_a_check_fences_a_stale_writer(sessions):
    store = await sessions.open()
    await store.create("/controller_epoch", b"1")
    await store.create("/state", b"leader=1")
    epoch_version = (await store.get("/controller_epoch")).version
    await store.transaction([Check("/controller_epoch", epoch_version), SetData("/state", b"leader=2"),
                             Create("/state-log", b"moved")])
    assert (await store.get("/state")).data == b"leader=2"
    await store.set("/controller_epoch", b"2")  # a new controller was elected
    with pytest.raises(BadVersion):
        await store.transaction([Check("/controller_epoch", epoch_version), SetData("/state", b"leader=3"),
                                 Delete("/state-log")])
    assert (await store.get("/state")).data == b"leader=2"  # nothing of the stale write landed
    assert (await store.get("/state-log")).data == b"moved"


async def test_a_wait_on_a_watch_can_be_cancelled(sessions):
    store = await sessions.open()
    _, never = await store.get_watch("/nothing-ever-happens")
    with trio.move_on_after(0.2) as waited:
        await never.wait()
    assert waited.cancelled_caught


async def test_sequential_nodes_are_numbered_in_order(sessions):
    store = await sessions.open()
    await store.create("/isr_change_notification", make_parents=True)
    first = await store.create("/isr_change_notification/isr_change_", b"a", sequence=True)
    second = await store.create("/isr_change_notification/isr_change_", b"b", sequence=True)
    assert first < second and first.startswith("/isr_change_notification/isr_change_")
    await store.delete("/isr_change_notification", recursive=True)
    assert await store.get("/isr_change_notification") is None
