"""Producer ids and (later) the transaction coordinator."""

from .producer_ids import ProducerIdManager

__all__ = ["ProducerIdManager"]
