"""SCHED: the Karras schedule and both `set_timesteps` conventions (SPEC.md, "Schedule")."""

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
    inference_steps,
    pinned,
    scheduler_configs,
)
from conformance.measuring import bounds, step_checks
from conformance.measuring.checks import Measure
from conformance.measuring.drivers import normal, sample
from conformance.protocol.adapter import Adapter, prev_sample_of
from conformance.protocol.values import TimestepSpec


@st.composite
def configs_with_steps(draw: st.DrawFn) -> tuple[dict[str, Any], TimestepSpec]:
    config = draw(scheduler_configs())
    return config, TimestepSpec(
        num_inference_steps=draw(inference_steps(config["num_train_timesteps"]))
    )


@st.composite
def configs_with_timesteps(draw: st.DrawFn) -> tuple[dict[str, Any], TimestepSpec]:
    config = draw(scheduler_configs())
    indices = draw(custom_timesteps(config["num_train_timesteps"]))
    return config, TimestepSpec(timesteps=tuple(indices))


def check_schedule(
    impl: Adapter, measure: Measure, config: dict[str, Any], spec: TimestepSpec, device: str
) -> None:
    config = impl.settings(config, spec)  # its own values where it fixes some
    schedule = measure.call(f"set_timesteps({spec.kwargs()})", impl.schedule, config, spec, device)
    exact = truth.schedule(config, spec)
    n = len(exact)
    sigmas = measure.output(
        schedule.sigmas,
        what=f"sigmas (the {n} evaluation points, then sigma_min) of {impl.terms.points(config, spec)}",
        shape=(n + 1,),
        dtype=("float64", "float32"),
        device=None,  # diffusers keeps sigmas on the CPU on purpose
    )
    # Held to the precision of the dtypes claimed, and of what is observed: a sigma read back
    # from a model time below float64 is known only so well (`Schedule.sigma_error`).
    caps = impl.capabilities
    precision = bounds.schedule_precision(caps.dtypes, caps.stateful)
    read = np.zeros(n + 1) if schedule.sigma_error is None else np.asarray(schedule.sigma_error)
    rel = bounds.schedule_rel_bound(config, exact.ramps, precision) + read[:-1]
    bound = rel * exact.sigmas[:-1]
    text = (
        "SCHED-1 float64 bound"
        if precision == "float64"
        else (f"SCHED-1 bound at {precision}, the precision of the dtypes claimed")
    )
    if read.any():
        text += f"; sigmas read back from the model time, known to {read.max():.2g} relative"
    measure.close(
        sigmas[:-1],
        exact.sigmas[:-1],
        bound,
        "sigmas (evaluation points)",
        bound_text=text,
        where=f"set_timesteps({spec.kwargs()}) with {step_checks.config_text(config)}",
        diagnose=lambda worst, bad: _schedule_diagnosis(sigmas[:-1], exact, worst),
    )
    # The appended sigma_min: within the bound at ramp 1 (MUST), bit-exact (SHOULD).
    eps = exact.sigmas[-1:]
    measure.close(
        sigmas[-1:],
        eps,
        bounds.schedule_rel_bound(config, 1.0) * eps,
        "sigmas[-1] (the appended sigma_min)",
        bound_text="SCHED-1 float64 bound at sigma_min",
    )
    measure.exact(sigmas[-1:], eps, "sigmas[-1] (the appended sigma_min), exactly", level="SHOULD")


def _schedule_diagnosis(sigmas: np.ndarray, exact: truth.ExactSchedule, worst: tuple) -> str:
    """What the stored sigmas look like: rounded to float32 or float16, or another ramp."""
    notes = []
    for name, kind in (("float32", np.float32), ("float16", np.float16)):
        if np.array_equal(sigmas, exact.sigmas[:-1].astype(kind).astype(np.float64)):
            notes.append(f"the sigmas are the exact ones rounded to {name}")
    rel = abs(sigmas[worst] / exact.sigmas[worst] - 1)
    notes.append(
        f"sigma at ramp {exact.ramps[worst]:.6g}: {sigmas[worst]!r}, expected "
        f"{exact.sigmas[worst]!r} ({rel:.3g} relative)"
    )
    return "; ".join(notes)


@pytest.mark.clause("SCHED-1")
@pytest.mark.requires("schedule")
@given(case=configs_with_steps())
@pinned(
    case=[
        (dict(DEFAULT_CONFIG), TimestepSpec(num_inference_steps=2)),
        (dict(DEFAULT_CONFIG), TimestepSpec(num_inference_steps=1)),
        (dict(DEFAULT_CONFIG), TimestepSpec(num_inference_steps=40)),
        (dict(DEFAULT_CONFIG, num_train_timesteps=201), TimestepSpec(num_inference_steps=3)),
    ]
)
def test_schedule_from_num_inference_steps(
    impl: Adapter, measure: Measure, device: str, case: tuple[dict[str, Any], TimestepSpec]
) -> None:
    check_schedule(impl, measure, *case, device)


@pytest.mark.clause("SCHED-2")
@pytest.mark.requires("schedule")
@given(case=configs_with_timesteps())
@pinned(
    case=[
        (dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(22, 0))),
        (dict(DEFAULT_CONFIG, rho=3.0), TimestepSpec(timesteps=(22, 0))),  # rho pinned off 7
        (dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(39, 0))),
        (dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(39,))),
        (dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(22,))),
        (dict(DEFAULT_CONFIG, num_train_timesteps=2), TimestepSpec(timesteps=(1, 0))),
    ]
)
def test_schedule_from_custom_timesteps(
    impl: Adapter, measure: Measure, device: str, case: tuple[dict[str, Any], TimestepSpec]
) -> None:
    check_schedule(impl, measure, *case, device)


# set_timesteps keyword arguments that must be refused, the argument to name, and other
# names the message may use instead.
INVALID = [
    ({}, "num_inference_steps", ("timesteps",)),
    ({"num_inference_steps": 2, "timesteps": [22, 0]}, "num_inference_steps", ("timesteps",)),
    ({"num_inference_steps": 0}, "num_inference_steps", ()),
    ({"num_inference_steps": 41}, "num_inference_steps", ()),
    ({"num_inference_steps": 2.5}, "num_inference_steps", ()),
    ({"timesteps": []}, "timesteps", ()),
    ({"timesteps": [22, 22]}, "timesteps", ()),
    ({"timesteps": [0, 22]}, "timesteps", ()),
    ({"timesteps": [40, 0]}, "timesteps", ()),
    ({"timesteps": [22, -5]}, "timesteps", ()),
    ({"timesteps": [22.7, 0]}, "timesteps", ()),
]


@pytest.mark.clause("SCHED-3")
@pytest.mark.requires("stateful")
@pytest.mark.parametrize(
    ("kwargs", "argument", "also"), INVALID, ids=[repr(k) for k, _, _ in INVALID]
)
def test_set_timesteps_arguments_validated(
    impl: Adapter, measure: Measure, kwargs: dict[str, Any], argument: str, also: tuple[str, ...]
) -> None:
    scheduler = measure.call("constructor", impl.scheduler)
    with measure.rejects(argument, kwargs, also=also):
        scheduler.set_timesteps(**kwargs)


@pytest.mark.clause("SCHED-4")
@pytest.mark.requires("stateful")
def test_set_timesteps_starts_a_fresh_pass(
    impl: Adapter, measure: Measure, device: str, dtype: str
) -> None:
    # Fresh input arrays for every call, s_noise = 0 and a zero draw where it can be
    # injected (else the same seed): only the scheduler's state can make the passes differ.
    scheduler = measure.call("constructor", impl.scheduler, s_noise=0.0)
    inject = impl.capabilities.injected_noise

    def arrays() -> tuple[Any, Any, dict[str, Any]]:
        x = sample(impl, normal(1, (2, 3), 80.0), dtype, device).native
        F = sample(impl, normal(2, (2, 3)), dtype, device).native
        noise = (
            {"noise": sample(impl, np.zeros((2, 3)), dtype, device).native}
            if inject
            else {"generator": impl.generator(5, device)}
        )
        return x, F, noise

    outputs = []
    for attempt in range(2):
        measure.call("set_timesteps", scheduler.set_timesteps, timesteps=[22, 0], device=device)
        for name in ("step_index", "begin_index"):
            if getattr(scheduler, name, None) is not None:
                measure.note(
                    f"{name} after set_timesteps (pass {attempt + 1})",
                    f"is {getattr(scheduler, name)!r}, expected None",
                )
        t = scheduler.timesteps[0]
        x, F, noise = arrays()
        scaled = measure.call("scale_model_input", scheduler.scale_model_input, x, t)
        x, F, noise = arrays()
        out = measure.call("step", scheduler.step, F, t, x, **noise)
        outputs.append(
            tuple(
                measure.output(a, what=what, shape=(2, 3), dtype=None, device=None)
                for a, what in ((scaled, "scale_model_input"), (prev_sample_of(out), "prev_sample"))
            )
        )
        if attempt == 0:  # step once more, so that the second pass starts from a used state
            x, F, noise = arrays()
            measure.call("step", scheduler.step, F, scheduler.timesteps[1], x, **noise)
    measure.exact(outputs[1][0], outputs[0][0], "scale_model_input in the second pass")
    measure.exact(outputs[1][1], outputs[0][1], "prev_sample in the second pass")
