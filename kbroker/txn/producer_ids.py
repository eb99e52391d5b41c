"""Producer ids that are never handed out twice, across restarts and crashes.

Like Kafka's controller, ids are reserved in blocks: the end of the current block is made durable
before any id from it is used, so after a crash the broker starts at the next block and may skip
ids, but never reuses one. Which producer id and epoch a transactional id has is the transaction
coordinator's state (kbroker.txn.coordinator, persisted in __transaction_state).

When the next block cannot be made durable (a full disk), no id is handed out: the caller is told
COORDINATOR_LOAD_IN_PROGRESS, which producers retry, as Kafka answers while its controller cannot
allocate a block; the next call tries again.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..durable_files import write_atomically
from ..protocol.errors import ApiError, ErrorCode

BLOCK_SIZE = 1000


class ProducerIdManager:
    FILE_NAME = "kbroker-producer-ids.json"

    def __init__(self, directory: Path):
        self.path = Path(directory) / self.FILE_NAME
        state = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._next_id = self._block_end = int(state.get("reserved_until", 0))

    def new_producer_id(self) -> int:
        """The next id; ApiError(COORDINATOR_LOAD_IN_PROGRESS) if its block cannot be reserved."""
        if self._next_id >= self._block_end:
            block_end = self._next_id + BLOCK_SIZE
            try:
                write_atomically(self.path, json.dumps({"reserved_until": block_end}).encode())
            except OSError as exc:
                raise ApiError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
                               f"could not reserve producer ids: {exc.strerror or exc}") from exc
            self._block_end = block_end
        producer_id = self._next_id
        self._next_id += 1
        return producer_id
