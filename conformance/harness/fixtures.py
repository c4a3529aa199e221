"""The fixtures the clause modules use, and where a test sits in the matrix.

- `impl`: the adapter of the implementation under test;
- `golden_dir`: the golden directory (`--golden`, default the packaged one);
- `measure`: the checks of one test, bound to its clause, device and dtype, with the
  deviations declared there.

Registered with the plugin (`conformance.harness.plugin`), only in sessions that run the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.harness.activation import SuiteState
from conformance.measuring.checks import Measure
from conformance.protocol import deviations
from conformance.protocol.adapter import Adapter

STATE = pytest.StashKey[SuiteState]()
MEASURE = pytest.StashKey[Measure]()


def coordinates(node: pytest.Item) -> tuple[str, str | None, str | None]:
    """(clause, device, dtype) of a test: its clause marker and its matrix parameters."""
    marker = node.get_closest_marker("clause")
    clause = marker.args[0] if marker is not None and marker.args else "?"
    params = getattr(node, "callspec", None)
    params = params.params if params is not None else {}
    return clause, params.get("device"), params.get("dtype")


def suite_state(config: pytest.Config) -> SuiteState:
    return config.stash[STATE]


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Adapter:
    """The adapter of the implementation under test."""
    return suite_state(request.config).adapter


@pytest.fixture(scope="session")
def golden_dir(request: pytest.FixtureRequest) -> Path:
    """The golden directory (`--golden`, default the project's)."""
    return suite_state(request.config).golden_dir


@pytest.fixture
def measure(request: pytest.FixtureRequest, impl: Adapter) -> Measure:
    """The checks of this test, bound to its clause, device and dtype."""
    clause, device, dtype = coordinates(request.node)
    declared = deviations.applicable(impl.deviations, clause, device, dtype)
    checks = Measure(impl, clause, device, dtype, declared)
    request.node.stash[MEASURE] = checks
    return checks
