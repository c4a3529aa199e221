"""CONV: the interface conventions a functional sampler declares (SPEC.md, "Interface
conventions"), each verified against what it actually feeds its model, never trusted."""

from __future__ import annotations

import pytest

from conformance.functional import ConventionError
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import Adapter


@pytest.mark.clause("CONV-1")
@pytest.mark.requires("conventions")
def test_declared_conventions_hold(
    impl: Adapter, measure: Measure, device: str, dtype: str
) -> None:
    try:
        held = impl.check_conventions(device, dtype)
    except ConventionError as exc:
        measure.fail("a declared convention", str(exc))
    for convention in held:
        measure.ok(convention)
