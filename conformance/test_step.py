"""STEP: one pass of Algorithm 1's loop body, `step(F, t, x)` (SPEC.md, "Step")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conformance import steps, tolerances, truth
from conformance.adapter import (
    Adapter,
    StepInputs,
    TimestepSpec,
    prev_sample_of,
    unmet_requirement,
)
from conformance.cases import SHAPES, Case, cases, default_case
from conformance.measure import Measure
from conformance.strategies import DEFAULT_CONFIG, scheduler_configs

fixture_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def with_config(**fixed: Any) -> st.SearchStrategy[dict[str, Any]]:
    """`scheduler_configs()` with some entries fixed."""
    return scheduler_configs().map(lambda config: {**config, **fixed})


def loop_inputs(
    case: Case, exact: truth.ExactSchedule, F_scale: float = 1.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(F, x) for positions 0 .. k: x at its noise level (sigma_j z), F of order F_scale."""
    return [
        (
            steps.normal(case.seed + 2 * j + 1, case.shape, F_scale),
            steps.normal(case.seed + 2 * j, case.shape, float(exact.sigmas[j])),
        )
        for j in range(case.k + 1)
    ]


def next_of(exact: truth.ExactSchedule, k: int) -> tuple[float | None, float | None]:
    """(sigma, ramp) of the next evaluation point, or (None, None) when the next sigma is the
    appended sigma_min (after the last evaluation)."""
    if k + 1 < len(exact):
        return float(exact.sigmas[k + 1]), float(exact.ramps[k + 1])
    return None, None


def check_position(
    measure: Measure,
    case: Case,
    exact: truth.ExactSchedule,
    run: steps.StepRun,
    dtype: str,
    device: str,
    what: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """prev_sample at position k against the oracle, within the step bound. Returns
    (prev, expected, bound)."""
    k = case.k
    prev = steps.prev_output(measure, run, k, dtype, device)
    x, F = run.x[k].exact, run.F[k].exact
    z = run.z[k] if run.z[k] is not None else np.zeros_like(x)
    sigma_next, ramp_next = next_of(exact, k)
    expected = truth.step(case.config, float(exact.sigmas[k]), sigma_next, F, x, z)
    bound, scale = tolerances.step_bound(
        case.config, float(exact.ramps[k]), ramp_next, x, F, z, dtype
    )
    measure.close(prev, expected, bound, what, bound_text=f"step bound, {dtype}", scale=scale)
    return prev, expected, bound


@pytest.mark.clause("STEP-1")
@pytest.mark.requires("denoise", "clip_off")
@fixture_settings
@given(case=cases(configs=with_config(s_noise=0.0, clip_denoised=False), position="inner"))
@example(case=default_case(k=0, s_noise=0.0, clip_denoised=False))
@example(case=default_case(timesteps=(39, 22, 0), k=1, s_noise=0.0, clip_denoised=False))
@example(case=default_case(timesteps=(0,), k=0, s_noise=0.0, clip_denoised=False))
def test_denoise(impl: Adapter, measure: Measure, device: str, dtype: str, case: Case) -> None:
    exact = truth.schedule(case.config, case.spec)
    run = steps.run(
        impl,
        measure,
        case.config,
        case.spec,
        device,
        dtype,
        loop_inputs(case, exact),
        seed=case.seed,
        noise="ignore",
    )
    check_position(measure, case, exact, run, dtype, device, "denoised (s_noise = 0, no clamp)")


@pytest.mark.clause("STEP-2")
@pytest.mark.requires("denoise", "clip_on")
@fixture_settings
@given(case=cases(configs=with_config(s_noise=0.0, clip_denoised=True), position="inner"))
@example(case=default_case(k=1, s_noise=0.0))
def test_clamp(impl: Adapter, measure: Measure, device: str, dtype: str, case: Case) -> None:
    exact = truth.schedule(case.config, case.spec)
    run = steps.run(
        impl,
        measure,
        case.config,
        case.spec,
        device,
        dtype,
        loop_inputs(case, exact, 4.0),
        seed=case.seed,
        noise="ignore",
    )
    prev, _, bound = check_position(measure, case, exact, run, dtype, device, "clamped denoised")
    k = case.k
    unclamped = truth.step(
        {**case.config, "clip_denoised": False},
        float(exact.sigmas[k]),
        None,
        run.F[k].exact,
        run.x[k].exact,
        None,
    )
    beyond = np.abs(unclamped) > 1.0 + bound
    measure.exact(prev[beyond], np.sign(unclamped[beyond]), "elements clamped to +-1")


@pytest.mark.clause("STEP-3")
@pytest.mark.requires("known_noise")
@fixture_settings
@given(case=cases(position="inner", min_steps=2))
@example(case=default_case(k=0))
@example(case=default_case(k=0, s_noise=0.0))
@example(case=default_case(k=0, s_noise=1.011, clip_denoised=False))
@example(case=default_case(timesteps=(39, 22, 0), k=1))
def test_renoise_scale(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    exact = truth.schedule(case.config, case.spec)
    run = steps.run(
        impl,
        measure,
        case.config,
        case.spec,
        device,
        dtype,
        loop_inputs(case, exact),
        seed=case.seed,
    )
    check_position(measure, case, exact, run, dtype, device, f"prev_sample ({run.layer} noise)")


@pytest.mark.clause("STEP-4")
@fixture_settings
@given(
    case=cases(
        configs=scheduler_configs().filter(lambda c: c["s_noise"] >= 0.25),
        position="last",
        min_steps=2,
    )
)
@example(case=default_case(k=1))
@example(case=default_case(k=1, clip_denoised=False))
def test_last_step_adds_no_noise(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    exact = truth.schedule(case.config, case.spec)
    known = steps.noise_layer(impl) is not None
    run = steps.run(
        impl,
        measure,
        case.config,
        case.spec,
        device,
        dtype,
        loop_inputs(case, exact),
        seed=case.seed,
        noise="known" if known else "own",
    )
    k = case.k
    prev = steps.prev_output(measure, run, k, dtype, device)
    x, F = run.x[k].exact, run.F[k].exact
    expected = truth.step(case.config, float(exact.sigmas[k]), None, F, x, None)
    bound, scale = tolerances.step_bound(
        case.config, float(exact.ramps[k]), None, x, F, np.zeros_like(x), dtype
    )
    z = run.z[k]
    if z is not None and np.any(z != 0):
        # The noise scale actually used, fitted on the residual (SPEC.md, STEP-4).
        s = float(case.config["s_noise"])
        with np.errstate(invalid="ignore", over="ignore"):
            g_hat = float(np.sum((prev - expected) * z) / (s * np.sum(z * z)))
        g_bound = float(np.sum(np.abs(z) * bound) / (s * np.sum(z * z)))
        measure.close(
            np.array([g_hat]),
            np.array([0.0]),
            g_bound,
            "noise scale after the last evaluation (fitted)",
            bound_text="what the denoise error can project onto z",
            scale=float(case.config["sigma_min"]),
        )
    if z is not None:
        # Errors relative to what a noise of scale sigma_min would add too: the figure of a
        # noise scale that is not 0 but of the order of sigma_min (SPEC.md, STEP-4).
        scale = scale + float(case.config["s_noise"]) * np.abs(z) * float(case.config["sigma_min"])
    measure.close(prev, expected, bound, "prev_sample after the last evaluation", scale=scale)


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
@fixture_settings
@given(case=one_step_cases())
@example(case=Case(dict(DEFAULT_CONFIG), TimestepSpec(num_inference_steps=1), 0, (2, 3), 7))
def test_one_step_draws_no_noise(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    exact = truth.schedule(case.config, case.spec)
    x = steps.sample(
        impl, steps.normal(case.seed, case.shape, float(exact.sigmas[0])), dtype, device
    )
    F = steps.sample(impl, steps.normal(case.seed + 1, case.shape), dtype, device)
    if impl.capabilities.stateful and _has_generator(impl):
        scheduler = measure.call("constructor", impl.scheduler, **case.config)
        measure.call("set_timesteps", scheduler.set_timesteps, device=device, **case.spec.kwargs())
        generator = impl.generator(case.seed, device)
        before = impl.generator_state(generator)
        t = scheduler.timesteps[0]
        measure.call("scale_model_input", scheduler.scale_model_input, x.native, t)
        out = measure.call("step", scheduler.step, F.native, t, x.native, generator=generator)
        after = impl.generator_state(generator)
        if not _same_state(before, after):
            measure.fail("the generator", "was drawn from: one-step sampling must draw no noise")
        prev_native = prev_sample_of(out)
    else:
        results = measure.call(
            "the loop body",
            impl.run_steps,
            case.config,
            case.spec,
            device,
            [StepInputs(F.native, x.native)],
        )
        prev_native = results[0].prev_sample
    prev = measure.output(
        prev_native, what="prev_sample", shape=case.shape, dtype=dtype, device=device
    )
    expected = truth.step(case.config, float(exact.sigmas[0]), None, F.exact, x.exact, None)
    bound, scale = tolerances.step_bound(
        case.config, float(exact.ramps[0]), None, x.exact, F.exact, np.zeros_like(x.exact), dtype
    )
    measure.close(prev, expected, bound, "prev_sample of one-step sampling", scale=scale)


def _has_generator(impl: Adapter) -> bool:
    try:
        impl.generator_state(impl.generator(0, "cpu"))
    except NotImplementedError:
        return False
    return True


def _same_state(a: Any, b: Any) -> bool:
    if hasattr(a, "shape") and hasattr(b, "shape"):
        return bool((a == b).all())
    return a == b


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
    x = steps.sample(impl, steps.normal(1, (2, 3), 80.0), dtype, device)
    F = steps.sample(impl, steps.normal(2, (2, 3)), dtype, device)
    for k, t in enumerate(scheduler.timesteps):
        measure.call("scale_model_input", scheduler.scale_model_input, x.native, t)
        out = measure.call(f"step {k}", scheduler.step, F.native, t, x.native, return_dict=False)
        if not isinstance(out, tuple) or len(out) < 1:
            measure.fail(
                "step(..., return_dict=False)", f"returned {type(out).__name__}, expected a tuple"
            )
        measure.output(
            out[0], what="step(..., return_dict=False)[0]", shape=(2, 3), dtype=dtype, device=device
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
    x = steps.sample(impl, steps.normal(1, (2, 3), 80.0), "float32", device)
    F = steps.sample(impl, steps.normal(2, (2, 3)), "float32", device)
    for t in scheduler.timesteps:
        measure.call("step", scheduler.step, F.native, t, x.native)
    with measure.rejects(
        "timestep", "a third step of a two-step schedule", also=("step", "set_timesteps")
    ):
        scheduler.step(F.native, scheduler.timesteps[-1], x.native)


@pytest.mark.clause("STEP-8")
@fixture_settings
@given(case=cases(min_steps=2, position="last"))
@example(case=default_case(k=1))
def test_inputs_not_modified(
    impl: Adapter, measure: Measure, device: str, dtype: str, case: Case
) -> None:
    exact = truth.schedule(case.config, case.spec)
    inject = impl.capabilities.injected_noise
    inputs = []
    for j, (f, v) in enumerate(loop_inputs(case, exact)):
        noise = (
            steps.sample(impl, steps.normal(case.seed + 1000 + j, case.shape), dtype, device)
            if inject
            else None
        )
        inputs.append(
            StepInputs(
                steps.sample(impl, f, dtype, device).native,
                steps.sample(impl, v, dtype, device).native,
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
    measure.call(
        "the loop body",
        impl.run_steps,
        case.config,
        case.spec,
        device,
        inputs,
        seed=None if inject else case.seed,
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
    x0 = steps.sample(impl, steps.normal(case.seed, case.shape), dtype, device)
    z = steps.sample(impl, steps.normal(case.seed + 1, case.shape), dtype, device)
    x0_copy, z_copy = impl.copy(x0.native), impl.copy(z.native)
    schedule = measure.call("set_timesteps", impl.schedule, case.config, case.spec, device)
    stored = measure.output(
        schedule.timesteps, what="timesteps", shape=None, dtype=None, device=None
    )
    t = impl.timestep_array(np.full(case.shape[0], stored[0]), device)
    measure.call(
        "add_noise", impl.add_noise, case.config, case.spec, device, x0.native, z.native, t
    )
    for name, given_, kept in (
        ("original_samples", x0.native, x0_copy),
        ("noise", z.native, z_copy),
    ):
        if not impl.same_values(given_, kept):
            measure.fail(f"add_noise: {name}", "was modified")
        measure.ok(f"add_noise: {name}")


@pytest.mark.clause("STEP-9")
@fixture_settings
@given(shape=SHAPES, seed=st.integers(0, 2**31 - 1))
@example(shape=(1,), seed=0)
@example(shape=(1, 1, 5, 7), seed=0)
@example(shape=(4,), seed=0)
def test_output_contract(
    impl: Adapter, measure: Measure, device: str, dtype: str, shape: tuple[int, ...], seed: int
) -> None:
    case = Case(dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(22, 0)), 1, shape, seed)
    exact = truth.schedule(case.config, case.spec)
    run = steps.run(
        impl,
        measure,
        case.config,
        case.spec,
        device,
        dtype,
        loop_inputs(case, exact),
        seed=seed,
        noise="ignore",
    )
    for k in range(2):
        for label, native in (
            ("scale_model_input(...)", run.scaled[k]),
            ("step(...).prev_sample", run.prev[k]),
        ):
            value = measure.output(
                native, what=f"{label} at position {k}", shape=shape, dtype=dtype, device=device
            )
            bad = int(np.count_nonzero(~np.isfinite(value)))
            if bad:
                measure.fail(
                    f"{label} at position {k}",
                    f"{bad} of {value.size} elements are NaN or inf for finite inputs",
                )
            measure.ok(f"{label} at position {k}")


#: Shapes that broadcast to BAD_SHAPE_SAMPLE without being it: one batch element, no batch
#: axis, one channel, a scalar. A broadcast returns a plausible sample built from the wrong data.
BAD_SHAPE_SAMPLE = (2, 3, 4)
BROADCASTABLE = ((1, 3, 4), (3, 4), (2, 1, 4), ())


@pytest.mark.clause("STEP-9")
@pytest.mark.requires("step_arguments")
def test_model_output_of_another_shape_rejected(
    impl: Adapter, measure: Measure, device: str, dtype: str
) -> None:
    spec = TimestepSpec(timesteps=(22, 0))
    x = steps.sample(impl, steps.normal(1, BAD_SHAPE_SAMPLE, 80.0), dtype, device)
    for shape in BROADCASTABLE:
        F = steps.sample(impl, steps.normal(2, shape), dtype, device)
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
                steps.sample(impl, f, dtype, device).native,
                steps.sample(impl, v, dtype, device).native,
            )
            for f, v in loop_inputs(case, exact)
        ]
        results = measure.call(
            "the loop body", impl.run_steps, case.config, case.spec, device, inputs, seed=seed
        )
        runs.append(
            [
                measure.output(
                    r.prev_sample, what="prev_sample", shape=case.shape, dtype=dtype, device=device
                )
                for r in results
            ]
        )
    measure.uses_noise_layer("reproduced" if impl.capabilities.noise_convention else "own")
    for k in range(2):
        measure.exact(runs[1][k], runs[0][k], f"prev_sample at position {k}, same seed")
        if np.array_equal(runs[2][k], runs[0][k]):
            measure.fail(
                f"prev_sample at position {k}, another seed", "is identical: the seed is ignored"
            )
