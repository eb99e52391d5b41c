"""The classic consumer-group coordinator and committed offsets (persisted in __consumer_offsets)."""

from .coordinator import OFFSETS_TOPIC, GroupCoordinator

__all__ = ["GroupCoordinator", "OFFSETS_TOPIC"]
