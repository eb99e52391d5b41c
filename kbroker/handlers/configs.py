"""Configs: DescribeConfigs (key 32) v1-4, AlterConfigs (key 33) v0-2, IncrementalAlterConfigs
(key 44) v0-1, for TOPIC (resource type 2) and BROKER (type 4) resources.

What Kafka 4 does (one broker that is also the controller), and so what is done here:

DescribeConfigs
- TOPIC: an illegal name is INVALID_TOPIC_EXCEPTION, an unknown topic UNKNOWN_TOPIC_OR_PARTITION (with an
  empty message); otherwise every topic config (or the requested ones; unknown names are left out)
  with its value, source, read-only/sensitive flags, synonyms when asked (v1+), type and documentation
  (v3+, documentation when asked).
- BROKER: name = this node's id, or "" for the cluster-wide default resource (which lists only the
  dynamic cluster defaults). A non-integer name or another id is INVALID_REQUEST with Kafka's message.
- BROKER_LOGGER (type 8) is checked like BROKER and answered with no entries (kbroker has no runtime
  logger levels); any other type is INVALID_REQUEST.

AlterConfigs replaces a resource's whole set of overrides; IncrementalAlterConfigs applies SET (0),
DELETE (1), APPEND (2) and SUBTRACT (3, list configs only) one key at a time. For topics the result
is validated as CreateTopics validates (INVALID_CONFIG with Kafka's message), then persisted in the
metadata store and applied to the live logs at once. For the BROKER resource Kafka accepts dynamic
configs (per-broker ones on the node id, cluster-wide ones also on ""), rejects read-only ones with
INVALID_REQUEST "Cannot update these configs dynamically: [...]", and stores names it does not know;
kbroker does the same and persists them in `kbroker-dynamic-configs.json` in the data directory
(kbroker.config.persisted), so they are layered over server.properties again after a restart.
validate_only checks without applying.
Kafka 4.4's format writes the cluster's min.insync.replicas as a dynamic cluster default (eligible
leader replicas, KIP-966), which may then not be removed; a new kbroker data directory starts the same.
"""

from __future__ import annotations

import logging
from typing import Optional

from ..config import BrokerConfig, ConfigError, describe_topic_configs, validate_topic_configs
from ..config.broker import ALL_DYNAMIC, BROKER_KEYS, DYNAMIC_ONLY_KEYS, key_for
from ..config.broker_defs import PER_BROKER_CONFIGS
from ..config.persisted import rebuild, save_dynamic_configs
from ..config.topic import TOPIC_KEYS
from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import (AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest,
                                 DescribeConfigsResponse, IncrementalAlterConfigsRequest,
                                 IncrementalAlterConfigsResponse)
from .registry import Handler
from ..metadata import validate_topic_name

log = logging.getLogger("kbroker.configs")

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
_OP_NAMES = {SET: "SET", DELETE: "DELETE", APPEND: "APPEND", SUBTRACT: "SUBTRACT"}
INVALID_REQUEST_MESSAGE = ("This most likely occurs because of a request being malformed by the client library "
                           "or the message was sent to an incompatible broker. See the broker logs for more details.")


# ------------------------------------------------------------------------------ DescribeConfigs

def _broker_resource_for_describe(ctx, name: str) -> bool:
    """True for the cluster-default resource (""); raises ApiError for a name that is not this node."""
    if name == "":
        return True
    try:
        node = int(name)
    except ValueError:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"Broker id must be an integer, but it is: {name}")
    if node != ctx.node.node_id:
        raise ApiError(ErrorCode.INVALID_REQUEST,
                       f"Unexpected broker id, expected {ctx.node.node_id} or empty string, but received {name}")
    return False


def _describe_one(ctx, request: DescribeConfigsRequest, resource) -> DescribeConfigsResponse.DescribeConfigsResult:
    Result = DescribeConfigsResponse.DescribeConfigsResult
    version = ctx.api_version
    synonyms = request.include_synonyms
    documentation = version >= 3 and request.include_documentation
    names = resource.configuration_keys or None
    try:
        if resource.resource_type == TOPIC:
            message = validate_topic_name(resource.resource_name)
            if message is not None:
                raise ApiError(ErrorCode.INVALID_TOPIC_EXCEPTION, message)
            topic = ctx.metadata.get(resource.resource_name)
            if topic is None:
                raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "")
            entries = describe_topic_configs(ctx.config, topic.configs, names, include_synonyms=synonyms,
                                             include_documentation=documentation)
        elif resource.resource_type == BROKER:
            default = _broker_resource_for_describe(ctx, resource.resource_name)
            entries = ctx.config.describe(names, include_synonyms=synonyms, include_documentation=documentation,
                                          default_resource=default)
        elif resource.resource_type == BROKER_LOGGER:
            _broker_resource_for_describe(ctx, resource.resource_name)
            entries = []
        else:
            raise ApiError(ErrorCode.INVALID_REQUEST, INVALID_REQUEST_MESSAGE)
    except ApiError as exc:
        return Result(error_code=exc.error_code, error_message=exc.message, resource_type=resource.resource_type,
                      resource_name=resource.resource_name, configs=[])
    Config = DescribeConfigsResponse.DescribeConfigsResourceResult
    Synonym = DescribeConfigsResponse.DescribeConfigsSynonym
    configs = [Config(name=e.name, value=None if e.sensitive else e.value, read_only=e.read_only,
                      config_source=int(e.source), is_sensitive=e.sensitive,
                      synonyms=[Synonym(s.name, s.value, int(s.source)) for s in e.synonyms] if synonyms else [],
                      config_type=e.config_type, documentation=e.documentation)
               for e in entries]
    return Result(error_code=ErrorCode.NONE, error_message="", resource_type=resource.resource_type,
                  resource_name=resource.resource_name, configs=configs)


async def handle_describe_configs(ctx, request: DescribeConfigsRequest) -> DescribeConfigsResponse:
    return DescribeConfigsResponse(results=[_describe_one(ctx, request, r) for r in request.resources])


# --------------------------------------------------------------------------------- alterations

def _topic_for_alter(ctx, name: str, new_configs: dict[str, str]):
    """Validate a topic's complete new override set; the Topic to change, or ApiError."""
    message = validate_topic_name(name)
    if message is not None:
        raise ApiError(ErrorCode.INVALID_TOPIC_EXCEPTION, message)
    message = validate_topic_configs(new_configs, ctx.config)
    if message is not None:
        raise ApiError(ErrorCode.INVALID_CONFIG, message)
    topic = ctx.metadata.get(name)
    if topic is None:
        raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist.")
    return topic


def _apply_topic(ctx, topic, new_configs: dict[str, str]) -> None:
    topic = ctx.topics.set_topic_configs(topic.name, new_configs)
    log.info("topic %s configs are now %s", topic.name, new_configs)


def _broker_resource_for_alter(ctx, name: str) -> bool:
    """True for the cluster-default resource (""), False for this node; ApiError otherwise."""
    if name == "":
        return True
    try:
        node = int(name)
    except ValueError:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"Node id must be an integer, but it is: {name}")
    if node != ctx.node.node_id:
        raise ApiError(ErrorCode.INVALID_REQUEST,
                       f"Unexpected broker id, expected {ctx.node.node_id}, but received {name}")
    return False


def _is_known_broker_config(name: str) -> bool:
    return name in BROKER_KEYS or name in DYNAMIC_ONLY_KEYS or key_for(name) is not None


def _broker_config_for_alter(ctx, default: bool, new_layer: dict[str, str]) -> BrokerConfig:
    """Validate a complete new dynamic layer (per-broker or cluster default); the new BrokerConfig."""
    config = ctx.config
    read_only = [n for n in new_layer if n not in ALL_DYNAMIC and n not in DYNAMIC_ONLY_KEYS
                 and _is_known_broker_config(n)]
    if read_only:
        raise ApiError(ErrorCode.INVALID_REQUEST,
                       "Cannot update these configs dynamically: [" + ", ".join(read_only) + "]")
    if default and "min.insync.replicas" not in new_layer:
        raise ApiError(ErrorCode.INVALID_CONFIG,
                       "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.")
    if default:
        per_broker = [n for n in new_layer if n in PER_BROKER_CONFIGS]
        if per_broker:
            raise ApiError(ErrorCode.INVALID_REQUEST, "Cannot update these configs at default cluster level, "
                           "broker id must be specified: [" + ", ".join(per_broker) + "]")
    try:
        if default:
            return rebuild(config, config.dynamic_broker, new_layer)
        return rebuild(config, new_layer, config.dynamic_default)
    except ConfigError as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, str(exc))


def _apply_broker(ctx, new_config: BrokerConfig) -> None:
    save_dynamic_configs(ctx.node.data_dir, new_config)
    ctx.live_config.replace(new_config)
    log.info("dynamic broker configs are now %s (cluster default %s)", new_config.dynamic_broker,
             new_config.dynamic_default)


def _check_nulls(configs) -> None:
    nulls = [c.name for c in configs if c.value is None]
    if nulls:
        raise ApiError(ErrorCode.INVALID_REQUEST, "Null value not supported for : " + ",".join(nulls))


def _alter_resource(ctx, resource_type: int, name: str, compute, validate_only: bool) -> tuple[int, str | None]:
    """Apply `compute(current overrides) -> new overrides` to one resource; (error code, message)."""
    try:
        if resource_type == TOPIC:
            topic = ctx.metadata.get(name)
            current = dict(topic.configs) if topic is not None else {}
            new = compute(current, TOPIC)
            topic = _topic_for_alter(ctx, name, new)
            if not validate_only:
                _apply_topic(ctx, topic, new)
        elif resource_type == BROKER:
            default = _broker_resource_for_alter(ctx, name)
            current = dict(ctx.config.dynamic_default if default else ctx.config.dynamic_broker)
            new = compute(current, BROKER)
            new_config = _broker_config_for_alter(ctx, default, new)
            if not validate_only:
                _apply_broker(ctx, new_config)
        else:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Unknown resource type {resource_type}")
    except ApiError as exc:
        return exc.error_code, exc.message
    return ErrorCode.NONE, None


async def handle_alter_configs(ctx, request: AlterConfigsRequest) -> AlterConfigsResponse:
    Response = AlterConfigsResponse.AlterConfigsResourceResponse
    responses = []
    for resource in request.resources:
        def compute(current, resource_type, configs=resource.configs):
            _check_nulls(configs)
            return {c.name: c.value for c in configs}
        code, message = _alter_resource(ctx, resource.resource_type, resource.resource_name, compute,
                                        request.validate_only)
        responses.append(Response(error_code=code, error_message=message, resource_type=resource.resource_type,
                                  resource_name=resource.resource_name))
    return AlterConfigsResponse(responses=responses)


def _is_list(name: str, resource_type: int) -> bool:
    key = TOPIC_KEYS.get(name) if resource_type == TOPIC else key_for(name)
    return key is not None and key.type == "LIST"


def _default_string(name: str, resource_type: int) -> Optional[str]:
    """A list config's default as Kafka's schema has it (the base for APPEND/SUBTRACT without a value)."""
    key = TOPIC_KEYS.get(name) if resource_type == TOPIC else key_for(name)
    if key is None or key.default is None:
        return None
    default = key.default
    if isinstance(default, (list, tuple)):
        return ",".join(str(v) for v in default)
    return str(default)


def _incremental(configs):
    def compute(current: dict[str, str], resource_type: int) -> dict[str, str]:
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ApiError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")
        _check_nulls([c for c in configs if c.config_operation != DELETE])
        new = dict(current)
        for c in configs:
            if c.config_operation not in _OP_NAMES:
                raise ApiError(ErrorCode.UNKNOWN_SERVER_ERROR, None)
            if c.config_operation == SET:
                new[c.name] = c.value
            elif c.config_operation == DELETE:
                new.pop(c.name, None)
            else:
                if not _is_list(c.name, resource_type):
                    raise ApiError(ErrorCode.INVALID_CONFIG, f"Can't {_OP_NAMES[c.config_operation]} to key "
                                   f"{c.name} because its type is not LIST.")
                base = new.get(c.name)
                if base is None:
                    base = _default_string(c.name, resource_type)
                parts = [p for p in (base or "").split(",") if p]
                for value in c.value.split(","):
                    if c.config_operation == APPEND and value not in parts:
                        parts.append(value)
                    elif c.config_operation == SUBTRACT and value in parts:
                        parts.remove(value)
                new[c.name] = ",".join(parts)
        return new
    return compute


async def handle_incremental_alter_configs(ctx, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse:
    Response = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse
    responses = []
    for resource in request.resources:
        code, message = _alter_resource(ctx, resource.resource_type, resource.resource_name,
                                        _incremental(resource.configs), request.validate_only)
        responses.append(Response(error_code=code, error_message=message, resource_type=resource.resource_type,
                                  resource_name=resource.resource_name))
    return IncrementalAlterConfigsResponse(responses=responses)


HANDLERS = [
    Handler(DescribeConfigsRequest, 1, 4, handle_describe_configs),
    Handler(AlterConfigsRequest, 0, 2, handle_alter_configs),
    Handler(IncrementalAlterConfigsRequest, 0, 1, handle_incremental_alter_configs),
]
