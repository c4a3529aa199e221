"""CIN: the network's input, c_in(sigma) x (SPEC.md, "Model input")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from conformance import truth
from conformance.inputs.cases import Case, cases, default_case
from conformance.inputs.strategies import pinned
from conformance.measuring import bounds, drivers, step_checks
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import Adapter


@pytest.mark.clause("CIN-1")
@pytest.mark.requires("c_in")
@given(case=cases())
@pinned(case=[default_case(), default_case(k=1), default_case(timesteps=(39, 0), k=1, shape=(1,))])
def test_scale_model_input(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    case = step_checks.own_settings(impl, case)
    exact = truth.schedule(case.config, case.spec)
    inputs = [
        (
            drivers.normal(case.seed + j, case.shape),
            drivers.normal(case.seed + 1000 + j, case.shape, s),
        )
        for j, s in enumerate(exact.sigmas[: case.k + 1])
    ]
    run = drivers.run_ignoring_noise(
        impl, measure, case.config, case.spec, device, dtype, inputs, seed=case.seed
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
    sigma = float(step_checks.sigmas_used(run, exact)[case.k])
    expected = truth.scale_model_input(case.config, sigma, x)
    bound = bounds.scale_model_input_bound(
        case.config, exact.ramps[case.k], expected, dtype, step_checks.readback_at(run, case.k)
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
        where=step_checks.where(case.config, case.spec, case.k),
        diagnose=diagnose,
    )
