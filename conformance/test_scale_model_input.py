"""CIN: the network's input, c_in(sigma) x (SPEC.md, "Model input")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings

from conformance import stepcheck, steps, tolerances, truth
from conformance.adapter import Adapter
from conformance.cases import Case, cases, default_case
from conformance.measure import Measure, collect_violations


@pytest.mark.clause("CIN-1")
@pytest.mark.requires("c_in")
@collect_violations
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
@example(case=default_case())
@example(case=default_case(k=1))
@example(case=default_case(timesteps=(39, 0), k=1, shape=(1,)))
def test_scale_model_input(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    case = stepcheck.own_settings(impl, case)
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
    # c_in at the sigma the implementation stores (a wrong sigma is SCHED's finding).
    sigma = float(stepcheck.sigmas_used(run, exact)[case.k])
    expected = truth.scale_model_input(case.config, sigma, x)
    bound = tolerances.scale_model_input_bound(
        case.config, exact.ramps[case.k], expected, dtype, stepcheck.readback_at(run, case.k)
    )
    c_in = float(truth.c_in(case.config, sigma))

    def diagnose(worst: tuple[int, ...], bad: np.ndarray) -> str:
        with np.errstate(invalid="ignore", divide="ignore"):
            fitted = float(np.sum(scaled * x) / np.sum(x * x))
        return (
            f"c_in fitted on the output {fitted:.9g}, expected 1 / sqrt(sigma^2 + sd^2) = "
            f"{c_in:.9g} at sigma = {sigma!r}"
        )

    measure.close(
        scaled,
        expected,
        bound,
        "scale_model_input",
        bound_text=f"CIN-1 {dtype}",
        where=stepcheck.where(case.config, case.spec, case.k),
        diagnose=diagnose,
    )
