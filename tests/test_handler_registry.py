"""The broker's registry knows every API from its index and imports a handler module at first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kbroker.handlers import Registry, Served, default_registry, loaded_registry
from kbroker.handlers.registry import StaleIndex


def test_the_index_advertises_what_the_modules_serve():
    assert default_registry().advertised() == loaded_registry().advertised()


def test_a_module_is_imported_at_its_first_request_only():
    script = """
import sys
from kbroker.handlers import default_registry
registry = default_registry()
advertised = registry.advertised()
assert any(key == 10 for key, _, _ in advertised)  # FindCoordinator is listed...
assert "kbroker.handlers.groups" not in sys.modules  # ...without importing its module
assert registry.get(10).request_class.__name__ == "FindCoordinatorRequest"
assert "kbroker.handlers.groups" in sys.modules
assert registry.get(11).request_class.__name__ == "JoinGroupRequest"  # same module, now loaded
assert registry.get(17) is None  # SaslHandshake: not served
assert registry.advertised() == advertised
"""
    subprocess.run([sys.executable, "-c", script], check=True)


def test_a_stale_index_entry_fails_loudly():
    registry = Registry(served=[Served(3, "metadata", 0, 11)])
    with pytest.raises(StaleIndex, match="api_table --write"):
        registry.get(3)


def test_an_index_missing_a_handler_fails_loudly():
    registry = Registry(served=[Served(2, "list_offsets", 1, 10)])  # list_offsets also serves OffsetForLeaderEpoch
    with pytest.raises(StaleIndex):
        registry.get(2)


def test_two_entries_for_one_key_are_refused():
    with pytest.raises(ValueError, match="two handlers"):
        Registry(served=[Served(3, "metadata", 0, 12), Served(3, "metadata", 0, 12)])
