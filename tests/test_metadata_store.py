"""The topic catalogue behaves the same in memory and on disk; on disk it also survives reopening."""

from __future__ import annotations

import pytest

from kbroker.metadata import FileMetadataStore, MemoryMetadataStore


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    return MemoryMetadataStore() if request.param == "memory" else FileMetadataStore(tmp_path)


def test_create_find_and_delete_topics(store):
    orders = store.create_topic("orders", 3, configs={"retention.ms": "1000"})
    assert store.get("orders") is orders and store.get_by_id(orders.topic_id) is orders
    with pytest.raises(KeyError):
        store.create_topic("orders", 1)
    store.create_topic("__consumer_offsets", 50)
    assert [t.is_internal for t in store.topics()] == [False, True]
    assert store.delete_topic("orders") is orders
    assert store.get("orders") is None and store.get_by_id(orders.topic_id) is None
    assert store.delete_topic("orders") is None


def test_partitions_and_configs_change(store):
    store.create_topic("orders", 1)
    store.set_partitions("orders", 4)
    store.set_configs("orders", {"cleanup.policy": "compact"})
    topic = store.get("orders")
    assert (topic.partitions, topic.configs) == (4, {"cleanup.policy": "compact"})


def test_file_store_survives_reopening(tmp_path):
    store = FileMetadataStore(tmp_path)
    orders = store.create_topic("orders", 3, configs={"retention.ms": "1000"})
    store.create_topic("gone", 1)
    store.delete_topic("gone")
    reopened = FileMetadataStore(tmp_path)
    assert [t.to_json() for t in reopened.topics()] == [orders.to_json()]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_pending_topic_is_recorded_but_visible_only_once_published(tmp_path):
    store = FileMetadataStore(tmp_path)
    orders = store.create_topic("orders", 3, pending=True)
    assert store.get("orders") is None and store.get_by_id(orders.topic_id) is None and store.topics() == []
    assert "orders" in store.names()  # the name is taken
    with pytest.raises(KeyError):
        store.create_topic("orders", 1)
    assert [t.name for t in FileMetadataStore(tmp_path).topics()] == ["orders"]  # on disk already
    store.publish(orders)
    assert store.get("orders") is orders and store.topics() == [orders]


def test_a_pending_partition_count_is_recorded_but_visible_only_once_published(tmp_path):
    store = FileMetadataStore(tmp_path)
    orders = store.create_topic("orders", 3)
    store.set_partitions("orders", 5, pending=True)
    assert store.get("orders").partitions == 3
    assert FileMetadataStore(tmp_path).get("orders").partitions == 5
    store.set_configs("orders", {"retention.ms": "1000"})  # a change meanwhile keeps the pending count
    assert FileMetadataStore(tmp_path).get("orders").partitions == 5
    store.publish(orders)
    assert orders.partitions == 5 and store.get("orders") is orders


def test_a_change_the_disk_refuses_is_undone_and_can_be_made_later(tmp_path, monkeypatch):
    """A full disk while recording a topic leaves no half-created name behind (issue 14, defect 3)."""
    import errno

    import kbroker.metadata.store as store_module

    store = FileMetadataStore(tmp_path)
    orders = store.create_topic("orders", 1)
    real_write = store_module.write_atomically

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module, "write_atomically", disk_full)
    for change in (lambda: store.create_topic("__consumer_offsets", 50, pending=True),
                   lambda: store.create_topic("payments", 2),
                   lambda: store.set_partitions("orders", 4, pending=True),
                   lambda: store.set_partitions("orders", 4),
                   lambda: store.set_configs("orders", {"retention.ms": "1"}),
                   lambda: store.delete_topic("orders")):
        with pytest.raises(OSError):
            change()
    assert store.names() == {"orders"}
    assert (store.get("orders").partitions, store.get("orders").configs) == (1, {})
    assert store.get_by_id(orders.topic_id) is orders

    monkeypatch.setattr(store_module, "write_atomically", real_write)  # space is back
    offsets = store.create_topic("__consumer_offsets", 50, pending=True)
    store.publish(offsets)
    assert FileMetadataStore(tmp_path).get("__consumer_offsets").partitions == 50


def test_an_abandoned_creation_or_increase_leaves_nothing(store):
    """The logs of a pending change could not be made: the catalogue forgets it (kbroker.topics)."""
    store.create_topic("orders", 2)
    grown = store.set_partitions("orders", 5, pending=True)
    created = store.create_topic("payments", 3, pending=True)
    store.abandon(grown)
    store.abandon(created)
    assert store.names() == {"orders"} and store.get("orders").partitions == 2
    store.publish(grown)  # a late publish of what was abandoned changes nothing
    assert store.get("orders").partitions == 2
    assert store.create_topic("payments", 1).partitions == 1  # the name is free again
