"""The coordinator runtime, shared by the group and transaction coordinators (kbroker.groups,
kbroker.txn): an internal topic to append to and replay, deadline timers, and the ordering of
operations (kbroker.coordinator.runtime says what is guaranteed and how)."""

from .runtime import CoordinatorRuntime, InternalTopic, coordinator_error, partition_for
from .timers import Timers

__all__ = ["CoordinatorRuntime", "InternalTopic", "Timers", "coordinator_error", "partition_for"]
