"""Coordination of a cluster of brokers: which brokers are alive, who is the controller (and its
epoch, which fences a stale one), which topics and partition assignments exist, and each partition's
leader, leader epoch and in-sync replicas.

It runs on an existing engine, never a home-made consensus: ZooKeeper through kazoo
(kbroker.coordination.zookeeper), or, for several brokers inside one Python process (tests, local
development), an in-memory tree with ZooKeeper's semantics (kbroker.coordination.store). The cluster
logic (kbroker.coordination.cluster) is written once against the store interface.
"""

from .store import (BadVersion, Check, CoordinationError, Create, Delete, MemoryStore, MemoryTree, Node, NodeExists,
                    NoNode, SessionClosed, SetData, Store)

__all__ = ["BadVersion", "Check", "CoordinationError", "Create", "Delete", "MemoryStore", "MemoryTree", "Node",
           "NodeExists", "NoNode", "SessionClosed", "SetData", "Store"]
