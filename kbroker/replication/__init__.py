"""Replication: a broker's part in a cluster -- its membership (one coordination session at a
time: registration, controller campaign), the ReplicaManager that makes its replicas lead or follow
as the cluster's partition states say, the fetchers that copy leaders' logs (Kafka's follower
Fetch, truncation by OffsetForLeaderEpoch), topic administration recorded in the cluster, and the
handlers' view of the cluster's brokers and leaders.

    member.py        ClusterMembership: sessions, registration, controller, controlled shutdown
    manager.py       ReplicaManager: partition states -> leader / follower; ISR writes; lag checks
    fetcher.py       LeaderFetcher: truncation, then follower fetches from one leader
    client.py        BrokerChannel: a broker's Kafka-protocol connection to another
    topics.py        ClusterTopics: create / grow / delete topics in the coordination store
    cluster_info.py  ClusterViewInfo: brokers, controller, partition leaders for the handlers

The leader's side (followers' positions, the high watermark, the ISR rules) is the partition
layer's (kbroker.partitions); the cluster state and the controller are kbroker.coordination's.
"""

from .fetcher import FetcherConfig
from .member import ClusterMembership

__all__ = ["ClusterMembership", "FetcherConfig"]
