"""Kafka 4.x topic config definitions and topic -> broker synonyms, as data.

Theory of operation: `TOPIC_CONFIGS` lists every config a topic may carry
(Kafka's LogConfig), in Kafka's definition order, which is also the order in
which Kafka validates them and so decides which error is reported first.
`TOPIC_SYNONYMS` maps a topic config to the broker configs that supply its
default, highest precedence first, with a unit conversion where the broker
config counts hours or minutes.  Logic lives in `topic.py`.

Facts come from Apache Kafka 4.1 (LogConfig, TopicConfig, ServerTopicConfigSynonyms), and from the
4.4.0 jars for the configs 4.4 added (max.decompressed.message.bytes, remote.copy.lag.*, errors.deadletterqueue.*).
`message.downconversion.enable` and `message.format.version` are gone in 4.x:
Kafka answers "Unknown topic config name" for them, and so does kbroker.
"""

from .types import (BOOLEAN, DOUBLE, GZIP_LEVEL, INT, LIST, LONG, LONG_MAX, STRING,
                    THROTTLED_REPLICAS, C, M, at_least, between, list_of, one_of)

TOPIC_CONFIGS = [
    C('segment.bytes', INT, 1073741824, at_least(1048576), M,
      'Size at which a log segment is closed and a new one started.'),
    C('segment.ms', LONG, 604800000, at_least(1), M,
      'Age at which the active segment is rolled even if not full.'),
    C('segment.jitter.ms', LONG, 0, at_least(0), M,
      'Random reduction of segment.ms to avoid synchronous rolls.'),
    C('segment.index.bytes', INT, 10485760, at_least(4), M,
      'Size of the offset index file of a segment.'),
    C('flush.messages', LONG, LONG_MAX, at_least(1), M,
      'Records appended before a forced fsync.'),
    C('flush.ms', LONG, LONG_MAX, at_least(0), M,
      'Time after which unflushed data is fsynced.'),
    C('retention.bytes', LONG, -1, None, M,
      'Partition size above which old segments are deleted (-1 = unlimited).'),
    C('retention.ms', LONG, 604800000, at_least(-1), M,
      'Age above which old segments are deleted (-1 = forever).'),
    C('max.message.bytes', INT, 1048588, at_least(0), M,
      'Largest record batch accepted.'),
    C('max.decompressed.message.bytes', INT, 2147483639, between(1, 2147483639), M,
      'Largest decompressed size of one record the broker accepts.'),
    C('index.interval.bytes', INT, 4096, at_least(0), M,
      'Bytes between offset index entries.'),
    C('delete.retention.ms', LONG, 86400000, at_least(0), M,
      'How long tombstones stay in a compacted topic.'),
    C('min.compaction.lag.ms', LONG, 0, at_least(0), M,
      'Smallest age of a record before it may be compacted.'),
    C('max.compaction.lag.ms', LONG, LONG_MAX, at_least(1), M,
      'Largest age of a record before compaction is forced.'),
    C('file.delete.delay.ms', LONG, 60000, at_least(0), M,
      "Delay before a deleted segment's files are removed."),
    C('min.cleanable.dirty.ratio', DOUBLE, 0.5, between(0, 1), M,
      'Dirty fraction of a log that triggers compaction.'),
    C('cleanup.policy', LIST, 'delete', list_of("compact", "delete"), M,
      'delete (by retention), compact (by key), or both.'),
    C('unclean.leader.election.enable', BOOLEAN, False, None, M,
      'Allow out-of-sync replicas to become leader (may lose data).'),
    C('min.insync.replicas', INT, 1, at_least(1), M,
      'Replicas that must acknowledge an acks=all write.'),
    C('compression.type', STRING, 'producer', one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), M,
      'Broker default for compression.type.'),
    C('compression.gzip.level', INT, -1, GZIP_LEVEL, M,
      'Broker default for compression.gzip.level.'),
    C('compression.lz4.level', INT, 9, between(1, 17), M,
      'Broker default for compression.lz4.level.'),
    C('compression.zstd.level', INT, 3, between(-131072, 22), M,
      'Broker default for compression.zstd.level.'),
    C('preallocate', BOOLEAN, False, None, M,
      'Preallocate segment files on creation.'),
    C('message.timestamp.type', STRING, 'CreateTime', one_of('CreateTime', 'LogAppendTime'), M,
      "CreateTime (producer's) or LogAppendTime (broker's) timestamps."),
    C('message.timestamp.before.max.ms', LONG, LONG_MAX, at_least(0), M,
      'How far in the past a CreateTime timestamp may be.'),
    C('message.timestamp.after.max.ms', LONG, 3600000, at_least(0), M,
      'How far in the future a CreateTime timestamp may be.'),
    C('leader.replication.throttled.replicas', LIST, '', THROTTLED_REPLICAS, M,
      'Replicas throttled on the leader side (partition:broker list or *).'),
    C('follower.replication.throttled.replicas', LIST, '', THROTTLED_REPLICAS, M,
      'Replicas throttled on the follower side (partition:broker list or *).'),
    C('remote.storage.enable', BOOLEAN, False, None, M,
      'Use tiered storage for this topic.'),
    C('local.retention.ms', LONG, -2, at_least(-2), M,
      'Local retention before data is only in remote storage (-2 = retention.ms).'),
    C('local.retention.bytes', LONG, -2, at_least(-2), M,
      'Local size before data is only in remote storage (-2 = retention.bytes).'),
    C('remote.log.copy.disable', BOOLEAN, False, None, M,
      'Stop copying new segments of this topic to remote storage.'),
    C('remote.copy.lag.ms', LONG, 0, at_least(-1), M,
      'Age after which a closed segment may be copied to remote storage (-1 = local.retention.ms).'),
    C('remote.copy.lag.bytes', LONG, -1, at_least(-1), M,
      'Newer local data after which a closed segment may be copied to remote storage.'),
    C('remote.log.delete.on.disable', BOOLEAN, False, None, M,
      'Delete remote data when tiered storage is turned off for the topic.'),
    C('errors.deadletterqueue.group.enable', BOOLEAN, False, None, M,
      'Whether share groups may use this topic as a dead-letter queue.'),
    C('internal.segment.bytes', INT, None, None, M,
      'Internal: segment size override for tests.', internal=True),
]

MS = 1
MINUTES = 60 * 1000
HOURS = 60 * MINUTES

# topic config -> [(broker config, multiplier to milliseconds or 1)], first wins.
TOPIC_SYNONYMS = {
    "segment.bytes": [("log.segment.bytes", 1)],
    "segment.ms": [("log.roll.ms", MS), ("log.roll.hours", HOURS)],
    "segment.jitter.ms": [("log.roll.jitter.ms", MS), ("log.roll.jitter.hours", HOURS)],
    "segment.index.bytes": [("log.index.size.max.bytes", 1)],
    "flush.messages": [("log.flush.interval.messages", 1)],
    "flush.ms": [("log.flush.interval.ms", MS), ("log.flush.scheduler.interval.ms", MS)],
    "retention.bytes": [("log.retention.bytes", 1)],
    "retention.ms": [("log.retention.ms", MS), ("log.retention.minutes", MINUTES),
                     ("log.retention.hours", HOURS)],
    "max.message.bytes": [("message.max.bytes", 1)],
    "index.interval.bytes": [("log.index.interval.bytes", 1)],
    "delete.retention.ms": [("log.cleaner.delete.retention.ms", 1)],
    "min.compaction.lag.ms": [("log.cleaner.min.compaction.lag.ms", 1)],
    "max.compaction.lag.ms": [("log.cleaner.max.compaction.lag.ms", 1)],
    "file.delete.delay.ms": [("log.segment.delete.delay.ms", 1)],
    "min.cleanable.dirty.ratio": [("log.cleaner.min.cleanable.ratio", 1)],
    "cleanup.policy": [("log.cleanup.policy", 1)],
    "unclean.leader.election.enable": [("unclean.leader.election.enable", 1)],
    "min.insync.replicas": [("min.insync.replicas", 1)],
    "compression.type": [("compression.type", 1)],
    "compression.gzip.level": [("compression.gzip.level", 1)],
    "compression.lz4.level": [("compression.lz4.level", 1)],
    "compression.zstd.level": [("compression.zstd.level", 1)],
    "preallocate": [("log.preallocate", 1)],
    "message.timestamp.type": [("log.message.timestamp.type", 1)],
    "message.timestamp.before.max.ms": [("log.message.timestamp.before.max.ms", 1)],
    "message.timestamp.after.max.ms": [("log.message.timestamp.after.max.ms", 1)],
    "local.retention.ms": [("log.local.retention.ms", 1)],
    "local.retention.bytes": [("log.local.retention.bytes", 1)],
    "remote.copy.lag.ms": [("log.remote.copy.lag.ms", 1)],
    "remote.copy.lag.bytes": [("log.remote.copy.lag.bytes", 1)],
    "max.decompressed.message.bytes": [("max.decompressed.message.bytes", 1)],
}

# Topic configs kbroker honours; the rest are stored and described but have no effect.
IMPLEMENTED_TOPIC_CONFIGS = frozenset({
    "segment.bytes", "segment.ms", "segment.jitter.ms", "segment.index.bytes",
    "flush.messages", "flush.ms", "retention.bytes", "retention.ms", "max.message.bytes",
    "index.interval.bytes", "delete.retention.ms", "min.compaction.lag.ms",
    "max.compaction.lag.ms", "file.delete.delay.ms", "min.cleanable.dirty.ratio",
    "cleanup.policy", "min.insync.replicas", "unclean.leader.election.enable", "compression.type",
    "compression.gzip.level", "compression.lz4.level", "compression.zstd.level", "preallocate",
    "message.timestamp.type", "message.timestamp.before.max.ms", "message.timestamp.after.max.ms",
})
