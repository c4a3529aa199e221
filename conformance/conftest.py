"""Registers the suite's pytest plugin when the suite is run from a checkout.

An installed distribution registers `conformance.plugin` through its `pytest11` entry
point; without one (a bare checkout, or PYTEST_DISABLE_PLUGIN_AUTOLOAD=1) this conftest
registers it, once.
"""

from __future__ import annotations

import pytest

from conformance import plugin


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if not pluginmanager.is_registered(plugin):
        pluginmanager.register(plugin, plugin.PLUGIN_NAME)
