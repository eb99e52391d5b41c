"""The group coordinator: the classic consumer-group protocol, KIP-848 consumer groups and committed
offsets, persisted in __consumer_offsets through the coordinator runtime (kbroker.coordinator)."""

from .coordinator import OFFSETS_TOPIC, GroupConfig, GroupCoordinator

__all__ = ["GroupConfig", "GroupCoordinator", "OFFSETS_TOPIC"]
