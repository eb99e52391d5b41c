"""Producer ids that are never handed out twice, across restarts and crashes.

Like Kafka's controller, ids are reserved in blocks: the end of the current block is made durable
before any id from it is used, so after a crash the broker starts at the next block and may skip
ids, but never reuses one. Which producer id and epoch a transactional id has is the transaction
coordinator's state (kbroker.txn.coordinator, persisted in __transaction_state).

When the next block cannot be made durable (a full disk), no id is handed out: the caller is told
COORDINATOR_LOAD_IN_PROGRESS, which producers retry, as Kafka answers while its controller cannot
allocate a block; the next call tries again.

In a cluster the blocks come from the cluster (``use_cluster_blocks``: an allocation in the
coordination store, so no two brokers ever hold the same ids) instead of the local file. The call
is async and handing out an id is not, so the next block is fetched ahead, in the background, once
half of the current one is used; a broker with no block yet answers COORDINATOR_LOAD_IN_PROGRESS
while it fetches one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Awaitable, Callable

from ..durable_files import write_atomically
from ..protocol.errors import ApiError, ErrorCode

BLOCK_SIZE = 1000
log = logging.getLogger("kbroker.txn")


class ProducerIdManager:
    FILE_NAME = "kbroker-producer-ids.json"

    def __init__(self, directory: Path):
        self.path = Path(directory) / self.FILE_NAME
        state = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._next_id = self._block_end = int(state.get("reserved_until", 0))
        self._allocate: Callable[[int], Awaitable[tuple[int, int]]] | None = None
        self._spawn = None
        self._next_block: tuple[int, int] | None = None
        self._fetching = False

    def use_cluster_blocks(self, allocate: Callable[[int], Awaitable[tuple[int, int]]], spawn) -> None:
        """Take blocks from ``allocate(size) -> (first, last)`` (the cluster), fetched by tasks that
        ``spawn`` starts (a nursery's start_soon); the local blocks are not used any more."""
        self._allocate, self._spawn = allocate, spawn
        self._next_id = self._block_end = 0
        self._next_block = None
        self._fetching = False
        self._fetch_ahead()

    def _fetch_ahead(self) -> None:
        if self._allocate is not None and not self._fetching and self._next_block is None:
            self._fetching = True
            self._spawn(self._fetch_block)

    async def _fetch_block(self) -> None:
        try:
            self._next_block = await self._allocate(BLOCK_SIZE)
        except Exception as exc:  # the store is unreachable: the next call tries again
            log.warning("could not allocate producer ids from the cluster: %s", exc)
        finally:
            self._fetching = False

    def new_producer_id(self) -> int:
        """The next id; ApiError(COORDINATOR_LOAD_IN_PROGRESS) if its block cannot be reserved."""
        if self._allocate is not None:
            return self._next_cluster_id()
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

    def _next_cluster_id(self) -> int:
        if self._next_id >= self._block_end:
            if self._next_block is None:
                self._fetch_ahead()
                raise ApiError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "allocating producer ids from the cluster")
            (self._next_id, last), self._next_block = self._next_block, None
            self._block_end = last + 1
        producer_id = self._next_id
        self._next_id += 1
        if self._block_end - self._next_id < BLOCK_SIZE // 2:
            self._fetch_ahead()
        return producer_id
