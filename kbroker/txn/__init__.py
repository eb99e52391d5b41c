"""Producer ids and the transaction coordinator."""

from .coordinator import TransactionCoordinator
from .producer_ids import ProducerIdManager

__all__ = ["ProducerIdManager", "TransactionCoordinator"]
