"""Feature flags (KIP-584): the finalized level of each cluster-wide feature, kept across restarts.

Kafka finalizes features such as `transaction.version` (2: transactions v2, KIP-890) and
`group.version` (1: the consumer group protocol, KIP-848) in its metadata log; clients read them from
ApiVersions and pick protocols by them, and `kafka-features upgrade|downgrade` changes them
(UpdateFeatures). Here one JSON file in the data directory, `features.json`, replaced atomically,
holds the levels an operator set and an epoch counting the changes. Which features exist, their
supported ranges and their default levels are the handlers' business (kbroker.handlers.features):
this store only remembers.
"""

from __future__ import annotations

import json
from pathlib import Path

from .durable_files import write_atomically

FILE_NAME = "features.json"


class FeatureStore:
    def __init__(self, data_dir: Path):
        self._path = Path(data_dir) / FILE_NAME
        self.epoch = 0
        self.levels: dict[str, int] = {}
        if self._path.exists():
            stored = json.loads(self._path.read_text())
            self.epoch = int(stored["epoch"])
            self.levels = {str(name): int(level) for name, level in stored["levels"].items()}

    def set_levels(self, levels: dict[str, int]) -> None:
        """Finalize these levels, all or none: on disk before they are seen."""
        merged = {**self.levels, **levels}
        write_atomically(self._path, json.dumps({"epoch": self.epoch + 1, "levels": merged}, sort_keys=True)
                         .encode())
        self.levels, self.epoch = merged, self.epoch + 1
