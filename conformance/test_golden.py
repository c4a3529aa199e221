"""GOLD: the implementation against tensors recorded from OpenAI's code (SPEC.md, "Golden
files"). `--golden DIR` points these tests at another directory of the same format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import truth
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring import bounds, drivers, step_checks
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import Adapter, unmet_requirement
from conformance.protocol.values import StepInputs, TimestepSpec
from conformance.truth import golden, oracle

# The toy network of the golden files (golden/manifest.json, "toy_model"); its parameters
# are read from the manifest so that another golden directory may use others.
TOY_SLOPE_NOTE = "the network's slope |dF/du| <= A + D"


def _toy(manifest: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in manifest["toy_model"]["params"].items()}


def toy_network(u: np.ndarray, t: float, p: dict[str, float]) -> np.ndarray:
    """F(u, t) = A tanh(u + B sin(t / C)) + D u (float64)."""
    return p["A"] * np.tanh(u + p["B"] * np.sin(t / p["C"])) + p["D"] * u


def scheduler_case(case: golden.GoldenCase) -> tuple[dict[str, Any], TimestepSpec] | None:
    """The scheduler config and `set_timesteps` argument of a sampler case, or None when the
    scheduler API cannot express it (an end point other than sigma_min)."""
    c = case.config
    config = {
        **DEFAULT_CONFIG,
        "num_train_timesteps": int(c["steps"]),
        "sigma_min": float(c["sigma_min"]),
        "sigma_max": float(c["sigma_max"]),
        "sigma_data": float(c["sigma_data"]),
        "rho": float(c["rho"]),
        "clip_denoised": bool(c["clip_denoised"]),
    }
    if c["sampler"] == "onestep":
        return config, TimestepSpec(timesteps=(0,))
    ts = [int(i) for i in c["ts"]]
    if ts[-1] != int(c["steps"]) - 1:
        return None
    return config, TimestepSpec(timesteps=tuple(reversed(ts[:-1])))


def openai_last_time(config: dict[str, Any]) -> float:
    """OpenAI's float64 last time point of a multistep case, computed as its
    `stochastic_iterative_sampler` computes it (Python floats, from the case's own config):
    (t_max^(1/rho) + i / (steps - 1) (t_min^(1/rho) - t_max^(1/rho)))^rho at i = steps - 1,
    0.002000000000000003 for the default config, not 0.002."""
    rho, steps_n = float(config["rho"]), int(config["steps"])
    hi = float(config["sigma_max"]) ** (1 / rho)  # sigma_max^(1/rho), the ramp's start
    lo = float(config["sigma_min"]) ** (1 / rho)  # sigma_min^(1/rho), its end
    ramp = int(config["ts"][-1]) / (steps_n - 1)
    return (hi + ramp * (lo - hi)) ** rho


def openai_last_noise_scale(case: golden.GoldenCase) -> float:
    """OpenAI's noise scale after its last evaluation, np.sqrt(next_t**2 - t_min**2) in float64
    with its float64 last time point clipped to [t_min, t_max] (1.1e-10 for the default
    config): a known difference of OpenAI's code, not rounding of ours."""
    c = case.config
    if c["sampler"] == "onestep":
        return 0.0
    t_min = np.float64(c["sigma_min"])
    t_last = np.clip(np.float64(openai_last_time(c)), t_min, np.float64(c["sigma_max"]))
    # As OpenAI computes it (float64, unfactored): about 4 % off the exact 1.1e-10 there.
    return float(np.sqrt(t_last**2 - t_min**2))


def cases_of_kind(golden_dir: Path, kind: str) -> list[str]:
    """The names of a directory's cases of one kind; skips the test, with the reason, when
    the directory has none (GOLD-1 needs a schedule case, GOLD-2 a scalings case)."""
    names = [c["name"] for c in golden.load_manifest(golden_dir)["cases"] if c["kind"] == kind]
    if not names:
        pytest.skip(f"the golden directory {golden_dir} holds no case of kind {kind!r}")
    return names


@pytest.mark.clause("GOLD-1")
@pytest.mark.requires("schedule")
def test_schedule_vs_openai(impl: Adapter, measure: Measure, device: str, golden_dir: Path) -> None:
    unexpressed: list[str] = []
    compared = 0
    for name in cases_of_kind(golden_dir, "schedule"):
        case = golden.load_case(name, golden_dir)
        for n in case.config["n"]:
            key = f"multistep_t_clipped_n{n}"
            if key not in case.tensors:
                measure.note(f"{name}: {key}", "missing from the case's tensors")
                continue
            config = {
                **DEFAULT_CONFIG,
                **{k: float(case.config[k]) for k in ("sigma_min", "sigma_max", "rho")},
            }
            config["num_train_timesteps"] = int(n)
            spec = TimestepSpec(timesteps=tuple(range(n - 1, -1, -1)))
            own = {
                k: v
                for k, v in impl.settings(config).items()
                if k in ("num_train_timesteps", "sigma_min", "sigma_max", "rho") and v != config[k]
            }
            m = n  # the points it evaluates of OpenAI's n
            if not own:  # a grid whose N follows its step count (`grid`): N = n + 1 for n
                # steps does not evaluate its last point, so OpenAI's n are its n - 1 steps
                # and sigma_min; N = n for n steps evaluates them all
                N_own = int(impl.settings(config, spec)["num_train_timesteps"])
                if N_own == n + 1 and n >= 2:
                    m, spec = n - 1, TimestepSpec(timesteps=tuple(range(n - 2, -1, -1)))
                elif N_own != n:
                    own = {"num_train_timesteps": N_own}
            if own:  # OpenAI's config is not one it runs: nothing to compare
                unexpressed.append(f"{name}, N = {n}: it runs at {own}")
                continue
            compared += 1
            schedule = measure.call(f"set_timesteps (N = {n})", impl.schedule, config, spec, device)
            sigmas = measure.output(
                schedule.sigmas,
                what=f"sigmas (N = {n})",
                shape=(m + 1,),
                dtype=("float64", "float32"),
                device=None,
            )
            expected = case[key].astype(np.float64)[:m]
            ramps = np.arange(m) / (n - 1)
            # ours at the precision of the dtypes claimed (and as read back), OpenAI's float64
            caps = impl.capabilities
            precision = bounds.schedule_precision(caps.dtypes, caps.stateful)
            read = 0.0 if schedule.sigma_error is None else np.asarray(schedule.sigma_error)[:-1]
            rel = bounds.schedule_rel_bound(config, ramps, precision) + read
            bound = (rel + bounds.schedule_rel_bound(config, ramps)) * expected
            measure.close(
                sigmas[:-1],
                expected,
                bound,
                f"sigmas vs OpenAI's time points (case {name}, N = {n})",
                where=f"case {name}: {step_checks.where(config, spec)}",
            )
    if not compared and unexpressed:
        pytest.skip(f"{impl.name} runs none of the golden schedules: {'; '.join(unexpressed)}")


@pytest.mark.clause("GOLD-2")
@pytest.mark.requires("boundary_scalings", "edm_scalings", "sigma_to_t")
@pytest.mark.dtypes("float64", "float32")
def test_scalings_vs_openai(
    impl: Adapter, measure: Measure, device: str, dtype: str, golden_dir: Path
) -> None:
    suffix = {"float64": "f64", "float32": "f32"}[dtype]
    for name in cases_of_kind(golden_dir, "scalings"):
        case = golden.load_case(name, golden_dir)
        config = {**DEFAULT_CONFIG, **case.config}
        sigma = drivers.sample(impl, case[f"sigma_{suffix}"].astype(np.float64), dtype, device)
        b_skip, b_out, b_e_skip, b_e_out = bounds.scalings_bound(config, sigma.exact, dtype)
        place = f"case {name} ({step_checks.config_text(case.config)})"
        for label, fn, key, pair_bounds in (
            ("boundary", impl.boundary_scalings, "bc", (b_skip, b_out)),
            ("EDM", impl.edm_scalings, "edm", (b_e_skip, b_e_out)),
        ):
            pair = measure.call(f"{label} scalings", fn, config, sigma.native)
            for value, c_name, bound in zip(pair, ("c_skip", "c_out"), pair_bounds, strict=True):
                actual = measure.output(
                    value,
                    what=f"{label} {c_name}",
                    shape=sigma.exact.shape,
                    dtype=("float64", dtype),
                    device=device,
                )
                expected = case[f"{key}_{c_name}_{suffix}"].astype(np.float64)
                measure.close(
                    actual,
                    expected,
                    2 * bound,
                    f"{label} {c_name} vs OpenAI ({dtype})",
                    where=place,
                    diagnose=lambda worst, bad, s=sigma.exact: f"at sigma = {s[worst]!r}",
                )
        t = impl.sigma_to_t(config, sigma.exact)
        if not isinstance(t, np.ndarray):
            t = measure.output(
                t, what="sigma_to_t", shape=sigma.exact.shape, dtype=None, device=None
            )
        expected_t = case[f"rescaled_t_{suffix}"].astype(np.float64)
        # OpenAI's model time is computed in the golden dtype: its log and product in it.
        theirs = bounds.model_time_rounding(expected_t, dtype)
        ours = bounds.model_time_rounding(expected_t, "float64")
        measure.close(
            np.asarray(t, dtype=np.float64),
            expected_t,
            ours + theirs,
            "sigma_to_t vs OpenAI",
            where=place,
            diagnose=lambda worst, bad, s=sigma.exact: f"at sigma = {s[worst]!r}",
        )


def _replay_bound(
    config: dict[str, Any],
    exact: truth.ExactSchedule,
    own: np.ndarray,
    k: int,
    x: np.ndarray,
    F: np.ndarray,
    z: np.ndarray,
    dtype: str,
    sigma_openai: np.ndarray,
) -> np.ndarray:
    """Ours and OpenAI's step bounds, plus the effect of OpenAI's own sigma (per batch
    element) and of the implementation's own sigmas (its schedule, SCHED's finding)
    differing from the exact ones, measured by the oracle."""
    ramp_next = float(exact.ramps[k + 1]) if k + 1 < len(exact) else None
    bound, _ = bounds.step_bound(config, float(exact.ramps[k]), ramp_next, x, F, z, dtype)
    plain = {**config, "clip_denoised": False}
    mismatch = np.zeros_like(x)
    for b, s in enumerate(sigma_openai):
        if s != exact.sigmas[k]:
            at_theirs = truth.step(plain, float(s), None, F[b], x[b], None)
            at_exact = truth.step(plain, float(exact.sigmas[k]), None, F[b], x[b], None)
            mismatch[b] = np.abs(at_theirs - at_exact)
    # The denoised value and the noise term apart (a clamp can cancel one against the other),
    # and the implementation's own rounding at its own sigmas.
    if own[k] != exact.sigmas[k] or (ramp_next is not None and own[k + 1] != exact.sigmas[k + 1]):
        own_bound, _ = bounds.step_bound(
            config,
            float(exact.ramps[k]),
            ramp_next,
            x,
            F,
            z,
            dtype,
            sigma=float(own[k]),
            sigma_next=None if ramp_next is None else float(own[k + 1]),
        )
        mismatch = mismatch + own_bound
    if own[k] != exact.sigmas[k]:
        at_own = truth.step(plain, float(own[k]), None, F, x, None)
        at_exact = truth.step(plain, float(exact.sigmas[k]), None, F, x, None)
        mismatch = mismatch + np.abs(at_own - at_exact)
    if ramp_next is not None and own[k + 1] != exact.sigmas[k + 1]:
        g_own = truth.noise_scale(config, float(own[k + 1]))
        g_exact = truth.noise_scale(config, float(exact.sigmas[k + 1]))
        mismatch = mismatch + abs(g_own - g_exact) * np.abs(z)
    return 2 * bound + mismatch


def _c_in_mismatch(
    config: dict[str, Any], sigma: float, sigma_openai: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """|c_in(OpenAI's sigma) - c_in(sigma)| |x|, per batch element (the oracle's)."""
    exact = truth.c_in(config, sigma)
    per_batch = np.array([abs(float(truth.c_in(config, float(s)) - exact)) for s in sigma_openai])
    return per_batch.reshape((-1,) + (1,) * (x.ndim - 1)) * np.abs(x)


def _sampler(case: golden.GoldenCase, golden_case: str) -> tuple[dict[str, Any], TimestepSpec]:
    mapped = scheduler_case(case)
    if mapped is None:
        pytest.skip(
            f"{golden_case}: its end point is not sigma_min, which the scheduler API cannot express"
        )
    return mapped


def _last_noise_text(case: golden.GoldenCase, g_last: float) -> str:
    return (
        f"OpenAI's last-step noise s |z| {g_last:.3g} (its float64 last time point "
        f"{openai_last_time(case.config)!r}, not sigma_min = {case.config['sigma_min']!r}, so "
        "sqrt(t^2 - sigma_min^2) is not 0)"
    )


def _case_through_the_sampler(
    impl: Adapter, measure: Measure, case: golden.GoldenCase, golden_case: str
) -> tuple[dict[str, Any], TimestepSpec, truth.ExactSchedule]:
    """A golden case's config, time points and exact schedule for a run through a functional
    sampler (GOLD-3, GOLD-4); skipped where the sampler fixes another value than the case's,
    or draws from the caller's generator (OpenAI's recorded draws cannot be handed to it, nor
    OpenAI's x_T to one that draws its x_T there)."""
    config, spec = _sampler(case, golden_case)
    settled = impl.settings(config, spec)
    own_values = {k: v for k, v in settled.items() if v != config[k]}
    exact = truth.schedule(config, spec)
    if set(own_values) == {"num_train_timesteps"}:  # another grid's N, the same time points?
        if np.array_equal(truth.schedule(settled, spec).sigmas, exact.sigmas):
            own_values = {}
    if own_values:
        pytest.skip(
            f"{golden_case}: {impl.name} runs at {own_values} (its own values); the case "
            "needs the spec's"
        )
    if len(exact) > 1 and not impl.noise_through_hook:
        pytest.skip(
            f"{golden_case}: {impl.name} draws from the caller's generator: OpenAI's recorded "
            "draws cannot be handed to it"
        )
    if impl.draws_before_loop:
        pytest.skip(
            f"{golden_case}: {impl.name} draws x_T from the caller's generator: OpenAI's x_T "
            "cannot be handed to it"
        )
    measure.uses_noise_layer("injected" if len(exact) > 1 else "none needed")
    return config, spec, exact


def _openai_inputs(
    impl: Adapter, case: golden.GoldenCase, K: int, dtype: str, device: str, *, noise: bool = True
) -> list[StepInputs]:
    """OpenAI's recorded iterates x_t[k], network outputs and (with `noise`) draws, as the
    inputs of a run of the loop body."""
    x_t, F_t = case["x_t"].astype(np.float64), case["model_out"].astype(np.float64)
    z = _openai_noise(case)
    return [
        StepInputs(
            drivers.sample(impl, F_t[k], dtype, device).native,
            drivers.sample(impl, x_t[k], dtype, device).native,
            drivers.sample(impl, z[k], dtype, device).native if noise else None,
        )
        for k in range(K)
    ]


def _openai_noise(case: golden.GoldenCase) -> np.ndarray:
    """OpenAI's recorded draws, one per step (zeros where it drew none: one-step sampling)."""
    if "noise" in case.tensors:
        return case["noise"].astype(np.float64)
    return np.zeros_like(case["x_t"], dtype=np.float64)


def _values(
    impl: Adapter, given: StepInputs, z: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, F, z) as float64, as the implementation was given them (rounded to its dtype); z:
    the draw handed, else `z` (the one reproduced, or zeros where none is known)."""
    x, F = (
        np.asarray(impl.to_numpy(a), dtype=np.float64) for a in (given.sample, given.model_output)
    )
    if given.noise is not None:
        z = np.asarray(impl.to_numpy(given.noise), dtype=np.float64)
    return x, F, np.zeros_like(x) if z is None else z


def _run_departure(
    impl: Adapter,
    config: dict[str, Any],
    exact: truth.ExactSchedule,
    inputs: list[StepInputs],
    results: list[Any],
    dtype: str,
) -> str | None:
    """Where a loop of its own (a functional sampler), run on OpenAI's network outputs and
    draws, departs from Algorithm 1 at a step (`step_checks.step_departure`): that step
    clause's finding; or, for one that draws x_T, where the x_T it formed from OpenAI's is
    not it (the drawn scale: XT-1's or CONV-1's finding); None where none does."""
    if getattr(impl, "x_T_drawn", False) and results and results[0].sample is not None:
        formed = np.asarray(impl.to_numpy(results[0].sample), dtype=np.float64)
        handed = np.asarray(impl.to_numpy(inputs[0].sample), dtype=np.float64)
        # as XT-1: one rounding of the product, two more where read back through c_in
        if not step_checks.within(
            formed, handed, bounds.SAFETY * 3 * bounds.U[dtype] * np.abs(handed)
        ):
            ratio = float(np.median(formed[handed != 0] / handed[handed != 0]))
            return (
                f"the x_T it drew is {ratio:.6g} times the x_T of its declared scale: "
                "XT-1's or CONV-1's finding"
            )
    own = np.array([*(r.sigma for r in results), results[-1].sigma_next], dtype=np.float64)
    for k, result in enumerate(results):
        x, F, z = _values(impl, inputs[k], None)
        if result.sample is not None:  # the sample it stepped from, its own
            x = np.asarray(impl.to_numpy(result.sample), dtype=np.float64)
        found = step_checks.step_departure(
            impl,
            config,
            exact,
            own,
            k,
            (x, F, z if len(exact) > 1 else np.zeros_like(z)),
            np.asarray(impl.to_numpy(result.prev_sample), dtype=np.float64),
            dtype,
            (result.sigma_error, result.sigma_next_error),
        )
        if found:
            return found
    return None


def _close_or_defer(
    measure: Measure,
    actual: np.ndarray,
    expected: np.ndarray,
    bound: np.ndarray,
    what: str,
    departure: Any,
    **kwargs: Any,
) -> bool:
    """`measure.close`, unless the comparison fails and `departure()` finds a step of the run
    that departs from Algorithm 1 on the same inputs: that is the step clauses' finding,
    recorded here as not comparable (one bug, one failure; as STEP-5, STEP-9, STEP-10 defer
    a NaN). Returns False where it deferred."""
    if not step_checks.within(actual, expected, bound):
        found = departure()
        if found:
            measure.ok(f"{what}: not comparable ({found})")
            return False
    measure.close(actual, expected, bound, what, **kwargs)
    return True


def _replay_through_the_sampler(
    impl: Adapter,
    measure: Measure,
    device: str,
    dtype: str,
    case: golden.GoldenCase,
    golden_case: str,
) -> None:
    """GOLD-3 for a loop of its own (a functional sampler): the whole trajectory run by the
    sampler itself from OpenAI's x_T, its network answered with OpenAI's recorded outputs
    and its noise hook handing OpenAI's recorded draws. Its samples must follow OpenAI's
    iterates x_t[k], and its final sample OpenAI's, within the replay bounds of each step
    carried along the chain (c_skip e + the step's bound: the clamp is 1-Lipschitz)."""
    config, spec, exact = _case_through_the_sampler(impl, measure, case, golden_case)
    K = len(exact)
    x_t = case["x_t"].astype(np.float64)
    F_t = case["model_out"].astype(np.float64)
    noise = _openai_noise(case)
    inputs = _openai_inputs(impl, case, K, dtype, device)
    results = measure.call("the sampler", impl.run_steps, config, spec, device, inputs)
    own = np.array([*(r.sigma for r in results), results[-1].sigma_next], dtype=np.float64)

    def departure() -> str | None:
        return _run_departure(impl, config, exact, inputs, results, dtype)

    e = np.zeros(x_t.shape[1:])  # the error bound carried along the trajectory
    for k in range(K):
        place = f"step {k} of case {golden_case}"
        if k > 0:  # the sample it stepped from, read back (through its c_in: two roundings)
            x_k = measure.output(
                results[k].sample,
                what=f"the sampler's sample at step {k}",
                shape=x_t.shape[1:],
                dtype=None,
                device=None,
            )
            read = bounds.rounding_bound(dtype, x_t[k], roundings=2)
            if not _close_or_defer(
                measure, x_k, x_t[k], e + read, f"the sampler's x_t[{k}] vs OpenAI's", departure,
                where=place,
            ):  # fmt: skip
                return
        z = noise[k] if K > 1 else np.zeros_like(x_t[k])
        sigma_openai = case["sigma"][k].astype(np.float64)
        b_step = _replay_bound(config, exact, own, k, x_t[k], F_t[k], z, dtype, sigma_openai)
        c_skip = float(
            oracle.boundary_scalings(float(own[k]), config["sigma_min"], config["sigma_data"])[0]
        )
        e = c_skip * e + b_step
    final = measure.output(
        results[-1].prev_sample,
        what="the final sample",
        shape=x_t.shape[1:],
        dtype=None,
        device=None,
    )
    _close_final(
        measure, config, case, golden_case, final, e, "the sampler's own trajectory", departure
    )


def _close_final(
    measure: Measure,
    config: dict[str, Any],
    case: golden.GoldenCase,
    golden_case: str,
    final: np.ndarray,
    e: np.ndarray,
    run: str,
    departure: Any,
) -> None:
    """The final sample, clamped as karras_sample returns it, against OpenAI's within the
    bound `e` carried along the run, plus OpenAI's known last-step noise (GOLD-3, GOLD-4)."""
    g_last = openai_last_noise_scale(case)
    z_last = _openai_noise(case)[-1]
    known = float(config["s_noise"]) * np.abs(z_last) * g_last if g_last > 0 else None
    _close_or_defer(
        measure,
        np.clip(final, -1.0, 1.0),
        case["final"].astype(np.float64),
        e if known is None else e + known,
        f"final sample vs OpenAI's{f' ({run})' if run else ''}",
        departure,
        where=f"case {golden_case}",
        known=known,
        known_text=_last_noise_text(case, g_last) if known is not None else "",
    )


@pytest.mark.clause("GOLD-3")
def test_trajectories_replayed_step_by_step(
    impl: Adapter, measure: Measure, device: str, dtype: str, golden_case: str, golden_dir: Path
) -> None:
    case = golden.load_case(golden_case, golden_dir)
    if unmet_requirement(impl, "per_position_inputs"):  # a loop of its own: the whole of it
        _replay_through_the_sampler(impl, measure, device, dtype, case, golden_case)
        return
    config, spec = _sampler(case, golden_case)
    exact = truth.schedule(config, spec)
    own = drivers.schedule_sigmas(impl, config, spec, device, exact)
    K = len(exact)
    layer = drivers.noise_layer(impl) if K > 1 else "injected"
    if layer is None:
        pytest.skip(f"{impl.name} neither accepts injected noise nor declares a noise convention")
    measure.uses_noise_layer(layer if K > 1 else "none needed")
    g_last = openai_last_noise_scale(case)
    x_t = case["x_t"].astype(np.float64)
    F_t = case["model_out"].astype(np.float64)
    noise = _openai_noise(case)
    inputs = _openai_inputs(impl, case, K, dtype, device, noise=layer == "injected" and K > 1)
    seed = 2024
    results = measure.call(
        "the loop body",
        impl.run_steps,
        config,
        spec,
        device,
        inputs,
        seed=seed if layer == "reproduced" else None,
    )
    if layer == "reproduced":
        z_used = [
            impl.to_numpy(d) for d in impl.reproduce_noise(seed, x_t.shape[1:], dtype, device, K)
        ]
    else:
        z_used = [noise[k] if K > 1 else np.zeros_like(x_t[k]) for k in range(K)]
    for k in range(K):
        shape = x_t.shape[1:]
        place = f"step {k} of case {golden_case}"
        scaled = measure.output(
            results[k].scaled,
            what=f"scale_model_input at step {k}",
            shape=shape,
            dtype=None,
            device=None,
        )
        sigma_openai = case["sigma"][k].astype(np.float64)
        c_in_mismatch = _c_in_mismatch(config, float(exact.sigmas[k]), sigma_openai, x_t[k])
        c_in_mismatch = c_in_mismatch + _c_in_mismatch(
            config, float(exact.sigmas[k]), np.full(len(sigma_openai), own[k]), x_t[k]
        )
        b_cin = 2 * bounds.scale_model_input_bound(
            config, float(exact.ramps[k]), case["model_in"][k], dtype
        )
        if own[k] != exact.sigmas[k]:  # the implementation's rounding at its own sigma
            own_scaled = float(truth.c_in(config, float(own[k]))) * x_t[k]
            b_cin = b_cin + bounds.scale_model_input_bound(
                config, float(exact.ramps[k]), own_scaled, dtype
            )
        measure.close(
            scaled,
            case["model_in"][k].astype(np.float64),
            b_cin + c_in_mismatch,
            f"scale_model_input(x_t[{k}]) vs OpenAI's model_in[{k}]",
            where=place,
        )
        prev = measure.output(
            results[k].prev_sample,
            what=f"prev_sample at step {k}",
            shape=shape,
            dtype=None,
            device=None,
        )
        bound = _replay_bound(config, exact, own, k, x_t[k], F_t[k], z_used[k], dtype, sigma_openai)
        last = k == K - 1
        if layer == "injected" or last:
            expected = case["final"] if last else case["x_t"][k + 1]
            expected = expected.astype(np.float64)
        else:
            den = case["denoised"][k].astype(np.float64)
            den = np.clip(den, -1, 1) if config["clip_denoised"] else den
            g = truth.noise_scale(config, float(exact.sigmas[k + 1]))
            expected = den + g * z_used[k]
        known, raw = None, prev
        if last:
            prev = np.clip(prev, -1.0, 1.0)  # karras_sample returns the last iterate clamped
            if g_last > 0:
                known = float(config["s_noise"]) * np.abs(noise[k]) * g_last
                bound = bound + known
        _close_or_defer(
            measure,
            prev,
            expected,
            bound,
            f"prev_sample at step {k} vs OpenAI ({layer} noise)",
            lambda k=k, raw=raw: step_checks.step_departure(
                impl, config, exact, own, k, _values(impl, inputs[k], z_used[k]), raw, dtype
            ),
            where=place,
            known=known,
            known_text=_last_noise_text(case, g_last) if known is not None else "",
        )


def _toy_step_error(
    case: golden.GoldenCase,
    config: dict[str, Any],
    exact: truth.ExactSchedule,
    own: np.ndarray,
    k: int,
    e: np.ndarray,
    step: tuple[np.ndarray, np.ndarray, np.ndarray],
    c_in: float,
    t: float,
    times: np.ndarray,
    p: dict[str, float],
    dtype: str,
) -> np.ndarray:
    """The error bound after step k of a run with the toy network (GOLD-4), from `e` before
    it: the network's input error (c_in e, its rounding, OpenAI's and the implementation's own
    sigma in c_in) through the network (`bounds.toy_network_error`, its time `t`, the model
    time the implementation used `times[k]`), times c_out, plus the step's replay bound, with
    e contracted by c_skip (the clamp is 1-Lipschitz). `step`: (x, F, z) of the step."""
    x, F, z = step
    sigma = float(exact.sigmas[k])
    sigma_openai = case["sigma"][k].astype(np.float64)
    c_skip, c_out = (
        float(v) for v in oracle.boundary_scalings(sigma, config["sigma_min"], config["sigma_data"])
    )
    u = c_in * x
    du = (
        c_in * e
        + 2 * bounds.scale_model_input_bound(config, float(exact.ramps[k]), u, dtype)
        + _c_in_mismatch(config, sigma, sigma_openai, x)
        + _c_in_mismatch(config, sigma, np.full(len(sigma_openai), own[k]), x)
    )
    dt = float(times[k]) - float(exact.timesteps[k])
    dF = bounds.toy_network_error(p, du, u, t, dt, F, dtype)
    b_step = _replay_bound(config, exact, own, k, x, F, z, dtype, sigma_openai)
    return c_skip * e + abs(c_out) * dF + b_step


def _toy_through_the_sampler(
    impl: Adapter,
    measure: Measure,
    device: str,
    dtype: str,
    case: golden.GoldenCase,
    golden_case: str,
    golden_dir: Path,
) -> None:
    """GOLD-4 for a loop of its own (a functional sampler): the whole run by the sampler from
    OpenAI's x_T, its model answered by the toy network at the input and the sigma of each
    call, OpenAI's draws through its noise hook; the final sample against OpenAI's, within
    the step bounds carried along OpenAI's own trajectory (as GOLD-4's stateful path: the
    network's slope, c_skip of each step)."""
    if not hasattr(impl, "trajectory"):
        pytest.skip(f"{impl.name} cannot be run with a network of the suite's")
    config, spec, exact = _case_through_the_sampler(impl, measure, case, golden_case)
    K = len(exact)
    p = _toy(golden.load_manifest(golden_dir))
    x_t = case["x_t"].astype(np.float64)
    noise = _openai_noise(case)
    x_T = drivers.sample(impl, case["x_T"].astype(np.float64), dtype, device)

    def network(u: np.ndarray, sigma: float) -> np.ndarray:
        return toy_network(u, float(truth.model_times(np.array([sigma]))[0]), p)

    draws = [drivers.sample(impl, noise[k], dtype, device).native for k in range(K)]
    final, own = measure.call(
        "the sampler with the toy network",
        impl.trajectory,
        config,
        spec,
        device,
        x_T.native,
        network,
        draws,
    )
    times = truth.model_times(own[:-1])
    final = measure.output(
        final,
        what="the final sample",
        shape=x_t.shape[1:],
        dtype=None,
        device=None,
    )
    # The bound along OpenAI's trajectory: each step's replay bound (with the effect of the
    # sigmas the sampler used, SCHED's finding), the network's slope times c_out and c_in (the
    # input error) and its time, contracted by c_skip (clamp 1-Lipschitz).
    e = np.zeros(x_t.shape[1:])
    for k in range(K):
        sigma = float(exact.sigmas[k])
        c_in = float(truth.c_in(config, sigma))
        u = c_in * x_t[k]
        t = float(exact.timesteps[k])
        z = noise[k] if K > 1 else np.zeros_like(x_t[k])
        F = toy_network(u, t, p)
        e = _toy_step_error(
            case, config, exact, own, k, e, (x_t[k], F, z), c_in, t, times, p, dtype
        )

    def departure() -> str | None:  # its steps on OpenAI's inputs, run as GOLD-3 runs them
        inputs = _openai_inputs(impl, case, K, dtype, device)
        try:
            results = impl.run_steps(config, spec, device, inputs)
        except Exception:  # noqa: BLE001 (a run that fails is GOLD-3's finding)
            return None
        return _run_departure(impl, config, exact, inputs, results, dtype)

    run = "the sampler's own run with the toy network"
    _close_final(measure, config, case, golden_case, final, e, run, departure)


@pytest.mark.clause("GOLD-4")
def test_whole_trajectories_with_the_toy_network(
    impl: Adapter, measure: Measure, device: str, dtype: str, golden_case: str, golden_dir: Path
) -> None:
    case = golden.load_case(golden_case, golden_dir)
    if unmet_requirement(impl, "per_position_inputs"):  # a loop of its own: the whole of it
        _toy_through_the_sampler(impl, measure, device, dtype, case, golden_case, golden_dir)
        return
    config, spec = _sampler(case, golden_case)
    exact = truth.schedule(config, spec)
    own = drivers.schedule_sigmas(impl, config, spec, device, exact)
    K = len(exact)
    if K > 1 and not impl.capabilities.injected_noise:
        pytest.skip(
            f"{impl.name} does not accept injected noise: OpenAI's draws cannot be replayed"
        )
    measure.uses_noise_layer("injected" if K > 1 else "none needed")
    p = _toy(golden.load_manifest(golden_dir))
    # The network is fed the truth: c_in x and the model time at the sigma the
    # implementation uses (CIN-1, TIME-1, GOLD-2, GOLD-3 check its own), so that this clause
    # measures the chained steps alone.
    times = truth.model_times(own[:-1])
    noise = _openai_noise(case)
    done: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
    stepped: list[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = []
    x = drivers.sample(impl, case["x_T"].astype(np.float64), dtype, device).exact
    e = np.zeros(x.shape)  # the error bound carried along the trajectory
    prev = x
    for k in range(K):
        z = drivers.sample(impl, noise[k], dtype, device).exact if K > 1 else None
        c_in = float(truth.c_in(config, float(own[k])))
        u = c_in * x
        F = drivers.sample(impl, toy_network(u, float(times[k]), p), dtype, device).exact
        done.append((F, x, z))
        # Fresh arrays for every run: positions are independent, the prefix is not looked at.
        inputs = [
            StepInputs(
                drivers.sample(impl, f, dtype, device).native,
                drivers.sample(impl, v, dtype, device).native,
                None if w is None else drivers.sample(impl, w, dtype, device).native,
            )
            for f, v, w in done
        ]
        results = measure.call("the loop body", impl.run_steps, config, spec, device, inputs)
        prev = measure.output(
            results[k].prev_sample,
            what=f"prev_sample at step {k}",
            shape=x.shape,
            dtype=None,
            device=None,
        )
        # Propagate the bound (SPEC.md, GOLD-4).
        zk = np.zeros_like(x) if z is None else z
        step = (x, F, zk)
        e = _toy_step_error(
            case, config, exact, own, k, e, step, c_in, float(times[k]), times, p, dtype
        )
        stepped.append((step, prev))
        x = drivers.sample(impl, prev, dtype, device).exact

    def departure() -> str | None:  # the first of its steps that departs from Algorithm 1
        found = (
            step_checks.step_departure(impl, config, exact, own, k, values, out, dtype)
            for k, (values, out) in enumerate(stepped)
        )
        return next((f for f in found if f), None)

    _close_final(measure, config, case, golden_case, prev, e, "", departure)
