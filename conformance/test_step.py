"""STEP: one pass of Algorithm 1's loop body, `step(F, t, x)` (SPEC.md, "Step")."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import truth
from conformance.inputs.cases import SHAPES, Case, cases, default_case
from conformance.inputs.strategies import DEFAULT_CONFIG, pinned, scheduler_configs
from conformance.measuring import bounds, drivers, step_checks
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import Adapter, unmet_requirement
from conformance.protocol.bridges import same_generator_state
from conformance.protocol.values import StepInputs, TimestepSpec


def with_config(**fixed: Any) -> st.SearchStrategy[dict[str, Any]]:
    """`scheduler_configs()` with some entries fixed."""
    return scheduler_configs().map(lambda config: {**config, **fixed})


@pytest.mark.clause("STEP-1")
@pytest.mark.requires("denoise")
@given(case=cases(configs=with_config(s_noise=0.0, clip_denoised=False)))
@pinned(
    case=[
        default_case(k=0, s_noise=0.0, clip_denoised=False),
        default_case(timesteps=(39, 22, 0), k=1, s_noise=0.0, clip_denoised=False),
        default_case(timesteps=(39, 22, 0), k=2, s_noise=0.0, clip_denoised=False),
        default_case(timesteps=(0,), k=0, s_noise=0.0, clip_denoised=False),
        default_case(timesteps=(39, 0), k=0, s_noise=0.0, clip_denoised=False, shape=(1,)),
    ]
)
def test_denoise(impl: Adapter, measure: Measure, device: str, dtype: str, case: Case) -> None:
    inputs = step_checks.loop_inputs(case, truth.schedule(case.config, case.spec))
    if not impl.capabilities.stateful:  # a loop of its own: position k alone, from its x
        inputs, case = inputs[case.k : case.k + 1], step_checks.one_point(case, case.k)
    case = step_checks.own_settings(impl, case)
    exact = truth.schedule(case.config, case.spec)
    run = drivers.run_without_noise(
        impl, measure, case.config, case.spec, device, dtype, inputs, seed=case.seed
    )
    k = case.k
    prev = step_checks.prev_values(measure, run, k)
    x, F = run.x[k].exact, run.F[k].exact
    expected, bound, scale = step_checks.expected_step(case.config, run, exact, k, None, dtype)
    sigma, sigma_next, _ = step_checks.sigma_at(run, exact, k)
    if step_checks.noise_is_nan(prev) and np.all(np.isfinite(expected)):
        origin = step_checks.nonfinite_origin(
            impl, case.config, sigma, prev.size, prev.size, sigma_next
        )
        if "noise term" in origin:
            # A NaN noise scale (0 times NaN is NaN): STEP-3's or STEP-4's finding.
            measure.ok(f"denoised at position {k}: not comparable ({origin})")
            return
    what = "denoised (s_noise = 0, no clamp)"
    if case.config["clip_denoised"]:  # it always clamps: c_skip, c_out where the clamp is idle
        free, _, _ = step_checks.expected_step(
            {**case.config, "clip_denoised": False}, run, exact, k, None, dtype
        )
        usable = np.abs(free) < 1.0 - bound
        what = (
            f"denoised (s_noise = 0; it always clamps: the {int(usable.sum())} of {usable.size} "
            "elements whose true denoised value lies inside +-1)"
        )
        if not usable.any():
            measure.ok(f"{what}: none to compare")
            return
        prev, expected, bound, scale = (
            np.where(usable, a, b)
            for a, b in ((prev, expected), (expected, expected), (bound, bound), (scale, scale))
        )

    def wider() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # The same step on 12 elements, for a diagnosis that one element cannot give.
        wide = dataclasses.replace(case, shape=(3, 4))
        again = drivers.run_without_noise(
            impl,
            measure,
            wide.config,
            wide.spec,
            device,
            dtype,
            step_checks.loop_inputs(wide, exact),
            seed=wide.seed,
        )
        return step_checks.prev_values(measure, again, k), again.x[k].exact, again.F[k].exact

    measure.close(
        prev,
        expected,
        bound,
        what,
        bound_text=f"step bound, {dtype}{step_checks.readback_note(run, k, k + 1)}",
        scale=scale,
        where=step_checks.where(case.config, case.spec, k, impl.terms),
        diagnose=lambda worst, bad: step_checks.denoise_diagnosis(
            impl, case.config, sigma, sigma_next, prev, x, F, expected, wider=wider
        ),
    )


@pytest.mark.clause("STEP-2")
@pytest.mark.requires("denoise", "clip_on")
@given(case=cases(configs=with_config(s_noise=0.0, clip_denoised=True)))
@pinned(case=[default_case(k=1, s_noise=0.0), default_case(k=0, s_noise=0.0)])
def test_clamp(impl: Adapter, measure: Measure, device: str, dtype: str, case: Case) -> None:
    # The same inputs with clip_denoised True and False: the first must be the second
    # clamped to [-1, 1], whatever the denoised value is (STEP-1's).
    inputs = step_checks.loop_inputs(case, truth.schedule(case.config, case.spec), 4.0)
    if not impl.capabilities.stateful:  # a loop of its own: position k alone, from its x
        inputs, case = inputs[case.k : case.k + 1], step_checks.one_point(case, case.k)
    case = step_checks.own_settings(impl, case)
    exact = truth.schedule(case.config, case.spec)
    k = case.k
    # clip_denoised = False only where the implementation offers it (a sampler that always
    # clamps is checked against the truth alone)
    clips = (True,) if unmet_requirement(impl, "clip_off") else (True, False)
    runs = [
        drivers.run_without_noise(
            impl,
            measure,
            {**case.config, "clip_denoised": clip},
            case.spec,
            device,
            dtype,
            inputs,
            seed=case.seed,
        )
        for clip in clips
    ]
    clamped = step_checks.prev_values(measure, runs[0], k)
    place = step_checks.where(case.config, case.spec, k, impl.terms)
    if len(runs) == 1 or step_checks.chained(*runs, k):
        # No run without the clamp on the same inputs: the clamp itself, at the x_k the loop
        # reached (what the denoised value is, is STEP-1's): nothing beyond +-1, and an element
        # whose true denoised value lies beyond +-1 by more than its bound exactly +-1, where
        # the elements inside are the truth's (else which lie beyond is not known).
        free, step_bound, _ = step_checks.expected_step(
            {**case.config, "clip_denoised": False}, runs[0], exact, k, None, dtype
        )
        beyond = np.abs(free) > 1.0 + step_bound
        inside = np.abs(free) < 1.0 - step_bound
        measure.exact(
            clamped, np.clip(clamped, -1.0, 1.0), "prev_sample within [-1, 1]", where=place
        )
        if not inside.any() or not np.all(
            np.abs(clamped[inside] - free[inside]) <= step_bound[inside]
        ):
            measure.ok(
                "elements beyond +-1 not comparable: no element inside +-1 shows the denoised "
                "value to be the truth's (STEP-1's)"
            )
            return
        measure.exact(
            clamped[beyond],
            np.sign(free[beyond]),
            "elements whose denoised value lies beyond +-1, clamped to +-1",
            where=place,
        )
        return
    free = step_checks.prev_values(measure, runs[1], k)
    with np.errstate(invalid="ignore"):
        beyond = np.abs(free) > 1.0
    # Exact where the clamp acts; elsewhere the same arithmetic, within one rounding each.
    bound = np.where(beyond, 0.0, bounds.rounding_bound(dtype, free))
    measure.close(
        clamped,
        np.clip(free, -1.0, 1.0),
        bound,
        "prev_sample with clip_denoised = True vs the one with False, clamped",
        bound_text="exact where the clamp acts",
        where=place,
        diagnose=lambda worst, bad: (
            f"{int(np.count_nonzero(bad & beyond))} elements whose denoised value is beyond "
            f"+-1 were not clamped (clip_denoised = True gives {clamped[worst]!r} where "
            f"clip_denoised = False gives {free[worst]!r})"
            if (bad & beyond).any()
            else ""
        ),
    )


@pytest.mark.clause("STEP-3")
@pytest.mark.requires("known_noise")
@given(case=cases(position="inner", min_steps=2))
@pinned(
    case=[
        default_case(k=0),
        default_case(k=0, s_noise=0.0),
        default_case(k=0, s_noise=1.011, clip_denoised=False),
        default_case(timesteps=(39, 22, 0), k=1),
        default_case(timesteps=(39, 0), k=0),
    ]
)
def test_renoise_scale(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    case = step_checks.own_settings(impl, case)
    exact = truth.schedule(case.config, case.spec)
    runs = step_checks.two_runs(impl, measure, case, exact, device, dtype)
    step_checks.check_renoise(
        measure, case, exact, runs, dtype, f"prev_1 - prev_2 ({step_checks.noise_text(runs[0])})"
    )


@pytest.mark.clause("STEP-4")
@given(
    case=cases(
        configs=scheduler_configs().filter(lambda c: c["s_noise"] >= 0.25),
        position="last",
        min_steps=2,
    )
)
@pinned(case=[default_case(k=1), default_case(k=1, clip_denoised=False)])
def test_last_step_adds_no_noise(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    # Two steps on the same inputs with two different draws: after the last evaluation
    # the noise scale is 0, so both give the same number, whatever the denoised value.
    case = step_checks.own_settings(impl, case)
    exact = truth.schedule(case.config, case.spec)
    known = drivers.noise_layer(impl) is not None
    driver = drivers.run if known else drivers.run_with_own_draws
    runs = step_checks.two_runs(impl, measure, case, exact, device, dtype, driver)
    k = case.k
    p1, p2 = (step_checks.prev_values(measure, r, k) for r in runs)
    s, eps = float(case.config["s_noise"]), float(case.config["sigma_min"])
    delta, delta_bound = step_checks.denoised_difference(case.config, runs, exact, k, dtype)
    d = p1 - p2 - delta  # delta: 0 unless a loop of its own reached x_k differently
    place = step_checks.where(case.config, case.spec, k, impl.terms)
    rounding = bounds.rounding_bound(dtype, p1, p2) + delta_bound
    rounding = np.nan_to_num(rounding, nan=0.0, posinf=0.0)  # a NaN result: the bound stays finite
    # MUST: no more than a last sigma within the SCHED-1 bound of sigma_min can give;
    # SHOULD: exactly 0 (the appended sigma_min is exact, so tau^2 - eps^2 = 0).
    g_max = bounds.last_noise_scale_bound(case.config, dtype)
    if runs[0].z[k] is not None:
        w = runs[0].z[k] - runs[1].z[k]
        g_hat = step_checks.fitted_scale(d, w, s)
        diagnosis = step_checks.scale_diagnosis(g_hat, case.config, None, place)
        # The results' rounding projected onto w, as a noise scale.
        slack = step_checks.fitted_scale_bound(rounding, w, s)
        for level, bound, text in (
            ("MUST", g_max + slack, f"a last sigma within SCHED-1 of sigma_min: {g_max:.3g}"),
            (
                "SHOULD",
                # exactly 0 in float64 on the same inputs; a chained loop's x_k adds rounding
                slack if dtype != "float64" or step_checks.chained(*runs, k) else 0.0,
                "exactly 0: sqrt(eps^2 - eps^2)",
            ),
        ):
            measure.close(
                np.array([g_hat]),
                np.array([0.0]),
                bound,
                f"noise scale after the last evaluation, fitted on two draws ({level})",
                bound_text=text,
                scale=eps,
                where=place,
                diagnose=lambda worst, bad, text=diagnosis: text,
                level=level,
            )
        return
    # Own draws: |z_1 - z_2| < 10 but with probability below 1e-12 per element.
    measure.close(
        d,
        np.zeros_like(d),
        g_max * 10.0 + rounding,
        "prev_1 - prev_2 after the last evaluation (two runs, own draws)",
        bound_text=f"a last sigma within SCHED-1 of sigma_min: noise scale <= {g_max:.3g}",
        scale=s * 10.0 * eps,
        where=place,
    )
    measure.exact(
        d,
        0.0,
        "prev_1 - prev_2 after the last evaluation (two runs, own draws), exactly",
        where=place,
        level="SHOULD",
    )


@st.composite
def one_step_cases(draw: st.DrawFn) -> Case:
    config = draw(scheduler_configs())
    N = config["num_train_timesteps"]
    spec = draw(
        st.one_of(
            st.just(TimestepSpec(num_inference_steps=1)),
            st.integers(0, N - 1).map(lambda i: TimestepSpec(timesteps=(i,))),
        )
    )
    return Case(config, spec, 0, draw(SHAPES), draw(st.integers(0, 2**31 - 1)))


@pytest.mark.clause("STEP-5")
@given(case=one_step_cases())
@pinned(
    case=[
        Case(dict(DEFAULT_CONFIG), TimestepSpec(num_inference_steps=1), 0, (2, 3), 7),
        Case(dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(39,)), 0, (2, 3), 7),
    ]
)
def test_one_step_draws_no_noise(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    # What one-step sampling returns is STEP-1's (a case with one timestep); here: that it
    # draws nothing (the generator keeps its state) and that no noise reaches the output
    # (two different draws offered give the same number).
    case = step_checks.own_settings(impl, case)
    exact = truth.schedule(case.config, case.spec)
    x = drivers.sample(
        impl, drivers.normal(case.seed, case.shape, float(exact.sigmas[0])), dtype, device
    )
    F = drivers.sample(impl, drivers.normal(case.seed + 1, case.shape), dtype, device)
    place = step_checks.where(case.config, case.spec, 0)
    if impl.capabilities.stateful and _has_generator(impl):
        scheduler = measure.call("constructor", impl.scheduler, **case.config)
        measure.call("set_timesteps", scheduler.set_timesteps, device=device, **case.spec.kwargs())
        generator = impl.generator(case.seed, device)
        before = impl.generator_state(generator)
        t = scheduler.timesteps[0]
        measure.call("scale_model_input", scheduler.scale_model_input, x.native, t)
        measure.call("step", scheduler.step, F.native, t, x.native, generator=generator)
        after = impl.generator_state(generator)
        if not same_generator_state(before, after):
            measure.note(
                "the generator",
                f"was drawn from at {place}: one-step sampling must draw no noise",
            )
        else:
            measure.ok("the generator keeps its state")
    outputs, draws, counts = [], [], []
    # A loop that draws x_T from the caller's generator draws it alike in both runs (seeded
    # case.seed), then goes on from the seed of the run (`run_steps(switch=...)`).
    shared = {"switch": (case.seed, 0)} if impl.draws_before_loop else {}
    for seed in (case.seed, case.seed + 17):
        noise = None
        if impl.capabilities.injected_noise:
            drawn = drivers.sample(impl, drivers.normal(seed, case.shape), dtype, device)
            noise = drawn.native
            draws.append(drawn.exact)
        results = measure.call(
            "the loop body",
            impl.run_steps,
            case.config,
            case.spec,
            device,
            [StepInputs(impl.copy(F.native), impl.copy(x.native), noise)],
            seed=None if noise is not None or not _has_generator(impl) else seed,
            **shared,
        )
        outputs.append(
            measure.output(
                results[0].prev_sample,
                what="prev_sample",
                shape=case.shape,
                dtype=None,
                device=None,
            )
        )
        counts.append(results[0].draws)
        used = results[0].sigma if results[0].sigma is not None else float(exact.sigmas[0])
    if not impl.capabilities.stateful and counts[0] is not None:
        # A loop of its own counts its draws: from the caller's generator none (MUST); through
        # a noise hook (the suite's draws, not the caller's) or from a key (no state to
        # advance) at most one, scaled by 0 (as after the last evaluation: NOISE-2).
        most = 1 if impl.noise_through_hook or impl.generator_is_key else 0
        if counts[0] > most:
            source = "its noise hook" if impl.noise_through_hook else "the caller's generator"
            source = "its key" if impl.generator_is_key else source
            measure.note(
                "draws in one-step sampling",
                f"{counts[0]} taken from {source} at {place}, expected at most {most}",
            )
        else:
            measure.ok("draws in one-step sampling")
    elsewhere = step_checks.nan_elsewhere(impl, case.config, used, None, outputs[0])
    if elsewhere:  # NaN everywhere, made by another clause's quantity: its finding
        measure.ok(f"one-step sampling: not comparable ({elsewhere})")
        return
    # As STEP-4: MUST, no more noise than a last sigma within SCHED-1 of sigma_min gives;
    # SHOULD, none at all (the same number for both draws).
    g_max = bounds.last_noise_scale_bound(case.config, dtype)
    # |z| < 6 but with probability 2e-9 per element, where the draws are not known
    z_size = np.abs(draws[0]) + np.abs(draws[1]) if draws else 12.0
    rounding = bounds.rounding_bound(dtype, *outputs)
    measure.close(
        outputs[1],
        outputs[0],
        g_max * z_size + rounding,
        "prev_sample of one-step sampling with two different draws offered: noise after the "
        "evaluation (MUST)",
        bound_text=f"a last sigma within SCHED-1 of sigma_min: noise scale {g_max:.3g}",
        where=place,
        level="MUST",
    )
    measure.exact(
        outputs[1],
        outputs[0],
        "prev_sample of one-step sampling with two different draws offered: noise after the "
        "evaluation (SHOULD)",
        where=place,
        level="SHOULD",
    )


def _has_generator(impl: Adapter) -> bool:
    try:
        impl.generator_state(impl.generator(0, "cpu"))
    except NotImplementedError:
        return False
    return True


def _stateful(impl: Adapter, measure: Measure, device: str, timesteps: list[int]) -> Any:
    scheduler = measure.call("constructor", impl.scheduler)
    measure.call("set_timesteps", scheduler.set_timesteps, timesteps=timesteps, device=device)
    return scheduler


@pytest.mark.clause("STEP-6")
@pytest.mark.requires("stateful")
def test_step_index_advances(impl: Adapter, measure: Measure, device: str, dtype: str) -> None:
    scheduler = _stateful(impl, measure, device, [39, 22, 0])
    if scheduler.step_index is not None:
        measure.fail(
            "step_index after set_timesteps", f"is {scheduler.step_index!r}, expected None"
        )
    x = drivers.sample(impl, drivers.normal(1, (2, 3), 80.0), dtype, device)
    F = drivers.sample(impl, drivers.normal(2, (2, 3)), dtype, device)
    for k, t in enumerate(scheduler.timesteps):
        measure.call("scale_model_input", scheduler.scale_model_input, x.native, t)
        out = measure.call(f"step {k}", scheduler.step, F.native, t, x.native, return_dict=False)
        if not isinstance(out, tuple) or len(out) < 1:
            measure.fail(
                "step(..., return_dict=False)", f"returned {type(out).__name__}, expected a tuple"
            )
        measure.output(  # its dtype and device: STEP-9's
            out[0], what="step(..., return_dict=False)[0]", shape=(2, 3), dtype=None, device=None
        )
        if scheduler.step_index != k + 1:
            measure.fail(
                f"step_index after {k + 1} steps", f"is {scheduler.step_index!r}, expected {k + 1}"
            )
        measure.ok(f"step_index after {k + 1} steps")


@pytest.mark.clause("STEP-7")
@pytest.mark.requires("stateful")
def test_stepping_past_the_end_rejected(impl: Adapter, measure: Measure, device: str) -> None:
    scheduler = _stateful(impl, measure, device, [22, 0])
    x = drivers.sample(impl, drivers.normal(1, (2, 3), 80.0), "float32", device)
    F = drivers.sample(impl, drivers.normal(2, (2, 3)), "float32", device)
    for t in scheduler.timesteps:
        measure.call("step", scheduler.step, F.native, t, x.native)
    with measure.rejects(
        "timestep", "a third step of a two-step schedule", also=("step", "set_timesteps")
    ):
        scheduler.step(F.native, scheduler.timesteps[-1], x.native)


@pytest.mark.clause("STEP-8")
@given(case=cases(min_steps=2, position="last"))
@pinned(case=[default_case(k=1)])
def test_inputs_not_modified(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    exact = truth.schedule(case.config, case.spec)
    inject = impl.capabilities.injected_noise
    inputs = []
    for j, (f, v) in enumerate(step_checks.loop_inputs(case, exact)):
        noise = (
            drivers.sample(impl, drivers.normal(case.seed + 1000 + j, case.shape), dtype, device)
            if inject
            else None
        )
        inputs.append(
            StepInputs(
                drivers.sample(impl, f, dtype, device).native,
                drivers.sample(impl, v, dtype, device).native,
                None if noise is None else noise.native,
            )
        )
    copies = [
        StepInputs(
            impl.copy(i.model_output),
            impl.copy(i.sample),
            None if i.noise is None else impl.copy(i.noise),
        )
        for i in inputs
    ]
    _tolerate(
        impl.run_steps, case.config, case.spec, device, inputs, seed=None if inject else case.seed
    )
    for k, (given_, kept) in enumerate(zip(inputs, copies, strict=True)):
        for name in ("model_output", "sample", "noise"):
            if getattr(given_, name) is not None and not impl.same_values(
                getattr(given_, name), getattr(kept, name)
            ):
                measure.fail(f"{name} at position {k}", "was modified by scale_model_input or step")
            measure.ok(f"{name} at position {k}")
    if unmet_requirement(impl, "add_noise"):  # not offered (a functional sampler)
        return
    x0 = drivers.sample(impl, drivers.normal(case.seed, case.shape), dtype, device)
    z = drivers.sample(impl, drivers.normal(case.seed + 1, case.shape), dtype, device)
    x0_copy, z_copy = impl.copy(x0.native), impl.copy(z.native)
    schedule = measure.call("set_timesteps", impl.schedule, case.config, case.spec, device)
    stored = measure.output(
        schedule.timesteps, what="timesteps", shape=None, dtype=None, device=None
    )
    t = impl.timestep_array(np.full(case.shape[0], stored[0]), device)
    _tolerate(impl.add_noise, case.config, case.spec, device, x0.native, z.native, t)
    for name, given_, kept in (
        ("original_samples", x0.native, x0_copy),
        ("noise", z.native, z_copy),
    ):
        if not impl.same_values(given_, kept):
            measure.fail(f"add_noise: {name}", "was modified")
        measure.ok(f"add_noise: {name}")


def _tolerate(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Call the implementation for its side effects on its inputs: an exception it raises, or
    a run whose recording cannot be read (a skip), is another clause's finding (the inputs
    are checked after it all the same)."""
    try:
        fn(*args, **kwargs)
    except (Exception, pytest.skip.Exception):  # noqa: BLE001, S110 (the inputs only)
        pass


@pytest.mark.clause("STEP-9")
@given(shape=SHAPES, seed=st.integers(0, 2**31 - 1))
@pinned(shape=[(1,), (1, 1, 5, 7), (4,)], seed=[0, 0, 0])
def test_output_contract(
    impl: Adapter, measure: Measure, device: str, dtype: str, shape: tuple[int, ...], seed: int
) -> None:
    case = Case(dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(22, 0)), 1, shape, seed)
    exact = truth.schedule(case.config, case.spec)
    inputs = step_checks.loop_inputs(case, exact)
    run = drivers.run_ignoring_noise(
        impl, measure, case.config, case.spec, device, dtype, inputs, seed=seed
    )
    for k in range(2):
        at = f"at {impl.terms.position} {k}"
        for label, native in (
            (impl.terms.model_input, run.scaled[k]),
            (impl.terms.prev_sample, run.prev[k]),
        ):
            value = measure.output(
                native, what=f"{label} {at}", shape=shape, dtype=dtype, device=device
            )
            bad = int(np.count_nonzero(~np.isfinite(value)))
            sigma_next = float(exact.sigmas[k + 1]) if k + 1 < len(exact) else None
            elsewhere = step_checks.nan_elsewhere(
                impl, case.config, float(exact.sigmas[k]), sigma_next, value
            )
            if bad and elsewhere:  # NaN everywhere, made by another clause's quantity
                measure.ok(f"{label} {at}: non-finite, {elsewhere}")
                continue
            if bad:
                measure.fail(
                    f"{label} {at}",
                    f"{bad} of {value.size} elements are NaN or inf for finite inputs",
                )
            measure.ok(f"{label} {at}")


#: Shapes that broadcast to BAD_SHAPE_SAMPLE without being it: one batch element, no batch
#: axis, one channel, a scalar. A broadcast returns a plausible sample built from the wrong data.
BAD_SHAPE_SAMPLE = (2, 3, 4)
BROADCASTABLE = ((1, 3, 4), (3, 4), (2, 1, 4), ())


@pytest.mark.clause("STEP-11")
@pytest.mark.requires("stateful")
def test_model_output_of_another_shape_rejected(
    impl: Adapter, measure: Measure, device: str, dtype: str
) -> None:
    spec = TimestepSpec(timesteps=(22, 0))
    x = drivers.sample(impl, drivers.normal(1, BAD_SHAPE_SAMPLE, 80.0), dtype, device)
    for shape in BROADCASTABLE:
        F = drivers.sample(impl, drivers.normal(2, shape), dtype, device)
        with measure.rejects("model_output", f"an array of shape {shape}", also=("sample",)):
            impl.run_steps(DEFAULT_CONFIG, spec, device, [StepInputs(F.native, x.native)], seed=3)


@pytest.mark.clause("STEP-10")
@pytest.mark.requires("own_draws")
def test_reproducible_with_a_seeded_generator(
    impl: Adapter, measure: Measure, device: str, dtype: str
) -> None:
    if not _has_generator(impl):
        pytest.skip(f"{impl.name} declares no generator")
    # Both positions are followed by an evaluation point above sigma_min: both add noise.
    case = default_case(timesteps=(30, 22, 0), k=1, shape=(2, 3, 4))
    exact = truth.schedule(case.config, case.spec)
    runs = []
    for seed in (11, 11, 12):
        inputs = [
            StepInputs(
                drivers.sample(impl, f, dtype, device).native,
                drivers.sample(impl, v, dtype, device).native,
            )
            for f, v in step_checks.loop_inputs(case, exact)
        ]
        results = measure.call(
            "the loop body", impl.run_steps, case.config, case.spec, device, inputs, seed=seed
        )
        runs.append(
            [
                measure.output(
                    r.prev_sample, what="prev_sample", shape=case.shape, dtype=None, device=None
                )
                for r in results
            ]
        )
    measure.uses_noise_layer("reproduced" if impl.capabilities.noise_convention else "own")
    for k in range(2):
        sigma_next = float(exact.sigmas[k + 1]) if k + 1 < len(exact) else None
        elsewhere = step_checks.nan_elsewhere(
            impl, case.config, float(exact.sigmas[k]), sigma_next, runs[0][k]
        )
        if elsewhere:  # NaN everywhere, made by another clause's quantity: its finding
            measure.ok(f"prev_sample at position {k}: not comparable ({elsewhere})")
            continue
        measure.exact(runs[1][k], runs[0][k], f"prev_sample at position {k}, same seed")
        if np.array_equal(runs[2][k], runs[0][k]):
            measure.fail(
                f"prev_sample at position {k}, another seed", "is identical: the seed is ignored"
            )
