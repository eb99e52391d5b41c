"""Listener parsing: ``listeners``, ``advertised.listeners`` and
``listener.security.protocol.map``.

Theory of operation: a listener is ``NAME://host:port``; an empty host means
every interface, IPv6 hosts are bracketed, port 0 asks the OS for a free port.
Listener names are case-insensitive and upper-cased, as Kafka does.  Each
name's security protocol comes from the protocol map; when the map is not set
explicitly, the controller listener names map to PLAINTEXT as in Kafka.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

from .types import ConfigError

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_ENDPOINT_RE = re.compile(r"^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)$")


@dataclass(frozen=True)
class Endpoint:
    listener: str          # upper-cased listener name, e.g. "PLAINTEXT"
    security_protocol: str
    host: Optional[str]    # None = all interfaces
    port: int

    def __str__(self) -> str:
        host = self.host or ""
        if ":" in host:
            host = f"[{host}]"
        return f"{self.listener}://{host}:{self.port}"


def parse_protocol_map(value: str, key: str = "listener.security.protocol.map") -> dict[str, str]:
    """``NAME:PROTOCOL,...`` -> {NAME: PROTOCOL}."""
    result: dict[str, str] = {}
    if not value or not value.strip():
        return result
    for item in value.split(","):
        name, sep, proto = item.strip().partition(":")
        if not sep or not name.strip() or ":" in proto:
            raise ConfigError(f"Error parsing configuration property '{key}': "
                              f"Malformed entry '{item.strip()}', expected NAME:PROTOCOL", key)
        proto = proto.strip().upper()
        if proto not in SECURITY_PROTOCOLS:
            raise ConfigError(f"Invalid security protocol `{proto}` defined in {key}", key)
        result[name.strip().upper()] = proto
    return result


def parse_endpoints(value: Optional[str], protocol_map: dict[str, str], key: str = "listeners",
                    require_distinct_ports: bool = True) -> list[Endpoint]:
    """Parse a comma-separated listener list against a protocol map."""
    endpoints: list[Endpoint] = []
    for raw in [s.strip() for s in (value or "").split(",") if s.strip()]:
        m = _ENDPOINT_RE.match(raw)
        if not m:
            raise ConfigError(f"Unable to parse {raw} to a broker endpoint", key)
        name, host, port = m.group(1).upper(), m.group(2) or None, int(m.group(3))
        if not 0 <= port <= 65535:
            raise ConfigError(f"Invalid port {port} in {key}: {raw}", key)
        if name not in protocol_map:
            raise ConfigError(f"No security protocol defined for listener {name}", key)
        endpoints.append(Endpoint(name, protocol_map[name], host, port))
    names = [e.listener for e in endpoints]
    if len(set(names)) != len(names):
        raise ConfigError(f"Each listener must have a different name, {key}: {value}", key)
    if require_distinct_ports:
        ports = [e.port for e in endpoints if e.port != 0]
        if len(set(ports)) != len(ports):
            raise ConfigError(f"Each listener must have a different port, {key}: {value}", key)
    return endpoints


def effective_protocol_map(explicit: Optional[str], default: str,
                           controller_names: Iterable[str]) -> dict[str, str]:
    """The protocol map Kafka uses: explicit value, or the default plus
    PLAINTEXT for each controller listener name."""
    if explicit is not None:
        return parse_protocol_map(explicit)
    result = parse_protocol_map(default)
    for name in controller_names:
        result.setdefault(name.upper(), "PLAINTEXT")
    return result
