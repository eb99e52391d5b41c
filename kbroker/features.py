"""Feature flags (KIP-584): the finalized level of each cluster-wide feature, kept across restarts.

Kafka finalizes features such as `transaction.version` (2: transactions v2, KIP-890) and
`group.version` (1: the consumer group protocol, KIP-848) in its metadata log; clients read them from
ApiVersions and pick protocols by them, and `kafka-features upgrade|downgrade` changes them
(UpdateFeatures). A broker alone keeps them in one JSON file in the data directory,
`features.json`, replaced atomically: the levels an operator set and an epoch counting the changes.
A broker in a cluster keeps the cluster's instead (``use_cluster``): the levels live in the
coordination store, any broker's UpdateFeatures changes them for all, and each broker follows them
by a watch (the epoch is the store node's version), so every broker advertises the same levels.
Which features exist, their supported ranges and their default levels are the handlers' business
(kbroker.handlers.features): this store only remembers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Awaitable, Callable

import trio

from .durable_files import write_atomically

FILE_NAME = "features.json"
log = logging.getLogger("kbroker.features")

# the cluster's levels and version (None: never set), and an event set at their next change
WatchLevels = Callable[[], Awaitable[tuple[tuple[dict[str, int], int] | None, trio.Event]]]
# set some levels in the cluster: (the levels, version) afterwards
UpdateLevels = Callable[[dict[str, int]], Awaitable[tuple[dict[str, int], int]]]


class FeatureStore:
    def __init__(self, data_dir: Path):
        self._path = Path(data_dir) / FILE_NAME
        self.epoch = 0
        self.levels: dict[str, int] = {}
        self._update: UpdateLevels | None = None
        if self._path.exists():
            stored = json.loads(self._path.read_text())
            self.epoch = int(stored["epoch"])
            self.levels = {str(name): int(level) for name, level in stored["levels"].items()}

    async def set_levels(self, levels: dict[str, int]) -> None:
        """Finalize these levels, all or none: stored before they are seen. Raises OSError when the
        local file cannot be written."""
        if self._update is not None:
            stored, version = await self._update(levels)
            self._adopt(stored, version)
            return
        merged = {**self.levels, **levels}
        write_atomically(self._path, json.dumps({"epoch": self.epoch + 1, "levels": merged}, sort_keys=True)
                         .encode())
        self.levels, self.epoch = merged, self.epoch + 1

    # -- in a cluster -------------------------------------------------------------------------------
    def use_cluster(self, watch: WatchLevels, update: UpdateLevels, spawn) -> None:
        """Follow the cluster's levels (by a task ``spawn`` starts, a session's nursery's start_soon)
        and set them there; the local file is not used any more."""
        self._update = update
        spawn(self._follow, watch)

    async def _follow(self, watch: WatchLevels) -> None:
        while True:
            found, changed = await watch()
            if found is None:
                self._adopt({}, -1)
            else:
                self._adopt(*found)
            await changed.wait()

    def _adopt(self, levels: dict[str, int], version: int) -> None:
        if levels != self.levels:
            log.info("finalized feature levels: %s", levels or "the defaults")
        self.levels, self.epoch = dict(levels), version + 1
