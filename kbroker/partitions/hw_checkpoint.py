"""The high-watermark checkpoint of a broker in a cluster: Kafka's `replication-offset-checkpoint`
file in the data directory, in the format of Kafka's other offset checkpoints (kbroker.log.checkpoint:
a version line 0, a count line, then one "<topic> <partition> <high watermark>" line per replica),
replaced atomically.

Why: a replica's high watermark is known only from its leader and followers, not from its log. A
broker that restarts and is elected leader before its followers fetch would otherwise start from
its log end offset and serve records that the rest of the ISR may not have (and a later leader may
not). With the checkpoint it starts from what was committed when it last wrote it, and the high
watermark moves on as the followers fetch, as in Kafka. Written with the recovery points
(log.flush.offset.checkpoint.interval.ms) and at shutdown; a missing or unreadable file means 0 for
every replica (safe: the high watermark only starts lower).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..log.checkpoint import read_offset_checkpoint, write_offset_checkpoint

FILE_NAME = "replication-offset-checkpoint"
log = logging.getLogger("kbroker.partitions")


def read(data_dir: Path) -> dict[tuple[str, int], int]:
    path = Path(data_dir) / FILE_NAME
    try:
        return read_offset_checkpoint(str(path))
    except OSError as exc:
        log.warning("cannot read %s (%s); high watermarks start at 0", path, exc)
        return {}


def write(data_dir: Path, high_watermarks: dict[tuple[str, int], int]) -> None:
    write_offset_checkpoint(str(Path(data_dir) / FILE_NAME), high_watermarks)
