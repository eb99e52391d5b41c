"""The partition layer: between the handlers and the log, per partition (Kafka's ReplicaManager and
Partition, for the one broker that leads every partition).

Handlers reach a partition only through here: ``PartitionService.partition(topic, index,
current_leader_epoch)`` gives the ``Partition``, which holds the leader epoch, the log start offset,
the log end offset and the high watermark. Produce appends through it and acks=-1 waits on its high
watermark; Fetch and ListOffsets read up to the high watermark through it; DeleteRecords moves its
log start offset. Unknown topics and partitions, leader epoch checks and storage errors
(KAFKA_STORAGE_ERROR for an OSError, per partition) are answered here.

    service.py    lookups, Partition objects, the logs kept in step with the catalogue, log configs
    partition.py  one partition: epochs, offsets, append, acks wait, bounded reads, storage errors
    appends.py    the notifier that wakes long-polling fetches

This is the seam where replication lives next: leadership and leader epochs changing, the ISR and
followers' fetch positions, a high watermark that lags the log end offset (see partition.py).
"""

from .appends import AppendNotifier
from .partition import NO_EPOCH, Partition
from .service import PartitionService, topic_log_config

__all__ = ["AppendNotifier", "NO_EPOCH", "Partition", "PartitionService", "topic_log_config"]
