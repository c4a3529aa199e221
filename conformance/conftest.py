"""Registers the suite's pytest plugin and options when the suite is run from a checkout.

An installed distribution does it through its `pytest11` entry point
(`conformance/harness/entry_point.py`); without one (a bare checkout, or
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1) this conftest does it, once.
"""

from __future__ import annotations

import pytest

from conformance.harness import plugin


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    plugin.add_options(parser)
    if not pluginmanager.is_registered(plugin):
        pluginmanager.register(plugin, plugin.PLUGIN_NAME)
