"""The `pytest11` entry point of an installed distribution.

pytest loads it in every session of the environment; it registers the suite's plugin and
options only when the command line targets the suite (`conformance.harness.activation.targets_suite`:
`--impl`, `--pyargs conformance`, or a path inside the package), so that installing
cm-conformance changes nobody else's test runs. From a checkout, `conformance/conftest.py`
does the same.
"""

from __future__ import annotations

import pytest

from conformance.harness.activation import targets_suite


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    if not targets_suite(args):
        return
    from conformance.harness import plugin

    plugin.add_options(parser)
    if not early_config.pluginmanager.is_registered(plugin):
        early_config.pluginmanager.register(plugin, plugin.PLUGIN_NAME)
