"""TIME: the model times fed to the network (SPEC.md, "Model times")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import truth
from conformance.inputs.strategies import (
    DEFAULT_CONFIG,
    custom_timesteps,
    pinned,
    scheduler_configs,
)
from conformance.measuring import bounds, step_checks
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import Adapter
from conformance.protocol.values import TimestepSpec


@st.composite
def configs_with_timesteps(draw: st.DrawFn) -> tuple[dict[str, Any], TimestepSpec]:
    config = draw(scheduler_configs())
    return config, TimestepSpec(
        timesteps=tuple(draw(custom_timesteps(config["num_train_timesteps"])))
    )


@pytest.mark.clause("TIME-1")
@pytest.mark.requires("schedule", "model_time")
@given(case=configs_with_timesteps())
@pinned(
    case=[
        (dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(22, 0))),
        (dict(DEFAULT_CONFIG, rho=3.0), TimestepSpec(timesteps=(22, 0))),  # rho pinned off 7
        (dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(39, 0))),
    ]
)
def test_model_times_of_the_schedule(
    impl: Adapter, measure: Measure, device: str, case: tuple[dict[str, Any], TimestepSpec]
) -> None:
    config, spec = case
    config = impl.settings(config, spec)  # its own values where it fixes some
    schedule = measure.call(f"set_timesteps({spec.kwargs()})", impl.schedule, config, spec, device)
    exact = truth.schedule(config, spec)
    # Values before dtypes: a wrong dtype or device is reported after the values.
    t = measure.output(
        schedule.timesteps, what="timesteps", shape=(len(exact),), dtype="float64", device=device
    )
    # The times of the exact sigmas: a schedule stored in float32 whose times come from
    # float64 sigmas (diffusers) is right here; one whose times come from the rounded sigmas
    # fails here and in SCHED, the schedule's clauses, and nowhere downstream.
    sigmas = exact.sigmas
    expected = exact.timesteps
    caps = impl.capabilities
    precision = bounds.schedule_precision(caps.dtypes, caps.stateful)
    bound = bounds.model_time_bound(config, exact.ramps, expected, precision)
    measure.close(
        t,
        expected,
        bound,
        "timesteps: model times 250 ln(sigma + 1e-44) of the schedule",
        bound_text="TIME-1",
        where=step_checks.where(config, spec),
        diagnose=lambda worst, bad: time_diagnosis(t, sigmas[:-1], worst),
    )


def time_diagnosis(t: np.ndarray, sigmas: np.ndarray, worst: tuple[int, ...]) -> str:
    """The map the times follow, fitted: t = a ln(sigma) + b by least squares (expected
    a = 250, b = 0), and the ratio at the worst sigma."""
    sigma = np.asarray(sigmas, dtype=np.float64).reshape(t.shape)
    expected = 250.0 * np.log(sigma[worst] + 1e-44)
    ratio = t[worst] / expected if expected != 0 else float("nan")
    text = (
        f"model time at sigma = {sigma[worst]!r}: {t[worst]!r}, expected 250 ln(sigma + 1e-44) = "
        f"{expected!r} (ratio {ratio:.6g})"
    )
    logs = np.log(sigma.ravel())
    if np.ptp(logs) > 0 and np.all(np.isfinite(t)):
        a, b = np.polyfit(logs, t.ravel(), 1)
        text += f"; the times fit {a:.6g} ln(sigma) + {b:.6g} (expected 250 ln(sigma) + 0)"
    return text


@pytest.mark.clause("TIME-2")
@pytest.mark.requires("sigma_to_t")
@given(
    config=scheduler_configs(),
    sigmas=st.lists(st.floats(1e-4, 1e4), min_size=1, max_size=16),
)
@pinned(config=[dict(DEFAULT_CONFIG)], sigmas=[[0.002, 80.0, 1.0]])
def test_sigma_to_t(
    impl: Adapter, measure: Measure, config: dict[str, Any], sigmas: list[float]
) -> None:
    values = np.array(sigmas)
    out = measure.call("sigma_to_t", impl.sigma_to_t, config, values)
    if isinstance(out, np.ndarray):  # diffusers returns numpy for a numpy input
        if out.shape != values.shape:
            measure.fail(
                "sigma_to_t(...)",
                f"returned shape {list(out.shape)}, expected {list(values.shape)}",
            )
        if out.dtype != np.float64:  # values first: collected, reported after them
            measure.note("sigma_to_t(...)", f"returned {out.dtype}, expected float64")
        t = out.astype(np.float64)
    else:
        t = measure.output(
            out, what="sigma_to_t(...)", shape=values.shape, dtype="float64", device=None
        )
    expected = truth.model_times(values)
    bound = bounds.model_time_rounding(expected, "float64")
    measure.close(
        t,
        expected,
        bound,
        "sigma_to_t",
        bound_text="TIME-2",
        where=f"sigmas {list(values)}, config {step_checks.config_text(config)}",
        diagnose=lambda worst, bad: time_diagnosis(np.asarray(t, dtype=np.float64), values, worst),
    )
