"""What a handler gets besides its request: the services it may use, and who is asking.

A handler never sees the Broker. It reads and changes state only through the small interfaces named
here, each owned by one component: the node's identity and endpoints, the live broker config, the
topic catalogue (read) and topic administration (create, grow, delete), the cluster's brokers and
partition leaders (``cluster``), the partition layer (appends, reads, offsets), the group and
transaction coordinators (and the check of a transactional batch's partition with its transaction's
coordinator, wherever that is), the producer id allocator, the handler registry (for ApiVersions), and the
finalized feature levels (kbroker.features). The Broker builds one Services at start; the server
builds one RequestContext per request from it, the decoded header and the connection's Session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..protocol.messages.request_header import RequestHeader

if TYPE_CHECKING:
    from pathlib import Path

    from ..config.broker import BrokerConfig
    from ..config.live import LiveConfig
    from ..features import FeatureStore
    from ..groups import GroupCoordinator
    from ..metadata import MetadataStore
    from ..metadata.cluster_info import ClusterInfo
    from ..partitions import AppendNotifier, PartitionService
    from ..topics import TopicManager
    from ..txn import ProducerIdManager, TransactionCoordinator
    from ..txn.verification import TransactionVerifier
    from .registry import Registry


@dataclass(slots=True)
class NodeInfo:
    """Who this broker is: its id, cluster, rack, data directory, and the endpoints clients are given
    (filled in once the listeners are bound, so a port 0 listener advertises its real port)."""
    node_id: int
    cluster_id: str
    rack: str | None
    data_dir: Path
    advertised_endpoints: list[tuple[str, int]] = field(default_factory=list)


class Session(Protocol):
    """The connection a request came on (kbroker.server.session implements it)."""
    client_host: str
    client_port: int
    listener_name: str
    security_protocol: str
    principal: str
    client_id: str | None  # the last request's, as dispatch records it


@dataclass(frozen=True, slots=True)
class Services:
    node: NodeInfo
    live_config: LiveConfig
    metadata: MetadataStore
    topics: TopicManager
    partitions: PartitionService
    appends: AppendNotifier
    groups: GroupCoordinator
    txns: TransactionCoordinator
    producer_ids: ProducerIdManager
    registry: Registry
    features: FeatureStore
    cluster: ClusterInfo  # brokers, controller, partition leaders (alone: this broker)
    txn_verifier: TransactionVerifier  # KIP-890's checks, asked of the transaction's coordinator


@dataclass(slots=True)
class RequestContext:
    services: Services
    header: RequestHeader
    session: Session

    @property
    def api_version(self) -> int:
        return self.header.request_api_version

    @property
    def client_id(self) -> str | None:
        return self.header.client_id

    @property
    def client_host(self) -> str:
        return self.session.client_host

    # the services, one hop away
    @property
    def node(self) -> NodeInfo:
        return self.services.node

    @property
    def config(self) -> BrokerConfig:
        return self.services.live_config.current

    @property
    def live_config(self) -> LiveConfig:
        return self.services.live_config

    @property
    def metadata(self) -> MetadataStore:
        return self.services.metadata

    @property
    def topics(self) -> TopicManager:
        return self.services.topics

    @property
    def partitions(self) -> PartitionService:
        return self.services.partitions

    @property
    def appends(self) -> AppendNotifier:
        return self.services.appends

    @property
    def groups(self) -> GroupCoordinator:
        return self.services.groups

    @property
    def txns(self) -> TransactionCoordinator:
        return self.services.txns

    @property
    def producer_ids(self) -> ProducerIdManager:
        return self.services.producer_ids

    @property
    def cluster(self) -> ClusterInfo:
        return self.services.cluster

    @property
    def txn_verifier(self) -> TransactionVerifier:
        return self.services.txn_verifier

    @property
    def registry(self) -> Registry:
        return self.services.registry

    @property
    def features(self) -> FeatureStore:
        return self.services.features
