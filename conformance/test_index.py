"""INDEX: finding the step index from a timestep, and setting it (SPEC.md, "Step index").
Stateful API only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings

from conformance import steps, tolerances, truth
from conformance.adapter import Adapter, prev_sample_of
from conformance.cases import Case, cases, default_case
from conformance.measure import Measure

pytestmark = pytest.mark.requires("stateful")
fixture_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def _ready(impl: Adapter, measure: Measure, case: Case, device: str) -> object:
    scheduler = measure.call("constructor", impl.scheduler, **case.config)
    measure.call("set_timesteps", scheduler.set_timesteps, device=device, **case.spec.kwargs())
    return scheduler


def _position(measure: Measure, value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        measure.fail(what, f"returned {value!r} ({type(value).__name__}), expected an int")
    return int(value)


@pytest.mark.clause("INDEX-1")
@fixture_settings
@given(case=cases())
@example(case=default_case(timesteps=(39, 22, 0)))
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


@pytest.mark.clause("INDEX-4")
def test_set_begin_index_rejects_bad_values(impl: Adapter, measure: Measure, device: str) -> None:
    case = default_case()
    scheduler = _ready(impl, measure, case, device)
    # Past the end, negative, not an int: stored as given, each fails only at the first step
    # (an IndexError there, or a sample stepped from the wrong sigma: -1 is the last one).
    for value in (case.n, 99, -1, 1.5):
        with measure.rejects("begin_index", value):
            scheduler.set_begin_index(value)


@pytest.mark.clause("INDEX-4")
@pytest.mark.requires("known_noise")
@fixture_settings
@given(case=cases(position="inner", min_steps=2))
@example(case=default_case(timesteps=(39, 22, 0), k=1))
def test_set_begin_index(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    config, k = case.config, case.k
    exact = truth.schedule(config, case.spec)
    scheduler = _ready(impl, measure, case, device)
    measure.call(f"set_begin_index({k})", scheduler.set_begin_index, k)
    if getattr(scheduler, "begin_index", None) != k:
        measure.fail("begin_index", f"is {getattr(scheduler, 'begin_index', None)!r}, expected {k}")
    x = steps.sample(impl, steps.normal(case.seed, case.shape, exact.sigmas[k]), dtype, device)
    F = steps.sample(impl, steps.normal(case.seed + 1, case.shape), dtype, device)
    layer = steps.noise_layer(impl)
    measure.uses_noise_layer(layer)
    t = scheduler.timesteps[k]
    if layer == "injected":
        z = steps.sample(impl, steps.normal(case.seed + 2, case.shape), dtype, device)
        kwargs, z_exact = {"noise": z.native}, z.exact
    else:
        kwargs = {"generator": impl.generator(case.seed, device)}
        z_exact = impl.to_numpy(impl.reproduce_noise(case.seed, case.shape, dtype, device, 1)[0])
    measure.call("scale_model_input", scheduler.scale_model_input, x.native, t)
    out = measure.call("step", scheduler.step, F.native, t, x.native, **kwargs)
    prev = measure.output(
        prev_sample_of(out), what="prev_sample", shape=case.shape, dtype=dtype, device=device
    )
    if getattr(scheduler, "step_index", None) != k + 1:
        measure.fail(
            "step_index after the first step", f"is {scheduler.step_index!r}, expected {k + 1}"
        )
    # k <= n - 2: the next sigma is an evaluation point, not the appended sigma_min.
    expected = truth.step(config, exact.sigmas[k], exact.sigmas[k + 1], F.exact, x.exact, z_exact)
    bound, _ = tolerances.step_bound(
        config, exact.ramps[k], exact.ramps[k + 1], x.exact, F.exact, z_exact, dtype
    )
    measure.close(
        prev, expected, bound, f"prev_sample at begin index {k}", bound_text=f"step bound {dtype}"
    )
