"""Feature flags as Kafka 4.4 advertises them, and UpdateFeatures (key 57) v0-2 that changes them.

What a feature may be here follows from what the broker serves:
- `metadata.version` 7-25 (25 is 4.0-IV3; kbroker has no metadata log whose format a newer level
  would change), finalized at 25; a downgrade is refused, as Kafka refuses one that could lose metadata;
- `kraft.version` 0 only (no KRaft quorum to move to dynamic voters);
- `transaction.version` 0-2, finalized at 2 on a new broker: clients use transactions v2 (KIP-890
  part 2: EndTxn v5, Produce v12 adding partitions implicitly); levels 0 and 1 make them use v1;
- `group.version` 0-1 only when the registry serves ConsumerGroupHeartbeat (KIP-848), else 0 only,
  so a client never sees the consumer protocol finalized where it is not served.
share.version, streams.version and eligible.leader.replicas.version are not advertised: share groups,
streams groups and ELR are not served. A level set with UpdateFeatures is persisted
(kbroker.features: a broker alone in its data directory, read back at start; a cluster in its
coordination store, so the levels set on any broker are every broker's); a stored level above what the broker now supports is
served as the supported maximum. Level 0 means off and is not listed among the finalized features.

UpdateFeatures follows Kafka's controller: one failing update fails the whole request
(INVALID_UPDATE_VERSION, "The update failed for all features since ..."); a lower level needs a
safe or unsafe downgrade type (v0: allow_downgrade), a higher one the upgrade type; validate_only
(v1+) changes nothing; v0-1 answer per feature, v2 only at the top. Levels that cannot be stored
(a full disk) are KAFKA_STORAGE_ERROR, and nothing changes.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import UpdateFeaturesRequest, UpdateFeaturesResponse
from .registry import Handler, Registry

CONSUMER_GROUP_HEARTBEAT_KEY = 68
UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE = 1, 2, 3
METADATA_VERSION = "metadata.version"


def supported_features(registry: Registry) -> dict[str, tuple[int, int]]:
    """name -> (min, max) this broker supports."""
    consumer_groups = any(key == CONSUMER_GROUP_HEARTBEAT_KEY for key, _, _ in registry.advertised())
    return {
        "group.version": (0, 1 if consumer_groups else 0),
        "kraft.version": (0, 0),
        METADATA_VERSION: (7, 25),
        "transaction.version": (0, 2),
    }


def finalized_features(ctx) -> dict[str, int]:
    """name -> finalized level (level 0 included): the stored level, else the supported maximum."""
    stored = ctx.features.levels
    return {name: min(stored.get(name, high), high) for name, (_, high) in supported_features(ctx.registry).items()}


def _invalid(feature: str, level: int, reason: str) -> str:
    return f"Invalid update version {level} for feature {feature}. {reason}"


def _refusal(ctx, update: UpdateFeaturesRequest.FeatureUpdateKey, upgrade_type: int) -> str | None:
    """Why this update may not be made (Kafka's INVALID_UPDATE_VERSION message), or None."""
    feature, level = update.feature, update.max_version_level
    if upgrade_type not in (UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE):
        return _invalid(feature, level, "The controller does not support the given upgrade type.")
    if level < 0:
        return _invalid(feature, level, "A feature version cannot be less than 0.")
    low, high = supported_features(ctx.registry).get(feature, (0, 0))
    if not low <= level <= high:
        reason = "does not support this feature." if high == 0 else f"only supports versions {low}-{high}"
        return _invalid(feature, level, f"Local controller {ctx.node.node_id} {reason}")
    current = finalized_features(ctx).get(feature, 0)
    if level < current and upgrade_type == UPGRADE:
        return _invalid(feature, level, "Can't downgrade the version of this feature without setting the "
                                        "upgrade type to either safe or unsafe downgrade.")
    if level > current and upgrade_type != UPGRADE:
        return _invalid(feature, level, "Can't downgrade to a newer version.")
    if feature == METADATA_VERSION and level < current:
        why = ("Unsafe metadata downgrade is not supported in this version." if upgrade_type == UNSAFE_DOWNGRADE
               else "Refusing to perform the requested downgrade because it might delete metadata information.")
        return f"Unsupported metadata.version downgrade from {current} to {level}. {why}"
    return None


async def handle_update_features(ctx, request: UpdateFeaturesRequest) -> UpdateFeaturesResponse:
    version = ctx.api_version
    changes = {}
    for update in request.feature_updates:
        if version == 0:
            upgrade_type = SAFE_DOWNGRADE if update.allow_downgrade else UPGRADE
        else:
            upgrade_type = update.upgrade_type
        refusal = _refusal(ctx, update, upgrade_type)
        if refusal is not None:
            return UpdateFeaturesResponse(
                error_code=ErrorCode.INVALID_UPDATE_VERSION,
                error_message=f"The update failed for all features since the following feature had an error: "
                              f"{refusal}")
        changes[update.feature] = update.max_version_level
    if changes and not (version >= 1 and request.validate_only):
        try:
            await ctx.features.set_levels(changes)
        except OSError as exc:  # features.json could not be written (a full disk): nothing changed
            return UpdateFeaturesResponse(error_code=ErrorCode.KAFKA_STORAGE_ERROR,
                                          error_message=f"The feature levels could not be stored: {exc}")
    response = UpdateFeaturesResponse(error_code=ErrorCode.NONE, error_message=None)
    if version <= 1:
        response.results = [UpdateFeaturesResponse.UpdatableFeatureResult(
            feature=u.feature, error_code=ErrorCode.NONE, error_message="NONE")  # Kafka's words: Errors.NONE.message()
            for u in request.feature_updates]
    return response


HANDLERS = [Handler(UpdateFeaturesRequest, 0, 2, handle_update_features)]
