"""Producer ids and the transaction coordinator (on the coordinator runtime, kbroker.coordinator)."""

from .coordinator import TransactionConfig, TransactionCoordinator
from .producer_ids import ProducerIdManager

__all__ = ["ProducerIdManager", "TransactionConfig", "TransactionCoordinator"]
