"""CIN: the network's input, c_in(sigma) x (SPEC.md, "Model input")."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings

from conformance import steps, tolerances, truth
from conformance.adapter import Adapter
from conformance.cases import Case, cases, default_case
from conformance.measure import Measure


@pytest.mark.clause("CIN-1")
@pytest.mark.requires("c_in")
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
@example(case=default_case())
@example(case=default_case(k=1))
@example(case=default_case(timesteps=(39, 0), k=1, shape=(1,)))
def test_scale_model_input(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    exact = truth.schedule(case.config, case.spec)
    inputs = [
        (steps.normal(case.seed + j, case.shape), steps.normal(case.seed + 1000 + j, case.shape, s))
        for j, s in enumerate(exact.sigmas[: case.k + 1])
    ]
    run = steps.run(
        impl, measure, case.config, case.spec, device, dtype, inputs, seed=case.seed, noise="ignore"
    )
    scaled = measure.output(
        run.scaled[case.k],
        what=f"scale_model_input(x, timesteps[{case.k}])",
        shape=case.shape,
        dtype=dtype,
        device=device,
    )
    x = run.x[case.k].exact
    expected = truth.scale_model_input(case.config, exact.sigmas[case.k], x)
    bound = tolerances.scale_model_input_bound(case.config, exact.ramps[case.k], expected, dtype)
    measure.close(scaled, expected, bound, "scale_model_input", bound_text=f"CIN-1 {dtype}")
