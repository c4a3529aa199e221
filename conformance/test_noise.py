"""NOISE: the draw z of Algorithm 1, line 5, in three layers (SPEC.md, "Noise")."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given

from conformance import truth
from conformance.inputs.cases import Case, cases, default_case
from conformance.inputs.strategies import DEFAULT_CONFIG, pinned, scheduler_configs
from conformance.measuring import bounds, drivers, step_checks
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import Adapter, prev_sample_of, unmet_requirement
from conformance.protocol.bridges import same_generator_state
from conformance.protocol.values import StepInputs, TimestepSpec


@pytest.mark.clause("NOISE-1")
@pytest.mark.requires("injected_noise")
@given(
    case=cases(
        configs=scheduler_configs().filter(lambda c: c["s_noise"] >= 0.25),
        position="inner",
        min_steps=2,
    )
)
@pinned(
    case=[
        default_case(k=0, clip_denoised=False),
        default_case(timesteps=(30, 22, 0), k=1, s_noise=0.5),
    ]
)
def test_injected_noise_used_as_given(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    # Three steps on the same inputs, injected z = 0, z_1, z_2: prev(z_i) - prev(0) must be
    # s g_hat z_i with one fitted scale g_hat, whatever the denoised value (STEP-1) and the
    # scale (STEP-3) are: the given z is what was added. No clamp (STEP-2's, STEP-3's).
    case = replace(case, config={**case.config, "clip_denoised": False})
    exact = truth.schedule(case.config, case.spec)
    k = case.k
    x_values = drivers.normal(case.seed, case.shape, float(exact.sigmas[k]))
    F_values = drivers.normal(case.seed + 1, case.shape)
    measure.uses_noise_layer("injected")
    draws = [np.zeros(case.shape)] + [
        drivers.normal(case.seed + 10 + i, case.shape) for i in (0, 1)
    ]
    prevs, zs = [], []
    for i, values in enumerate(draws):
        inputs = []
        for _ in range(k + 1):  # positions before k: the same inputs (fresh arrays each)
            x = drivers.sample(impl, x_values, dtype, device)
            F = drivers.sample(impl, F_values, dtype, device)
            z = drivers.sample(impl, values, dtype, device)
            inputs.append(StepInputs(F.native, x.native, z.native))
        results = measure.call(
            "the loop body", impl.run_steps, case.config, case.spec, device, inputs
        )
        prevs.append(
            measure.output(
                results[k].prev_sample,
                what=f"prev_sample with z #{i}",
                shape=case.shape,
                dtype=None,
                device=None,
            )
        )
        zs.append(z.exact)
    s = float(case.config["s_noise"])
    d = np.stack([prevs[1] - prevs[0], prevs[2] - prevs[0]])
    w = np.stack([zs[1], zs[2]])
    g_hat = step_checks.fitted_scale(d, w, s)
    ramp_next = float(exact.ramps[k + 1])
    observed = bounds.at_observed_scale(case.config, float(exact.sigmas[k + 1]), g_hat)
    bound = np.stack(
        [
            bounds.renoise_difference_bound(
                observed, ramp_next, zs[i], zs[0], prevs[i], prevs[0], dtype
            )
            for i in (1, 2)
        ]
    )
    bound = bound + np.abs(w) * step_checks.fitted_scale_bound(bound, w)
    place = step_checks.where(case.config, case.spec, k, impl.terms)
    measure.close(
        d,
        s * g_hat * w if np.isfinite(g_hat) else np.zeros_like(d),
        bound,
        "prev(z_i) - prev(0) against s g_hat z_i (one fitted scale for both z)",
        bound_text=f"two draws, {dtype}",
        scale=np.abs(s * g_hat * w) + np.abs(prevs[0]),
        where=place,
        diagnose=lambda worst, bad: (
            f"fitted scale {g_hat:.9g}; at element {worst[1:]} with z #{worst[0] + 1} the "
            f"added noise is {d[worst]!r} where the given z ({w[worst]!r}) times s g_hat is "
            f"{s * g_hat * w[worst]!r}: not the given z"
        ),
    )


@pytest.mark.clause("NOISE-4")
@pytest.mark.requires("injected_noise", "stateful")
def test_injected_noise_of_another_shape_rejected(
    impl: Adapter, measure: Measure, device: str, dtype: str
) -> None:
    spec = TimestepSpec(timesteps=(22, 0))  # position 0 re-noises: the noise is used
    shape = (2, 3, 4)
    x = drivers.sample(impl, drivers.normal(1, shape, 80.0), dtype, device)
    F = drivers.sample(impl, drivers.normal(2, shape), dtype, device)
    # Each broadcasts to the sample's shape: one batch element, no batch axis, one channel,
    # a scalar; a broadcast would repeat one draw across the batch.
    for bad in ((1, 3, 4), (3, 4), (2, 1, 4), ()):
        z = drivers.sample(impl, drivers.normal(3, bad), dtype, device)
        with measure.rejects("noise", f"an array of shape {bad}"):
            impl.run_steps(DEFAULT_CONFIG, spec, device, [StepInputs(F.native, x.native, z.native)])


@pytest.mark.clause("NOISE-2")
@pytest.mark.requires("noise_convention", "per_position_inputs")
@given(case=cases(position="last", min_steps=2))
@pinned(case=[default_case(timesteps=(39, 22, 0), k=2, clip_denoised=False)])
def test_draws_reproduce_the_declared_convention(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    case = replace(case, config={**case.config, "clip_denoised": False})  # the clamp: STEP-2's
    exact = truth.schedule(case.config, case.spec)
    inputs = [
        (
            drivers.normal(case.seed + 2 * j + 1, case.shape),
            drivers.normal(case.seed + 2 * j, case.shape, float(s)),
        )
        for j, s in enumerate(exact.sigmas[: min(case.n, 4)])
    ]
    # The generator path even where noise= is claimed: this clause is about the draws.
    # Two seeds on the same inputs: prev_1 - prev_2 = s g (z_1 - z_2) with the convention's
    # z, whatever the denoised value (STEP-1) and the scale g (STEP-3, fitted here).
    runs = [
        _generator_run(impl, measure, case, device, dtype, inputs, seed)
        for seed in (case.seed, case.seed + 1)
    ]
    s = float(case.config["s_noise"])
    for k in range(min(case.n - 1, 3)):
        if truth.noise_scale(case.config, float(exact.sigmas[k + 1])) == 0.0:
            continue  # the next sigma is sigma_min: no draw reaches the output
        p1, p2 = (step_checks.prev_values(measure, r, k) for r in runs)
        w = runs[0].z[k] - runs[1].z[k]
        d = p1 - p2
        g_hat = step_checks.fitted_scale(d, w, s)
        observed = bounds.at_observed_scale(case.config, float(exact.sigmas[k + 1]), g_hat)
        bound = bounds.renoise_difference_bound(
            observed, float(exact.ramps[k + 1]), runs[0].z[k], runs[1].z[k], p1, p2, dtype
        )
        bound = bound + np.abs(w) * step_checks.fitted_scale_bound(bound, w)
        place = step_checks.where(case.config, case.spec, k, impl.terms)
        measure.close(
            d,
            s * g_hat * w if np.isfinite(g_hat) else np.zeros_like(d),
            bound,
            f"prev_1 - prev_2 at position {k} against the convention's draws (two seeds)",
            bound_text=f"two draws, {dtype}",
            scale=np.abs(s * g_hat * w) + np.abs(p1),
            where=place,
            diagnose=lambda worst, bad, d=d, w=w, g=g_hat: (
                f"fitted scale {g:.6g}; the noise added at element {worst} is {d[worst]!r}, "
                f"the convention's draws give {s * g * w[worst]!r}: other numbers than "
                f"{impl.capabilities.noise_convention} draws"
            ),
        )


@pytest.mark.clause("NOISE-2")
@pytest.mark.requires("noise_convention", "stateful")
@given(case=cases(min_steps=2))
@pinned(
    case=[
        default_case(timesteps=(39, 22, 0), shape=(3, 2, 2), clip_denoised=False),
        default_case(timesteps=(22, 0), shape=(1, 3)),
    ]
)
def test_generator_advances_one_draw_per_step(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    _whole_loop(impl, measure, device, dtype, case, per_element=False)


@pytest.mark.clause("NOISE-2")
@pytest.mark.requires("generator_list", "stateful")
@given(case=cases(min_steps=2))
@pinned(
    case=[
        default_case(timesteps=(39, 22, 0), shape=(3, 2, 2), clip_denoised=False),
        default_case(timesteps=(22, 0), shape=(2, 3)),
    ]
)
def test_one_generator_per_batch_element(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    _whole_loop(impl, measure, device, dtype, case, per_element=True)


def _whole_loop(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case, *, per_element: bool
) -> None:
    """The whole loop with a seeded generator (or, `per_element`, a list of them, one per batch
    element: diffusers' `randn_tensor` draws shape (1, ...) from each), twice, with two seeds:
    the difference of the two passes is s g times the difference of the convention's draws at
    the positions with a nonzero noise scale (whatever the denoised value and the scale), and
    afterwards each generator is where one sample-shaped draw per step leaves it, the last
    step's draw (scaled by 0) included. One-step sampling is STEP-5's."""
    generators = "per batch element" if per_element else "one"
    case = replace(case, config={**case.config, "clip_denoised": False})  # the clamp: STEP-2's
    exact = truth.schedule(case.config, case.spec)
    n = case.n
    measure.uses_noise_layer("reproduced")
    passes = []
    for base in (case.seed, case.seed + 1000):
        seeds = [base + b for b in range(case.shape[0])] if per_element else [base]

        def seeded(seeds: list[int] = seeds) -> Any:
            made = [impl.generator(seed, device) for seed in seeds]
            return made if per_element else made[0]

        scheduler = measure.call("constructor", impl.scheduler, **case.config)
        measure.call("set_timesteps", scheduler.set_timesteps, device=device, **case.spec.kwargs())
        g, mirror = seeded(), seeded()  # the one passed to step; the suite's own copy
        prevs, draws = [], []
        for k in range(n):
            sigma = float(exact.sigmas[k])
            x = drivers.sample(
                impl, drivers.normal(case.seed + 2 * k, case.shape, sigma), dtype, device
            )
            F = drivers.sample(
                impl, drivers.normal(case.seed + 2 * k + 1, case.shape), dtype, device
            )
            t = scheduler.timesteps[k]
            measure.call(
                f"scale_model_input at position {k}", scheduler.scale_model_input, x.native, t
            )
            out = measure.call(
                f"step at position {k}", scheduler.step, F.native, t, x.native, generator=g
            )
            draws.append(impl.to_numpy(impl.draw_noise(mirror, case.shape, dtype, device)))
            prevs.append(
                measure.output(
                    prev_sample_of(out),
                    what=f"prev_sample at position {k} ({generators} generator)",
                    shape=case.shape,
                    dtype=None,
                    device=None,
                )
            )
        for b, (got, want) in enumerate(zip(_states(impl, g), _states(impl, mirror), strict=True)):
            if not same_generator_state(got, want):
                whose = f"generator #{b}" if per_element else "the generator"
                measure.note(
                    f"{whose} after the {n}-step loop",
                    f"is not where {n} draw(s) of the convention leave it (one per step, the "
                    f"last included), at {step_checks.where(case.config, case.spec)}",
                )
        passes.append((prevs, draws))
    measure.ok(f"the generator state after the {n}-step loop")
    s = float(case.config["s_noise"])
    for k in range(min(n - 1, 3)):
        if s == 0 or truth.noise_scale(case.config, float(exact.sigmas[k + 1])) == 0.0:
            continue
        (p1, z1), (p2, z2) = ((p[k], z[k]) for p, z in passes)
        d, w = p1 - p2, z1 - z2
        g_hat = step_checks.fitted_scale(d, w, s)
        observed = bounds.at_observed_scale(case.config, float(exact.sigmas[k + 1]), g_hat)
        bound = bounds.renoise_difference_bound(
            observed, float(exact.ramps[k + 1]), z1, z2, p1, p2, dtype
        )
        bound = bound + np.abs(w) * step_checks.fitted_scale_bound(bound, w)
        measure.close(
            d,
            s * g_hat * w if np.isfinite(g_hat) else np.zeros_like(d),
            bound,
            f"prev_1 - prev_2 at position {k} against the convention's draws "
            f"({generators} generator)",
            bound_text=f"two draws, {dtype}",
            scale=np.abs(s * g_hat * w) + np.abs(p1),
            where=step_checks.where(case.config, case.spec, k, impl.terms),
        )


def _states(impl: Adapter, generator: Any) -> list[Any]:
    return [
        impl.generator_state(g)
        for g in (generator if isinstance(generator, (list, tuple)) else [generator])
    ]


def _generator_run(
    impl: Adapter,
    measure: Measure,
    case: Case,
    device: str,
    dtype: str,
    inputs: list,
    seed: int,
) -> drivers.StepRun:
    measure.uses_noise_layer("reproduced")
    F = [drivers.sample(impl, f, dtype, device) for f, _ in inputs]
    x = [drivers.sample(impl, v, dtype, device) for _, v in inputs]
    results = measure.call(
        "the loop body with a seeded generator",
        impl.run_steps,
        case.config,
        case.spec,
        device,
        [StepInputs(f.native, v.native) for f, v in zip(F, x, strict=True)],
        seed=seed,
    )
    draws = impl.reproduce_noise(seed, case.shape, dtype, device, len(inputs))
    z = [impl.to_numpy(d) for d in draws]
    return drivers.StepRun(
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

    def zeros() -> Any:
        return drivers.sample(impl, np.zeros(shape), dtype, device).native

    measure.uses_noise_layer("statistical")
    results = measure.call(
        "the loop body (own draws)",
        impl.run_steps,
        config,
        spec,
        device,
        [StepInputs(zeros(), zeros()), StepInputs(zeros(), zeros())],
    )
    # The scale the implementation uses (STEP-3's finding, not this clause's): fitted on a
    # step with injected draws where it takes them, else s g at its own sigmas.
    sigmas = drivers.schedule_sigmas(impl, config, spec, device, exact)
    scales = [truth.noise_scale(config, float(sigmas[k + 1])) for k in range(2)]
    if impl.capabilities.injected_noise:
        z = [drivers.sample(impl, drivers.normal(5 + k, shape), dtype, device) for k in range(2)]
        known = measure.call(
            "the loop body (injected draws)",
            impl.run_steps,
            config,
            spec,
            device,
            [StepInputs(zeros(), zeros(), z[k].native) for k in range(2)],
        )
        for k in range(2):
            prev = impl.to_numpy(known[k].prev_sample)
            fitted = step_checks.fitted_scale(prev, z[k].exact, 1.0)
            residual = np.max(np.abs(prev - fitted * z[k].exact), initial=0.0)
            # Only a step that used the given draws tells the scale (NOISE-1 checks that).
            if np.isfinite(fitted) and fitted > 0 and residual <= 1e-2 * np.max(np.abs(prev)):
                scales[k] = fitted
    draws = []
    for k in range(2):
        prev = measure.output(
            results[k].prev_sample,
            what=f"prev_sample at position {k}",
            shape=shape,
            dtype=None,
            device=None,
        )
        g = scales[k]
        w = prev.ravel() / g
        draws.append(w)
        n = w.size
        mean, var = float(np.mean(w)), float(np.var(w))
        inside = float(np.mean(np.abs(w) <= 1.0))
        slack = bounds.moment_rounding(dtype)
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
    measure.ok("the draws of two steps differ")


@pytest.mark.clause("NOISE-2")
@pytest.mark.requires("conventions", "known_noise")
@given(case=cases(position="last", min_steps=2))
@pinned(case=[default_case(timesteps=(39, 22, 0), k=2, clip_denoised=False)])
def test_one_draw_per_step_of_a_functional_sampler(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    """A functional sampler runs its own loop. Through its noise hook it takes one draw after
    each evaluation that re-noises (none, or one scaled by 0, after the last). From the
    caller's seeded generator it takes one draw of the convention per step, the last
    included (the generator's state after the loop), and they are the convention's: at each
    of the first positions that re-noise, two runs that share their draws before it and draw
    from two seeds there differ by s g_hat (z_1 - z_2) (as the stateful NOISE-2; the chained
    sample itself is the step clauses')."""
    if not unmet_requirement(impl, "clip_off"):  # the clamp: STEP-2's (same x_k: d is the noise)
        case = replace(case, config={**case.config, "clip_denoised": False})
    case = step_checks.own_settings(impl, case)
    exact = truth.schedule(case.config, case.spec)
    inputs = step_checks.loop_inputs(replace(case, k=case.n - 1), exact)
    run = drivers.run(impl, measure, case.config, case.spec, device, dtype, inputs, seed=case.seed)
    counts = run.draws or []
    if impl.noise_through_hook or impl.generator_is_key:
        # Through a hook, or from a key (no state: a draw scaled by 0 costs the caller nothing)
        source = "through the noise hook" if impl.noise_through_hook else "from its key"
        for k, draws in enumerate(counts):
            allowed = (1,) if k < case.n - 1 else (0, 1)
            if draws not in allowed:
                taken = f"{draws} taken {source}"
                if draws is None:  # `Running._key_draws`
                    taken = (
                        "a draw from a key that is not the declared splitting's next (a key "
                        "used twice, or the key given drawn from: the same noise again)"
                    )
                measure.fail(
                    f"draws after evaluation {k} of {case.n}",
                    f"{taken}, expected {' or '.join(map(str, allowed))}",
                )
            measure.ok(f"draws after evaluation {k}")
        if impl.noise_through_hook:
            return  # the draws were the suite's: their use is STEP-3's
    place = step_checks.where(case.config, case.spec)
    if not impl.generator_is_key and any(c is not None for c in counts):
        total = None if None in counts else sum(counts)
        if total != case.n:
            taken = "no whole number of" if total is None else str(total)
            measure.note(
                f"the generator after the {case.n}-step loop",
                f"is where {taken} draws of the convention leave it, expected {case.n} (one per "
                f"step, the last included; per evaluation: {counts}), at {place}",
            )
        else:
            measure.ok(f"the generator after the {case.n}-step loop")
    for k in range(min(case.n - 1, 3)):
        if truth.noise_scale(case.config, float(exact.sigmas[k + 1])) == 0.0:
            continue  # the next sigma is sigma_min: no draw reaches the output
        at_k = replace(case, k=k)
        runs = step_checks.two_runs(impl, measure, at_k, exact, device, dtype)
        step_checks.check_renoise(
            measure,
            at_k,
            exact,
            runs,
            dtype,
            f"prev_1 - prev_2 at position {k} against the convention's draws (two seeds)",
            proportional_only=True,
        )
