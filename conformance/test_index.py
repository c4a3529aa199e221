"""INDEX: finding the step index from a timestep, and setting it (SPEC.md, "Step index").
Stateful API only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given

from conformance import truth
from conformance.inputs.cases import Case, cases, default_case
from conformance.inputs.strategies import pinned
from conformance.measuring import bounds, drivers, step_checks
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import Adapter, prev_sample_of

pytestmark = pytest.mark.requires("stateful")


def _ready(
    impl: Adapter, measure: Measure, case: Case, device: str, config: dict | None = None
) -> Any:
    scheduler = measure.call("constructor", impl.scheduler, **(config or case.config))
    measure.call("set_timesteps", scheduler.set_timesteps, device=device, **case.spec.kwargs())
    return scheduler


def _position(measure: Measure, value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        measure.fail(what, f"returned {value!r} ({type(value).__name__}), expected an int")
    return int(value)


@pytest.mark.clause("INDEX-1")
@given(case=cases())
@pinned(case=[default_case(timesteps=(39, 22, 0))])
def test_index_for_timestep(impl: Adapter, measure: Measure, device: str, case: Case) -> None:
    scheduler = _ready(impl, measure, case, device)
    for k in range(case.n):
        what = f"index_for_timestep(timesteps[{k}])"
        found = _position(
            measure,
            measure.call(what, scheduler.index_for_timestep, scheduler.timesteps[k]),
            what,
        )
        if found != k:
            measure.fail(what, f"returned {found}, expected {k}")
        measure.ok(what)


@pytest.mark.clause("INDEX-2")
def test_duplicates_take_the_second_occurrence(
    impl: Adapter, measure: Measure, device: str
) -> None:
    scheduler = _ready(impl, measure, default_case(timesteps=(39, 22, 0)), device)
    t = measure.output(scheduler.timesteps, what="timesteps", shape=(3,), dtype=None, device=None)
    doubled = impl.timestep_array(np.array([t[0], t[1], t[1], t[2]]), device)
    for value, expected in ((t[1], 2), (t[0], 0), (t[2], 3)):
        what = f"index_for_timestep({value!r}, schedule_timesteps=[t0, t1, t1, t2])"
        timestep = impl.timestep_array(np.array(value), device)
        found = _position(
            measure,
            measure.call(what, scheduler.index_for_timestep, timestep, doubled),
            what,
        )
        if found != expected:
            measure.fail(what, f"returned {found}, expected {expected}")
        measure.ok(what)


def _near_misses(t: float) -> list[float]:
    """Model times one rounding away from t: its float64 neighbours, its float32 neighbours,
    and t rounded to float32 (a time that went through a float32 buffer)."""
    t32 = np.float32(t)
    return [
        float(np.nextafter(t, np.inf)),
        float(np.nextafter(t, -np.inf)),
        float(t32),
        float(np.nextafter(t32, np.float32(np.inf))),
        float(np.nextafter(t32, np.float32(-np.inf))),
    ]


@pytest.mark.clause("INDEX-3")
def test_timestep_not_in_schedule_rejected(impl: Adapter, measure: Measure, device: str) -> None:
    case = default_case()
    scheduler = _ready(impl, measure, case, device)
    stored = measure.output(
        scheduler.timesteps, what="timesteps", shape=(case.n,), dtype=None, device=None
    )
    # Far from every model time, and one rounding away from each: the lookup is exact, so a
    # lookup within a tolerance (even a relative 1e-7) finds a position it must refuse.
    probes = [123.456, *(p for t in stored for p in _near_misses(float(t)))]
    for value in dict.fromkeys(p for p in probes if p not in stored):
        missing = impl.timestep_array(np.array(value), device)
        with measure.rejects("timestep", value):
            scheduler.index_for_timestep(missing)


@pytest.mark.clause("INDEX-5")
def test_set_begin_index_rejects_bad_values(impl: Adapter, measure: Measure, device: str) -> None:
    case = default_case()
    scheduler = _ready(impl, measure, case, device)
    # Past the end, negative, not an int: stored as given, each fails only at the first step
    # (an IndexError there, or a sample stepped from the wrong sigma: -1 is the last one).
    for value in (case.n, 99, -1, 1.5):
        with measure.rejects("begin_index", value):
            scheduler.set_begin_index(value)


@pytest.mark.clause("INDEX-4")
@given(case=cases(position="inner", min_steps=2))
@pinned(case=[default_case(timesteps=(39, 22, 0), k=1), default_case(timesteps=(39, 22, 0), k=0)])
def test_set_begin_index(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    # The first step after set_begin_index(k) against the same step reached by stepping
    # from position 0 (the implementation's own, with s_noise = 0 and zero noise where it
    # can be injected): the same number, whatever the step computes (STEP's clauses).
    config, k = {**case.config, "s_noise": 0.0}, case.k
    exact = truth.schedule(config, case.spec)
    x_values = drivers.normal(case.seed, case.shape, exact.sigmas[k])
    F_values = drivers.normal(case.seed + 1, case.shape)
    inject = impl.capabilities.injected_noise

    def step(scheduler: Any, t: Any, label: str) -> np.ndarray:
        x = drivers.sample(impl, x_values, dtype, device)
        F = drivers.sample(impl, F_values, dtype, device)
        kwargs = {}
        if inject:
            kwargs["noise"] = drivers.sample(impl, np.zeros(case.shape), dtype, device).native
        measure.call(f"scale_model_input ({label})", scheduler.scale_model_input, x.native, t)
        out = measure.call(f"step ({label})", scheduler.step, F.native, t, x.native, **kwargs)
        return measure.output(
            prev_sample_of(out),
            what=f"prev_sample ({label})",
            shape=case.shape,
            dtype=None,
            device=None,
        )

    scheduler = _ready(impl, measure, case, device, config)
    measure.call(f"set_begin_index({k})", scheduler.set_begin_index, k)
    if getattr(scheduler, "begin_index", None) != k:
        measure.note("begin_index", f"is {getattr(scheduler, 'begin_index', None)!r}, expected {k}")
    prev = step(scheduler, scheduler.timesteps[k], f"begin index {k}")
    if getattr(scheduler, "step_index", None) != k + 1:
        measure.note(
            "step_index after the first step", f"is {scheduler.step_index!r}, expected {k + 1}"
        )
    walked = _ready(impl, measure, case, device, config)
    for j in range(k):
        step(walked, walked.timesteps[j], f"position {j} from the start")
    expected = step(walked, walked.timesteps[k], f"position {k} from the start")
    bound, _ = bounds.step_bound(
        config, exact.ramps[k], exact.ramps[k + 1], x_values, F_values, np.zeros(case.shape), dtype
    )
    sigmas = drivers.own_sigmas(impl, config, case.spec, device)
    measure.close(
        prev,
        expected,
        bound,
        f"prev_sample at begin index {k} vs at position {k} stepped from 0",
        bound_text=f"step bound {dtype}",
        where=step_checks.where(config, case.spec, k),
        diagnose=lambda worst, bad: _which_sigma(config, sigmas, prev, x_values, F_values),
    )


def _which_sigma(
    config: dict[str, Any],
    sigmas: np.ndarray | None,
    prev: np.ndarray,
    x: np.ndarray,
    F: np.ndarray,
) -> str:
    """The schedule position whose sigma the step's output fits best."""
    fit = step_checks.fitted_scalings(prev, x, F) if not config["clip_denoised"] else None
    if fit is None or sigmas is None:
        return ""
    c_out = [
        float(
            truth.oracle.boundary_scalings(float(s), config["sigma_min"], config["sigma_data"])[1]
        )
        for s in sigmas[:-1]
    ]
    best = int(np.argmin([abs(c - fit[1]) for c in c_out]))
    return f"the output fits the scalings at position {best} (sigma {sigmas[best]!r})"
