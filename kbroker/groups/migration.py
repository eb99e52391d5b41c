"""Online upgrade and downgrade between a classic group and a KIP-848 consumer group (Kafka 4.4's
group.consumer.migration.policy), as pure conversions: a group of one kind in, the other kind and
the `__consumer_offsets` records that persist the change out. Who converts when is the
coordinator's (kbroker.groups.coordinator, kbroker.groups.consumer_protocol).

Upgrade (Kafka's ConsumerGroup.fromClassicGroup): a classic group using the consumer protocol type
becomes a consumer group at group and assignment epoch = its generation; each member keeps the
partitions of its last SyncGroup assignment as its current and target assignment (Stable at that
epoch), its subscription is read from its JoinGroup metadata, and its session timeout and
protocols are kept in the member metadata's ClassicMemberMetadata. The records: the classic
group's tombstone, then every member's metadata, the group epoch, every member's target, the
target epoch and every member's current assignment.

Downgrade (Kafka's ClassicGroup.fromConsumerGroup): the classic members of a consumer group whose
last consumer-protocol member leaves become a Stable classic group at generation = group epoch,
each with its target assignment encoded as a ConsumerProtocolAssignment of its subscription's
version; the records are the consumer group's tombstones and the classic group's metadata. The
coordinator then starts a rebalance so the members rejoin and the group's own assignor decides.

The embedded consumer protocol (ConsumerProtocolSubscription, ConsumerProtocolAssignment) is read and
written here too, for the classic members of a consumer group (kbroker.groups.classic_members).
"""

from __future__ import annotations

import uuid
from typing import Callable

from ..protocol.errors import ApiError, ErrorCode, ProtocolError
from ..protocol.messages.consumer_protocol_assignment import ConsumerProtocolAssignment
from ..protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from ..protocol.primitives import Reader, Writer
from . import consumer_records as fmt
from .classic import STABLE, ClassicGroup, Member, now_ms
from .consumer_group import MEMBER_STABLE, ConsumerGroup

PROTOCOL_TYPE = "consumer"
TopicIds = Callable[[str], "uuid.UUID | None"]  # topic name -> id (None: no such topic)
TopicNames = dict[uuid.UUID, str]


# ------------------------------------------------------------------------------- embedded protocol
def decode_subscription(metadata: bytes) -> ConsumerProtocolSubscription:
    r = Reader(metadata)
    version = r.int16()
    return ConsumerProtocolSubscription.decode(r, min(version, ConsumerProtocolSubscription.VERSIONS[1]))


def subscription_version(metadata: bytes) -> int:
    return Reader(metadata).int16() if len(metadata) >= 2 else 0


def decode_assignment(data: bytes) -> ConsumerProtocolAssignment:
    if not data:
        return ConsumerProtocolAssignment()
    r = Reader(data)
    version = r.int16()
    return ConsumerProtocolAssignment.decode(r, min(version, ConsumerProtocolAssignment.VERSIONS[1]))


def encode_assignment(partitions: fmt.Partitions, names: TopicNames, version: int) -> bytes:
    """A ConsumerProtocolAssignment of the version the member's subscription has (Kafka's choice)."""
    version = max(0, min(version, ConsumerProtocolAssignment.VERSIONS[1]))
    assignment = ConsumerProtocolAssignment(assigned_partitions=[
        ConsumerProtocolAssignment.TopicPartition(topic=names[topic_id], partitions=sorted(indexes))
        for topic_id, indexes in sorted(partitions.items(), key=lambda item: names.get(item[0], ""))
        if topic_id in names])
    w = Writer()
    w.int16(version)
    assignment.encode(w, version)
    return w.getvalue()


def to_partitions(topic_partitions, topic_ids: TopicIds) -> fmt.Partitions:
    """[(topic name, [partition])] of the embedded protocol -> {topic id: partitions}, unknown topics dropped."""
    out: dict[uuid.UUID, frozenset[int]] = {}
    for tp in topic_partitions:
        topic_id = topic_ids(tp.topic)
        if topic_id is not None and tp.partitions:
            out[topic_id] = out.get(topic_id, frozenset()) | frozenset(tp.partitions)
    return out


def first_protocol_name(classic: fmt.ClassicMemberMetadata) -> str:
    return classic.supported_protocols[0][0] if classic.supported_protocols else ""


# ------------------------------------------------------------------------------- upgrade
def consumer_group_from_classic(classic: ClassicGroup, topic_ids: TopicIds, tombstone: fmt.Record
                                ) -> tuple[ConsumerGroup, list[fmt.Record]]:
    """The consumer group a classic group becomes, with the records of the change (the classic
    group's ``tombstone`` first). ApiError(GROUP_ID_NOT_FOUND) when a member's embedded protocol
    cannot be read."""
    group_id, epoch = classic.group_id, classic.generation_id
    members = []
    for m in classic.members.values():
        try:
            # before its first generation the group has no protocol yet: the member's first one
            subscription = decode_subscription(m.metadata(classic.protocol_name) if classic.protocol_name
                                               else m.protocols[0][1])
            assigned = to_partitions(decode_assignment(m.assignment).assigned_partitions, topic_ids)
        except (ProtocolError, ValueError, IndexError) as exc:
            raise ApiError(ErrorCode.GROUP_ID_NOT_FOUND, f"Cannot upgrade the classic group {group_id} to consumer "
                           "group because the embedded consumer protocol is malformed.") from exc
        metadata = fmt.MemberMetadata(
            m.group_instance_id, subscription.rack_id, m.client_id, m.client_host,
            tuple(sorted(set(subscription.topics))), None, m.rebalance_timeout_ms, None,
            fmt.ClassicMemberMetadata(m.session_timeout_ms, tuple(m.protocols)))
        members.append((m.member_id, metadata, assigned))
    records = [tombstone]
    records += [fmt.member_metadata(group_id, member_id, metadata) for member_id, metadata, _ in members]
    records.append(fmt.group_metadata(group_id, epoch, 0))
    records += [fmt.target_assignment_member(group_id, member_id, assigned) for member_id, _, assigned in members]
    records.append(fmt.target_assignment_metadata(group_id, epoch, now_ms()))
    records += [fmt.current_assignment(group_id, member_id, fmt.CurrentAssignment(epoch, epoch, MEMBER_STABLE, assigned))
                for member_id, _, assigned in members]
    group = ConsumerGroup(group_id)
    for key, value in records[1:]:
        group.replay(fmt.decode_key(key), value)
    return group, records


def can_upgrade(classic: ClassicGroup, max_size: int) -> str | None:
    """Why the classic group cannot become a consumer group online (None: it can)."""
    if classic.protocol_type != PROTOCOL_TYPE:
        return "the group does not use the consumer embedded protocol"
    if len(classic.members) > max_size:
        return "the group size exceeds the consumer group maximum size"
    return None


# ------------------------------------------------------------------------------- downgrade
def classic_group_from_consumer(group: ConsumerGroup, leaving_id: str, names: TopicNames,
                                joining: Member | None = None) -> ClassicGroup:
    """The Stable classic group of a consumer group's classic members but ``leaving_id``, each with
    its target assignment; ``joining``, a classic instance of the static member ``leaving_id``,
    takes that one's place and its target assignment."""
    classic = ClassicGroup(group.group_id)
    classic.generation_id = group.group_epoch
    classic.protocol_type = PROTOCOL_TYPE
    for m in group.members.values():
        if m.member_id == leaving_id or m.classic is None:
            continue
        classic.add(Member(m.member_id, m.instance_id, m.metadata.client_id, m.metadata.client_host,
                           m.metadata.rebalance_timeout_ms, m.classic.session_timeout_ms, PROTOCOL_TYPE,
                           list(m.classic.supported_protocols)))
    if joining is not None:
        classic.add(joining)
    classic.protocol_name = classic.select_protocol()
    for member in classic.members.values():
        version = subscription_version(member.metadata(classic.protocol_name))
        target_of = leaving_id if joining is not None and member is joining else member.member_id
        member.assignment = encode_assignment(group.target.get(target_of, {}), names, version)
    classic.state = STABLE
    classic.state_timestamp = now_ms()
    return classic
