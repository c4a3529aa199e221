"""NOISE: the draw z of Algorithm 1, line 5, in three layers (SPEC.md, "Noise")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings

from conformance import steps, tolerances, truth
from conformance.adapter import Adapter, StepInputs, TimestepSpec, prev_sample_of
from conformance.cases import Case, cases, default_case
from conformance.measure import Measure
from conformance.strategies import DEFAULT_CONFIG

fixture_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.clause("NOISE-1")
@pytest.mark.requires("injected_noise")
@fixture_settings
@given(case=cases(position="inner", min_steps=2))
@example(case=default_case(k=0, clip_denoised=False))
def test_injected_noise_used_as_given(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    exact = truth.schedule(case.config, case.spec)
    k = case.k
    sigma_next = float(exact.sigmas[k + 1])
    x = steps.sample(
        impl, steps.normal(case.seed, case.shape, float(exact.sigmas[k])), dtype, device
    )
    F = steps.sample(impl, steps.normal(case.seed + 1, case.shape), dtype, device)
    measure.uses_noise_layer("injected")
    for draw in range(2):  # two different z on the same inputs
        z = steps.sample(impl, steps.normal(case.seed + 10 + draw, case.shape), dtype, device)
        filler = [
            StepInputs(F.native, x.native, z.native) for _ in range(k)
        ]  # positions before k: any inputs, the same noise
        results = measure.call(
            "the loop body",
            impl.run_steps,
            case.config,
            case.spec,
            device,
            [*filler, StepInputs(F.native, x.native, z.native)],
        )
        prev = measure.output(
            results[k].prev_sample,
            what=f"prev_sample with z #{draw + 1}",
            shape=case.shape,
            dtype=dtype,
            device=device,
        )
        expected = truth.step(
            case.config, float(exact.sigmas[k]), sigma_next, F.exact, x.exact, z.exact
        )
        bound, scale = tolerances.step_bound(
            case.config,
            float(exact.ramps[k]),
            float(exact.ramps[k + 1]),
            x.exact,
            F.exact,
            z.exact,
            dtype,
        )
        measure.close(
            prev, expected, bound, f"prev_sample with injected z #{draw + 1}", scale=scale
        )


@pytest.mark.clause("NOISE-1")
@pytest.mark.requires("injected_noise")
def test_injected_noise_of_another_shape_rejected(
    impl: Adapter, measure: Measure, device: str, dtype: str
) -> None:
    spec = TimestepSpec(timesteps=(22, 0))  # position 0 re-noises: the noise is used
    shape = (2, 3, 4)
    x = steps.sample(impl, steps.normal(1, shape, 80.0), dtype, device)
    F = steps.sample(impl, steps.normal(2, shape), dtype, device)
    # Each broadcasts to the sample's shape: one batch element, no batch axis, one channel,
    # a scalar; a broadcast would repeat one draw across the batch.
    for bad in ((1, 3, 4), (3, 4), (2, 1, 4), ()):
        z = steps.sample(impl, steps.normal(3, bad), dtype, device)
        with measure.rejects("noise", f"an array of shape {bad}"):
            impl.run_steps(DEFAULT_CONFIG, spec, device, [StepInputs(F.native, x.native, z.native)])


@pytest.mark.clause("NOISE-2")
@pytest.mark.requires("noise_convention", "per_position_inputs")
@fixture_settings
@given(case=cases(position="last", min_steps=2))
@example(case=default_case(timesteps=(39, 22, 0), k=2, clip_denoised=False))
def test_draws_reproduce_the_declared_convention(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    exact = truth.schedule(case.config, case.spec)
    inputs = [
        (
            steps.normal(case.seed + 2 * j + 1, case.shape),
            steps.normal(case.seed + 2 * j, case.shape, float(s)),
        )
        for j, s in enumerate(exact.sigmas[: min(case.n, 4)])
    ]
    # The generator path even where noise= is claimed: this clause is about the draws.
    run = _generator_run(impl, measure, case, device, dtype, inputs)
    # The first positions whose draw is scaled by a nonzero noise scale (the last one's is 0:
    # STEP-4; one-step sampling draws nothing: STEP-5); all were drawn in order.
    for k in range(min(case.n - 1, 3)):
        prev = steps.prev_output(measure, run, k, dtype, device)
        x, F, z = run.x[k].exact, run.F[k].exact, run.z[k]
        nxt = (
            (float(exact.sigmas[k + 1]), float(exact.ramps[k + 1]))
            if k + 1 < case.n
            else (None, None)
        )
        expected = truth.step(case.config, float(exact.sigmas[k]), nxt[0], F, x, z)
        bound, scale = tolerances.step_bound(
            case.config, float(exact.ramps[k]), nxt[1], x, F, z, dtype
        )
        measure.close(
            prev, expected, bound, f"prev_sample at position {k} (reproduced draw)", scale=scale
        )


@pytest.mark.clause("NOISE-2")
@pytest.mark.requires("noise_convention", "stateful")
@fixture_settings
@given(case=cases())
@example(case=default_case(timesteps=(39, 22, 0), shape=(3, 2, 2), clip_denoised=False))
@example(case=default_case(timesteps=(22,), shape=(2, 3)))
def test_generator_advances_one_draw_per_step(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    _whole_loop(impl, measure, device, dtype, case, per_element=False)


@pytest.mark.clause("NOISE-2")
@pytest.mark.requires("generator_list", "stateful")
@fixture_settings
@given(case=cases())
@example(case=default_case(timesteps=(39, 22, 0), shape=(3, 2, 2), clip_denoised=False))
@example(case=default_case(timesteps=(22,), shape=(2, 3)))
def test_one_generator_per_batch_element(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    _whole_loop(impl, measure, device, dtype, case, per_element=True)


def _whole_loop(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case, *, per_element: bool
) -> None:
    """The whole loop with a seeded generator (or, `per_element`, a list of them, one per batch
    element: diffusers' `randn_tensor` draws shape (1, ...) from each): the draws are the
    convention's at the positions with a nonzero noise scale, and afterwards each generator
    is where one sample-shaped draw per step leaves it, the last step's draw (scaled by 0)
    included; one-step sampling draws nothing (STEP-5)."""
    generators = "per batch element" if per_element else "one"
    seeds = [case.seed + b for b in range(case.shape[0])] if per_element else [case.seed]

    def seeded() -> Any:
        made = [impl.generator(seed, device) for seed in seeds]
        return made if per_element else made[0]

    def states(generator: Any) -> list[Any]:
        return [impl.generator_state(g) for g in (generator if per_element else [generator])]

    exact = truth.schedule(case.config, case.spec)
    n = case.n
    scheduler = measure.call("constructor", impl.scheduler, **case.config)
    measure.call("set_timesteps", scheduler.set_timesteps, device=device, **case.spec.kwargs())
    measure.uses_noise_layer("reproduced")
    g, mirror = seeded(), seeded()  # the one passed to step; the suite's own copy
    for k in range(n):
        sigma = float(exact.sigmas[k])
        x = steps.sample(impl, steps.normal(case.seed + 2 * k, case.shape, sigma), dtype, device)
        F = steps.sample(impl, steps.normal(case.seed + 2 * k + 1, case.shape), dtype, device)
        t = scheduler.timesteps[k]
        measure.call(f"scale_model_input at position {k}", scheduler.scale_model_input, x.native, t)
        out = measure.call(
            f"step at position {k}", scheduler.step, F.native, t, x.native, generator=g
        )
        if n == 1:  # one-step sampling draws nothing (STEP-5)
            continue
        z = impl.to_numpy(impl.draw_noise(mirror, case.shape, dtype, device))
        if k >= min(n - 1, 3):  # the last draw is scaled by 0 (STEP-4); a few positions do
            continue
        prev = measure.output(
            prev_sample_of(out),
            what=f"prev_sample at position {k} ({generators} generator)",
            shape=case.shape,
            dtype=dtype,
            device=device,
        )
        expected = truth.step(case.config, sigma, float(exact.sigmas[k + 1]), F.exact, x.exact, z)
        bound, scale = tolerances.step_bound(
            case.config,
            float(exact.ramps[k]),
            float(exact.ramps[k + 1]),
            x.exact,
            F.exact,
            z,
            dtype,
        )
        measure.close(
            prev, expected, bound, f"prev_sample at position {k} (reproduced draw)", scale=scale
        )
    draws = n if n > 1 else 0
    for b, (got, want) in enumerate(zip(states(g), states(mirror), strict=True)):
        if not _same_state(got, want):
            whose = f"generator #{b}" if per_element else "the generator"
            measure.fail(
                f"{whose} after the {n}-step loop",
                f"is not where {draws} draw(s) of the convention leave it (one per step, the "
                "last included; none for one-step sampling)",
            )
    measure.ok(f"the generator state after the {n}-step loop")


def _same_state(a: Any, b: Any) -> bool:
    if hasattr(a, "shape") and hasattr(b, "shape"):
        return a.shape == b.shape and bool((a == b).all())
    return a == b


def _generator_run(
    impl: Adapter, measure: Measure, case: Case, device: str, dtype: str, inputs: list
) -> steps.StepRun:
    measure.uses_noise_layer("reproduced")
    F = [steps.sample(impl, f, dtype, device) for f, _ in inputs]
    x = [steps.sample(impl, v, dtype, device) for _, v in inputs]
    results = measure.call(
        "the loop body with a seeded generator",
        impl.run_steps,
        case.config,
        case.spec,
        device,
        [StepInputs(f.native, v.native) for f, v in zip(F, x, strict=True)],
        seed=case.seed,
    )
    if case.n > 1:
        draws = impl.reproduce_noise(case.seed, case.shape, dtype, device, len(inputs))
        z = [impl.to_numpy(d) for d in draws]
    else:
        z = [np.zeros(case.shape)]
    return steps.StepRun(
        F, x, z, [r.scaled for r in results], [r.prev_sample for r in results], "reproduced"
    )


# NOISE-3: w = (prev - denoised) / (s g) over n elements, denoised = 0 exactly (F = x = 0).
N_STAT = 4096
FIVE_SE = 5.0  # five standard errors per moment


@pytest.mark.clause("NOISE-3")
@pytest.mark.requires("own_draws", "per_position_inputs")
def test_statistical_moments_of_the_draws(
    impl: Adapter, measure: Measure, device: str, dtype: str
) -> None:
    config = dict(DEFAULT_CONFIG, clip_denoised=False)
    spec = TimestepSpec(timesteps=(30, 22, 0))  # both positions re-noise to a sigma > sigma_min
    exact = truth.schedule(config, spec)
    shape = (4, 32, 32)
    zeros = steps.sample(impl, np.zeros(shape), dtype, device)
    measure.uses_noise_layer("statistical")
    results = measure.call(
        "the loop body (own draws)",
        impl.run_steps,
        config,
        spec,
        device,
        [StepInputs(zeros.native, zeros.native), StepInputs(zeros.native, zeros.native)],
    )
    draws = []
    for k in range(2):
        prev = measure.output(
            results[k].prev_sample,
            what=f"prev_sample at position {k}",
            shape=shape,
            dtype=dtype,
            device=device,
        )
        g = truth.noise_scale(config, float(exact.sigmas[k + 1]))
        w = prev.ravel() / g
        draws.append(w)
        n = w.size
        mean, var = float(np.mean(w)), float(np.var(w))
        inside = float(np.mean(np.abs(w) <= 1.0))
        # Rounding to D moves each w by at most u_D |w|: the moments move by O(u_D).
        slack = 4 * tolerances.U[dtype]
        for what, value, center, half in (
            ("mean of z", mean, 0.0, FIVE_SE / np.sqrt(n) + slack),
            ("variance of z", var, 1.0, FIVE_SE * np.sqrt(2.0 / n) + slack),
            ("fraction of z in [-1, 1]", inside, 0.6827, FIVE_SE * np.sqrt(0.2166 / n) + slack),
        ):
            measure.close(
                np.array([value]),
                np.array([center]),
                half,
                f"{what} at position {k} (n = {n})",
                bound_text="five standard errors",
            )
    if np.array_equal(draws[0], draws[1]):
        measure.fail("the draws of two steps", "are identical")


@pytest.mark.clause("NOISE-2")
@pytest.mark.requires("conventions", "known_noise")
@fixture_settings
@given(case=cases(position="last", min_steps=2))
@example(case=default_case(timesteps=(39, 22, 0), k=2, clip_denoised=False))
def test_one_draw_per_step_of_a_functional_sampler(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    """A functional sampler runs its own loop: through its noise hook it takes one draw after
    each evaluation that re-noises (none, or one scaled by 0, after the last), and with a
    seeded generator its draws are the declared convention's, in order: its chained
    prev_sample within the STEP-3 bound of the oracle with those draws at every position."""
    exact = truth.schedule(case.config, case.spec)
    inputs = [
        (
            steps.normal(case.seed + 2 * j + 1, case.shape),
            steps.normal(case.seed + 2 * j, case.shape, float(s)),
        )
        for j, s in enumerate(exact.sigmas[: case.n])
    ]
    run = steps.run(impl, measure, case.config, case.spec, device, dtype, inputs, seed=case.seed)
    for k, draws in enumerate(run.draws or []):
        if draws is None:
            continue
        allowed = (1,) if k < case.n - 1 else (0, 1)
        if draws not in allowed:
            measure.fail(
                f"draws after evaluation {k} of {case.n}",
                f"{draws} taken through the noise hook, expected {' or '.join(map(str, allowed))}",
            )
        measure.ok(f"draws after evaluation {k}")
    if run.layer != "reproduced":  # the draws were the suite's: their use is STEP-3's
        return
    for k in range(case.n - 1):
        prev = steps.prev_output(measure, run, k, dtype, device)
        x, F, z = run.x[k].exact, run.F[k].exact, run.z[k]
        expected = truth.step(
            case.config, float(exact.sigmas[k]), float(exact.sigmas[k + 1]), F, x, z
        )
        bound, scale = tolerances.step_bound(
            case.config, float(exact.ramps[k]), float(exact.ramps[k + 1]), x, F, z, dtype
        )
        measure.close(
            prev, expected, bound, f"prev_sample at position {k} ({run.layer} draw)", scale=scale
        )
