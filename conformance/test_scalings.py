"""SCAL: c_skip and c_out, with and without the boundary shift (SPEC.md, "Scalings")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import truth
from conformance.inputs.strategies import DEFAULT_CONFIG, pinned, scheduler_configs
from conformance.measuring import bounds
from conformance.measuring.checks import Measure
from conformance.measuring.drivers import sample
from conformance.protocol.adapter import Adapter
from conformance.protocol.values import TimestepSpec


@st.composite
def sigma_grids(draw: st.DrawFn) -> tuple[dict[str, Any], np.ndarray]:
    """A config and sigmas in [sigma_min, sigma_max]: the ends, points just above sigma_min
    (where c_out is a small difference) and log-uniform ones."""
    config = draw(scheduler_configs())
    lo, hi = config["sigma_min"], config["sigma_max"]
    exponents = draw(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
    inner = [lo * (hi / lo) ** e for e in exponents]
    near = [lo * (1 + 2.0**-k) for k in (4, 12, 20)]
    return config, np.array([lo, hi, *near, *inner])


def check_scalings(
    impl: Adapter,
    measure: Measure,
    case: tuple[dict[str, Any], np.ndarray],
    dtype: str,
    device: str,
    boundary: bool,
) -> None:
    """c_skip and c_out of CM Appendix C (`boundary`: SCAL-1) or of EDM (SCAL-3) at the case's
    sigmas against the oracle's, within `bounds.scalings_bound`."""
    config, sigmas = case
    name = "get_scalings_for_boundary_condition" if boundary else "get_scalings"
    sigma = sample(impl, sigmas, dtype, device)
    fn = impl.boundary_scalings if boundary else impl.edm_scalings
    pair = measure.call(f"{name}(sigma)", fn, config, sigma.native)
    if not isinstance(pair, tuple) or len(pair) != 2:
        measure.fail(name, f"returned {type(pair).__name__}, expected (c_skip, c_out)")
    wider = ("float64", dtype)
    c_skip, c_out = (
        measure.output(c, what=f"{name}: {label}", shape=sigmas.shape, dtype=wider, device=device)
        for c, label in zip(pair, ("c_skip", "c_out"), strict=True)
    )
    exact = (truth.boundary_scalings if boundary else truth.edm_scalings)(config, sigma.exact)
    b_skip, b_out, b_e_skip, b_e_out = bounds.scalings_bound(config, sigma.exact, dtype)
    clause, suffix = ("SCAL-1", "") if boundary else ("SCAL-3", " (EDM)")
    for actual, expected, bound, label in zip(
        (c_skip, c_out),
        exact,
        (b_skip, b_out) if boundary else (b_e_skip, b_e_out),
        ("c_skip", "c_out"),
        strict=True,
    ):
        measure.close(actual, expected, bound, label + suffix, bound_text=f"{clause} {dtype}")


@pytest.mark.clause("SCAL-1")
@pytest.mark.requires("boundary_scalings")
@pytest.mark.dtypes("float64", "float32")
@given(case=sigma_grids())
@pinned(case=[(dict(DEFAULT_CONFIG), np.array([0.002, 80.0, 0.0020001, 0.5, 1.0]))])
def test_boundary_scalings(
    impl: Adapter,
    measure: Measure,
    device: str,
    dtype: str,
    case: tuple[dict[str, Any], np.ndarray],
) -> None:
    check_scalings(impl, measure, case, dtype, device, boundary=True)


@pytest.mark.clause("SCAL-2")
@pytest.mark.requires("boundary_scalings")
@given(config=scheduler_configs())
@pinned(config=[dict(DEFAULT_CONFIG)])
def test_boundary_condition_exact_at_sigma_min(
    impl: Adapter, measure: Measure, device: str, config: dict[str, Any]
) -> None:
    eps = np.array([config["sigma_min"]])
    candidates = [("sigma_min as float64", sample(impl, eps, "float64", device).native)]
    schedule = measure.call(
        "set_timesteps", impl.schedule, config, TimestepSpec(num_inference_steps=1), device
    )
    stored = impl.to_numpy(schedule.sigmas).reshape(-1)[-1:]
    if stored.size == 1 and stored[0] == config["sigma_min"]:
        candidates.append(("the schedule's stored last sigma", schedule.sigmas[-1:]))
    else:  # a last sigma other than sigma_min is SCHED-1's finding, not the scalings'
        measure.ok(f"the schedule's stored last sigma is {stored!r}, not sigma_min: not used")
    for label, sigma in candidates:
        pair = measure.call(
            "get_scalings_for_boundary_condition", impl.boundary_scalings, config, sigma
        )
        c_skip, c_out = (
            measure.output(
                c, what=f"{name} at {label}", shape=None, dtype=None, device=None
            ).reshape(-1)
            for c, name in zip(pair, ("c_skip", "c_out"), strict=True)
        )
        measure.exact(c_skip, 1.0, f"c_skip at {label}")
        measure.exact(c_out, 0.0, f"c_out at {label}")


@pytest.mark.clause("SCAL-3")
@pytest.mark.requires("edm_scalings")
@pytest.mark.dtypes("float64", "float32")
@given(case=sigma_grids())
@pinned(case=[(dict(DEFAULT_CONFIG), np.array([0.002, 80.0, 0.5, 1.0]))])
def test_edm_scalings(
    impl: Adapter,
    measure: Measure,
    device: str,
    dtype: str,
    case: tuple[dict[str, Any], np.ndarray],
) -> None:
    check_scalings(impl, measure, case, dtype, device, boundary=False)
