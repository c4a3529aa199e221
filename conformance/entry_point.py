"""The `pytest11` entry point of an installed distribution.

pytest loads it in every session of the environment; it registers the suite's plugin and
options only when the command line targets the suite (`--impl`, `--pyargs conformance`, or
a path inside the package), so that installing cm-conformance changes nobody else's test
runs. From a checkout, `conformance/conftest.py` does the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def targets_suite(args: list[str]) -> bool:
    """Whether a pytest command line runs the conformance suite."""
    package = Path(__file__).resolve().parent
    pyargs = "--pyargs" in args
    for arg in args:
        if arg.startswith("--impl"):
            return True
        target = arg.split("::")[0]
        if pyargs and (target == "conformance" or target.startswith("conformance.")):
            return True
        if not arg.startswith("-"):
            path = Path(target).resolve()
            if path == package or package in path.parents:
                return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    if not targets_suite(args):
        return
    from conformance import plugin

    plugin.add_options(parser)
    if not early_config.pluginmanager.is_registered(plugin):
        early_config.pluginmanager.register(plugin, plugin.PLUGIN_NAME)
