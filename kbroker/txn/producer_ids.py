"""Producer ids that are never handed out twice, across restarts and crashes.

Like Kafka's controller, ids are reserved in blocks: the end of the current block is made durable
before any id from it is used, so after a crash the broker starts at the next block and may skip
ids, but never reuses one. Transactional ids keep their producer id and get a new epoch on every
InitProducerId, which fences the older instance of the producer.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..metadata.store import write_atomically

BLOCK_SIZE = 1000
MAX_EPOCH = 32767


class ProducerIdManager:
    FILE_NAME = "kbroker-producer-ids.json"

    def __init__(self, directory: Path):
        self.path = Path(directory) / self.FILE_NAME
        state = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._next_id = self._block_end = int(state.get("reserved_until", 0))
        self._transactional: dict[str, list[int]] = state.get("transactional", {})

    def _save(self) -> None:
        write_atomically(self.path, json.dumps(
            {"reserved_until": self._block_end, "transactional": self._transactional}).encode())

    def new_producer_id(self) -> int:
        if self._next_id >= self._block_end:
            self._block_end = self._next_id + BLOCK_SIZE
            self._save()
        producer_id = self._next_id
        self._next_id += 1
        return producer_id

    def init_transactional(self, transactional_id: str) -> tuple[int, int]:
        """(producer id, epoch) for a transactional producer; the epoch rises on every call."""
        known = self._transactional.get(transactional_id)
        if known is None or known[1] >= MAX_EPOCH:
            known = [self.new_producer_id(), 0]
        else:
            known = [known[0], known[1] + 1]
        self._transactional[transactional_id] = known
        self._save()
        return known[0], known[1]
