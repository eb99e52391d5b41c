"""The broker config as it is now: dynamic broker configs (AlterConfigs on the BROKER resource)
replace it while the broker runs. Components hold the LiveConfig, never a BrokerConfig they would
have to be told about, and subscribe to hear of a change (the partition layer recomputes every
topic's effective log config)."""

from __future__ import annotations

from typing import Callable

from .broker import BrokerConfig


class LiveConfig:
    def __init__(self, config: BrokerConfig):
        self.current = config
        self._subscribers: list[Callable[[BrokerConfig], None]] = []

    def subscribe(self, subscriber: Callable[[BrokerConfig], None]) -> None:
        self._subscribers.append(subscriber)

    def replace(self, config: BrokerConfig) -> None:
        self.current = config
        for subscriber in list(self._subscribers):
            subscriber(config)
