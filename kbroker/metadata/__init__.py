"""Cluster metadata: topics, their partitions, ids and config overrides, and the node's identity."""

from .store import FileMetadataStore, MemoryMetadataStore, MetadataStore, Topic
from .topic_names import validate_topic_name

__all__ = ["FileMetadataStore", "MemoryMetadataStore", "MetadataStore", "Topic", "validate_topic_name"]
