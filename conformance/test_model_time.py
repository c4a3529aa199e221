"""TIME: the model times fed to the network (SPEC.md, "Model times")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conformance import tolerances, truth
from conformance.adapter import Adapter, TimestepSpec
from conformance.measure import Measure
from conformance.strategies import DEFAULT_CONFIG, custom_timesteps, scheduler_configs

fixture_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def configs_with_timesteps(draw: st.DrawFn) -> tuple[dict[str, Any], TimestepSpec]:
    config = draw(scheduler_configs())
    return config, TimestepSpec(
        timesteps=tuple(draw(custom_timesteps(config["num_train_timesteps"])))
    )


@pytest.mark.clause("TIME-1")
@pytest.mark.requires("schedule", "model_time")
@fixture_settings
@given(case=configs_with_timesteps())
@example(case=(dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(22, 0))))
@example(case=(dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(39, 0))))
def test_model_times_of_the_schedule(
    impl: Adapter, measure: Measure, device: str, case: tuple[dict[str, Any], TimestepSpec]
) -> None:
    config, spec = case
    schedule = measure.call(f"set_timesteps({spec.kwargs()})", impl.schedule, config, spec, device)
    exact = truth.schedule(config, spec)
    t = measure.output(
        schedule.timesteps, what="timesteps", shape=(len(exact),), dtype="float64", device=device
    )
    bound = tolerances.model_time_bound(config, exact.ramps, exact.timesteps)
    measure.close(t, exact.timesteps, bound, "timesteps", bound_text="TIME-1")


@pytest.mark.clause("TIME-2")
@pytest.mark.requires("sigma_to_t")
@fixture_settings
@given(
    config=scheduler_configs(),
    sigmas=st.lists(st.floats(1e-4, 1e4), min_size=1, max_size=16),
)
@example(config=dict(DEFAULT_CONFIG), sigmas=[0.002, 80.0, 1.0])
def test_sigma_to_t(
    impl: Adapter, measure: Measure, config: dict[str, Any], sigmas: list[float]
) -> None:
    values = np.array(sigmas)
    out = measure.call("sigma_to_t", impl.sigma_to_t, config, values)
    if isinstance(out, np.ndarray):  # diffusers returns numpy for a numpy input
        if out.dtype != np.float64 or out.shape != values.shape:
            measure.fail(
                "sigma_to_t(...)",
                f"returned {out.dtype}{list(out.shape)}, expected float64{list(values.shape)}",
            )
        t = out
    else:
        t = measure.output(
            out, what="sigma_to_t(...)", shape=values.shape, dtype="float64", device=None
        )
    expected = truth.model_times(values)
    bound = tolerances.SAFETY * tolerances.U["float64"] * (250.0 + 2.0 * np.abs(expected))
    measure.close(t, expected, bound, "sigma_to_t", bound_text="TIME-2")
