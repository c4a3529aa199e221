"""ADD: `add_noise(x0, z, t)`, the forward noising of img2img and inpainting (SPEC.md, "add_noise")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import truth
from conformance.inputs.cases import Case, cases, default_case
from conformance.inputs.strategies import pinned
from conformance.measuring import bounds, drivers, step_checks
from conformance.measuring.checks import Measure
from conformance.measuring.drivers import Sample
from conformance.protocol.adapter import Adapter


@st.composite
def cases_with_picks(draw: st.DrawFn) -> tuple[Case, list[int], int, int]:
    """A case, one schedule position per batch element, a begin index, and how many steps
    to take from it before add_noise (at most up to the last evaluation point)."""
    case = draw(cases())
    position = st.integers(0, case.n - 1)
    picks = draw(st.lists(position, min_size=case.shape[0], max_size=case.shape[0]))
    begin = draw(position)
    return case, picks, begin, draw(st.integers(0, case.n - 1 - begin))


def _add_noise(
    impl: Adapter,
    measure: Measure,
    case: Case,
    device: str,
    dtype: str,
    picks: list[int],
    begin: int | None,
    taken: int = 0,
) -> tuple[np.ndarray, Sample, Sample]:
    """add_noise(x0, z, t) with the model times the implementation stores at `picks`,
    after `set_begin_index(begin)` and `taken` steps from it when `begin` is given."""
    exact = truth.schedule(case.config, case.spec)
    x0 = drivers.sample(impl, drivers.normal(case.seed, case.shape), dtype, device)
    z = drivers.sample(impl, drivers.normal(case.seed + 1, case.shape), dtype, device)
    t = impl.timestep_array(exact.timesteps[picks], device)
    if begin is None:
        schedule = measure.call("set_timesteps", impl.schedule, case.config, case.spec, device)
        stored = measure.output(
            schedule.timesteps, what="timesteps", shape=(case.n,), dtype=None, device=None
        )
        t = impl.timestep_array(stored[picks], device)
        out = measure.call(
            "add_noise", impl.add_noise, case.config, case.spec, device, x0.native, z.native, t
        )
    else:
        scheduler = measure.call("constructor", impl.scheduler, **case.config)
        measure.call("set_timesteps", scheduler.set_timesteps, device=device, **case.spec.kwargs())
        measure.call(f"set_begin_index({begin})", scheduler.set_begin_index, begin)
        for k in range(begin, begin + taken):
            _step(impl, measure, scheduler, case, k, dtype, device)
        out = measure.call("add_noise", scheduler.add_noise, x0.native, z.native, t)
    what = "add_noise(...)"
    value = measure.output(out, what=what, shape=case.shape, dtype=dtype, device=device)
    return value, x0, z


def _step(
    impl: Adapter, measure: Measure, scheduler: object, case: Case, k: int, dtype: str, device: str
) -> None:
    """One loop body at position k (scale_model_input, step) with any inputs: it advances the
    step index. The noise is injected or from a seeded generator where either is claimed."""
    x = drivers.sample(impl, drivers.normal(case.seed + 2 + k, case.shape), dtype, device)
    F = drivers.sample(impl, drivers.normal(case.seed + 3 + k, case.shape), dtype, device)
    layer = drivers.noise_layer(impl)
    kwargs = {}
    if layer == "injected":
        z = drivers.sample(impl, drivers.normal(case.seed + 4 + k, case.shape), dtype, device)
        kwargs["noise"] = z.native
    elif layer == "reproduced":
        kwargs["generator"] = impl.generator(case.seed, device)
    t = scheduler.timesteps[k]
    measure.call(f"scale_model_input at position {k}", scheduler.scale_model_input, x.native, t)
    measure.call(f"step at position {k}", scheduler.step, F.native, t, x.native, **kwargs)


@pytest.mark.clause("ADD-1")
@pytest.mark.requires("add_noise")
@given(case_picks=cases_with_picks())
@pinned(
    case_picks=[
        (default_case(timesteps=(39, 22, 0), shape=(3, 2, 2)), [0, 1, 2], 0, 0),
        (default_case(timesteps=(39, 22, 0), shape=(1, 2)), [2], 0, 0),
    ]
)
def test_add_noise(
    impl: Adapter,
    measure: Measure,
    device: str,
    dtype: str,
    case_picks: tuple[Case, list[int], int, int],
) -> None:
    case, picks, _, _ = case_picks
    value, x0, z = _add_noise(impl, measure, case, device, dtype, picks, None)
    # The truth at the sigmas the implementation stores (a wrong schedule is SCHED's).
    exact = truth.schedule(case.config, case.spec)
    sigma = drivers.schedule_sigmas(impl, case.config, case.spec, device, exact)[picks]
    expected = truth.add_noise(x0.exact, z.exact, sigma)
    ramps = exact.ramps[picks].reshape((-1,) + (1,) * (len(case.shape) - 1))
    per_batch = sigma.reshape(ramps.shape)
    bound, scale = bounds.add_noise_bound(
        case.config, ramps, x0.exact, z.exact, dtype, sigma=per_batch
    )
    measure.close(
        value,
        expected,
        bound,
        "add_noise(x0, z, t)",
        bound_text=f"ADD-1 {dtype}",
        scale=scale,
        where=f"positions {picks} (sigmas {list(sigma)}) of "
        + step_checks.where(case.config, case.spec),
        diagnose=lambda worst, bad: _fitted_sigma(value, x0.exact, z.exact, worst[0], sigma),
    )


def _fitted_sigma(
    value: np.ndarray, x0: np.ndarray, z: np.ndarray, b: int, sigma: np.ndarray
) -> str:
    """The sigma fitted on batch element b: sum((out - x0) z) / sum(z^2)."""
    fitted = step_checks.fitted_scale(value[b] - x0[b], z[b], 1.0)
    return f"batch element {b}: noise scale fitted {fitted:.9g}, expected sigma {sigma[b]!r}"


@pytest.mark.clause("ADD-2")
@pytest.mark.requires("add_noise")
@pytest.mark.requires("stateful")
@given(case_picks=cases_with_picks())
@pinned(
    case_picks=[
        (default_case(timesteps=(39, 22, 0), shape=(3, 2)), [0, 1, 2], 1, 0),
        (default_case(timesteps=(39, 22, 0), shape=(3, 2)), [0, 1, 2], 0, 1),
        (default_case(timesteps=(39, 22, 0), shape=(3, 2)), [2, 2, 0], 0, 2),
    ]
)
def test_add_noise_with_a_begin_index(
    impl: Adapter,
    measure: Measure,
    device: str,
    dtype: str,
    case_picks: tuple[Case, list[int], int, int],
) -> None:
    # Before any step: sigma at the begin index (img2img); after `taken` steps: sigma at the
    # current step index, begin + taken (inpainting re-noises the known region each step).
    # Against the implementation's own add_noise with the model time of that index for every
    # batch element (ADD-1 checks that formula).
    case, picks, begin, taken = case_picks
    index = begin + taken
    value, x0, z = _add_noise(impl, measure, case, device, dtype, picks, begin, taken)
    plain, _, _ = _add_noise(impl, measure, case, device, dtype, [index] * len(picks), None)
    exact = truth.schedule(case.config, case.spec)
    ramps = np.full((len(picks),) + (1,) * (len(case.shape) - 1), exact.ramps[index])
    bound, scale = bounds.add_noise_bound(case.config, ramps, x0.exact, z.exact, dtype)
    sigmas = drivers.schedule_sigmas(impl, case.config, case.spec, device, exact)
    sigma = sigmas[[index] * len(picks)]
    measure.close(
        value,
        plain,
        bound,
        f"add_noise after set_begin_index({begin}) and {taken} steps vs add_noise at "
        f"position {index}",
        bound_text=f"ADD-1 {dtype}",
        scale=scale,
        where=f"model times at positions {picks} of " + step_checks.where(case.config, case.spec),
        diagnose=lambda worst, bad: _fitted_sigma(value, x0.exact, z.exact, worst[0], sigma),
    )
