"""GOLD: the implementation against tensors recorded from OpenAI's code (SPEC.md, "Golden
files"). `--golden DIR` points these tests at another directory of the same format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import steps, tolerances, truth
from conformance.adapter import Adapter, StepInputs, TimestepSpec
from conformance.measure import Measure
from conformance.strategies import DEFAULT_CONFIG
from reference import golden, oracle

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


def openai_last_noise_scale(case: golden.GoldenCase, directory: Path) -> float:
    """OpenAI's noise scale after its last evaluation, np.sqrt(next_t**2 - t_min**2) in float64
    with its float64 last time point (0.002000000000000003 for the default config, taken from
    the schedule case)."""
    c = case.config
    if c["sampler"] == "onestep":
        return 0.0
    steps_n = int(c["steps"])
    schedule = golden.load_case("schedule_default", directory)
    key = f"multistep_t_clipped_n{steps_n}"
    if key not in schedule.tensors:
        pytest.skip(f"the schedule case holds no {key} for OpenAI's last time point")
    t_last = np.float64(schedule[key][int(c["ts"][-1])])
    t_min = np.float64(c["sigma_min"])
    # As OpenAI computes it (float64, unfactored): about 4 % off the exact 1.1e-10 there.
    return float(np.sqrt(t_last**2 - t_min**2))


@pytest.mark.clause("GOLD-1")
@pytest.mark.requires("schedule")
def test_schedule_vs_openai(impl: Adapter, measure: Measure, device: str, golden_dir: Path) -> None:
    case = golden.load_case("schedule_default", golden_dir)
    for n in case.config["n"]:
        config = {
            **DEFAULT_CONFIG,
            **{k: case.config[k] for k in ("sigma_min", "sigma_max", "rho")},
        }
        config["num_train_timesteps"] = int(n)
        spec = TimestepSpec(timesteps=tuple(range(n - 1, -1, -1)))
        schedule = measure.call(f"set_timesteps (N = {n})", impl.schedule, config, spec, device)
        sigmas = measure.output(
            schedule.sigmas,
            what=f"sigmas (N = {n})",
            shape=(n + 1,),
            dtype=("float64", "float32"),
            device=None,
        )
        expected = case[f"multistep_t_clipped_n{n}"].astype(np.float64)
        ramps = np.arange(n) / (n - 1)
        bound = 2 * tolerances.schedule_rel_bound(config, ramps) * expected  # ours and OpenAI's
        measure.close(sigmas[:-1], expected, bound, f"sigmas vs OpenAI's time points (N = {n})")


@pytest.mark.clause("GOLD-2")
@pytest.mark.requires("boundary_scalings", "edm_scalings", "sigma_to_t")
@pytest.mark.dtypes("float64", "float32")
def test_scalings_vs_openai(
    impl: Adapter, measure: Measure, device: str, dtype: str, golden_dir: Path
) -> None:
    case = golden.load_case("scalings_default", golden_dir)
    suffix = {"float64": "f64", "float32": "f32"}[dtype]
    config = {**DEFAULT_CONFIG, **case.config}
    sigma = steps.sample(impl, case[f"sigma_{suffix}"].astype(np.float64), dtype, device)
    b_skip, b_out, b_e_skip, b_e_out = tolerances.scalings_bound(config, sigma.exact, dtype)
    for label, fn, key, bounds in (
        ("boundary", impl.boundary_scalings, "bc", (b_skip, b_out)),
        ("EDM", impl.edm_scalings, "edm", (b_e_skip, b_e_out)),
    ):
        pair = measure.call(f"{label} scalings", fn, config, sigma.native)
        for value, name, bound in zip(pair, ("c_skip", "c_out"), bounds, strict=True):
            actual = measure.output(
                value,
                what=f"{label} {name}",
                shape=sigma.exact.shape,
                dtype=("float64", dtype),
                device=device,
            )
            expected = case[f"{key}_{name}_{suffix}"].astype(np.float64)
            measure.close(actual, expected, 2 * bound, f"{label} {name} vs OpenAI ({dtype})")
    t = impl.sigma_to_t(config, sigma.exact)
    if not isinstance(t, np.ndarray):
        t = measure.output(t, what="sigma_to_t", shape=sigma.exact.shape, dtype=None, device=None)
    expected_t = case[f"rescaled_t_{suffix}"].astype(np.float64)
    # OpenAI's model time is computed in the golden dtype: its log and product in it.
    theirs = tolerances.SAFETY * tolerances.U[dtype] * (250.0 + 2.0 * np.abs(expected_t))
    ours = tolerances.SAFETY * tolerances.U["float64"] * (250.0 + 2.0 * np.abs(expected_t))
    measure.close(
        np.asarray(t, dtype=np.float64), expected_t, ours + theirs, "sigma_to_t vs OpenAI"
    )


def _replay_bound(
    config: dict[str, Any],
    exact: truth.ExactSchedule,
    k: int,
    x: np.ndarray,
    F: np.ndarray,
    z: np.ndarray,
    dtype: str,
    sigma_openai: np.ndarray,
) -> np.ndarray:
    """Ours and OpenAI's step bounds, plus the effect of OpenAI's own sigma (per batch
    element) differing from the exact one, measured by the oracle."""
    ramp_next = float(exact.ramps[k + 1]) if k + 1 < len(exact) else None
    bound, _ = tolerances.step_bound(config, float(exact.ramps[k]), ramp_next, x, F, z, dtype)
    plain = {**config, "clip_denoised": False}
    mismatch = np.zeros_like(x)
    for b, s in enumerate(sigma_openai):
        if s != exact.sigmas[k]:
            at_theirs = truth.step(plain, float(s), None, F[b], x[b], None)
            at_exact = truth.step(plain, float(exact.sigmas[k]), None, F[b], x[b], None)
            mismatch[b] = np.abs(at_theirs - at_exact)
    return 2 * bound + mismatch


def _c_in_mismatch(
    config: dict[str, Any], sigma: float, sigma_openai: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """|c_in(OpenAI's sigma) - c_in(sigma)| |x|, per batch element (the oracle's)."""
    exact = truth.c_in(config, sigma)
    per_batch = np.array([abs(float(truth.c_in(config, float(s)) - exact)) for s in sigma_openai])
    return per_batch.reshape((-1,) + (1,) * (x.ndim - 1)) * np.abs(x)


@pytest.mark.clause("GOLD-3")
@pytest.mark.requires("per_position_inputs")
def test_trajectories_replayed_step_by_step(
    impl: Adapter, measure: Measure, device: str, dtype: str, golden_case: str, golden_dir: Path
) -> None:
    case = golden.load_case(golden_case, golden_dir)
    mapped = scheduler_case(case)
    if mapped is None:
        pytest.skip(
            f"{golden_case}: its end point is not sigma_min, which the scheduler API cannot express"
        )
    config, spec = mapped
    exact = truth.schedule(config, spec)
    K = len(exact)
    layer = steps.noise_layer(impl) if K > 1 else "injected"
    if layer is None:
        pytest.skip(f"{impl.name} neither accepts injected noise nor declares a noise convention")
    measure.uses_noise_layer(layer if K > 1 else "none needed")
    g_last = openai_last_noise_scale(case, golden_dir)
    x_t = case["x_t"].astype(np.float64)
    F_t = case["model_out"].astype(np.float64)
    noise = case["noise"].astype(np.float64) if "noise" in case.tensors else np.zeros_like(x_t)
    inputs = []
    for k in range(K):
        x = steps.sample(impl, x_t[k], dtype, device)
        F = steps.sample(impl, F_t[k], dtype, device)
        z = steps.sample(impl, noise[k], dtype, device) if layer == "injected" and K > 1 else None
        inputs.append(StepInputs(F.native, x.native, None if z is None else z.native))
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
        scaled = measure.output(
            results[k].scaled,
            what=f"scale_model_input at step {k}",
            shape=shape,
            dtype=dtype,
            device=device,
        )
        sigma_openai = case["sigma"][k].astype(np.float64)
        c_in_mismatch = _c_in_mismatch(config, float(exact.sigmas[k]), sigma_openai, x_t[k])
        b_cin = 2 * tolerances.scale_model_input_bound(
            config, float(exact.ramps[k]), case["model_in"][k], dtype
        )
        measure.close(
            scaled,
            case["model_in"][k].astype(np.float64),
            b_cin + c_in_mismatch,
            f"scale_model_input(x_t[{k}]) vs OpenAI's model_in[{k}]",
        )
        prev = measure.output(
            results[k].prev_sample,
            what=f"prev_sample at step {k}",
            shape=shape,
            dtype=dtype,
            device=device,
        )
        bound = _replay_bound(config, exact, k, x_t[k], F_t[k], z_used[k], dtype, sigma_openai)
        last = k == K - 1
        if layer == "injected" or last:
            expected = case["final"] if last else case["x_t"][k + 1]
            expected = expected.astype(np.float64)
        else:
            den = case["denoised"][k].astype(np.float64)
            den = np.clip(den, -1, 1) if config["clip_denoised"] else den
            g = truth.noise_scale(config, float(exact.sigmas[k + 1]))
            expected = den + g * z_used[k]
        if last:
            prev = np.clip(prev, -1.0, 1.0)  # karras_sample returns the last iterate clamped
            bound = bound + float(config["s_noise"]) * np.abs(noise[k]) * g_last
        measure.close(prev, expected, bound, f"prev_sample at step {k} vs OpenAI ({layer} noise)")


@pytest.mark.clause("GOLD-4")
@pytest.mark.requires("per_position_inputs")
def test_whole_trajectories_with_the_toy_network(
    impl: Adapter, measure: Measure, device: str, dtype: str, golden_case: str, golden_dir: Path
) -> None:
    case = golden.load_case(golden_case, golden_dir)
    mapped = scheduler_case(case)
    if mapped is None:
        pytest.skip(
            f"{golden_case}: its end point is not sigma_min, which the scheduler API cannot express"
        )
    config, spec = mapped
    exact = truth.schedule(config, spec)
    K = len(exact)
    if K > 1 and not impl.capabilities.injected_noise:
        pytest.skip(
            f"{impl.name} does not accept injected noise: OpenAI's draws cannot be replayed"
        )
    measure.uses_noise_layer("injected" if K > 1 else "none needed")
    p = _toy(golden.load_manifest(golden_dir))
    slope = p["A"] + p["D"]
    g_last = openai_last_noise_scale(case, golden_dir)
    times = measure.output(
        measure.call("set_timesteps", impl.schedule, config, spec, device).timesteps,
        what="timesteps",
        shape=(K,),
        dtype=None,
        device=None,
    )
    noise = (
        case["noise"].astype(np.float64)
        if "noise" in case.tensors
        else np.zeros((K, *case["x_T"].shape))
    )
    uD = tolerances.U[dtype]
    x = steps.sample(impl, case["x_T"].astype(np.float64), dtype, device)
    done: list[StepInputs] = []
    e = np.zeros(x.exact.shape)  # the error bound carried along the trajectory
    prev = x.exact
    for k in range(K):
        z = steps.sample(impl, noise[k], dtype, device) if K > 1 else None
        zn = None if z is None else z.native
        # Pass 1: the scaled input at step k (F is not needed for it).
        probe = measure.call(
            "the loop body",
            impl.run_steps,
            config,
            spec,
            device,
            [*done, StepInputs(x.native, x.native, zn)],
        )
        u = measure.output(
            probe[k].scaled,
            what=f"scale_model_input at step {k}",
            shape=x.exact.shape,
            dtype=dtype,
            device=device,
        )
        F = steps.sample(impl, toy_network(u, float(times[k]), p), dtype, device)
        # Pass 2: the step with the network's output.
        step_k = StepInputs(F.native, x.native, zn)
        results = measure.call(
            "the loop body", impl.run_steps, config, spec, device, [*done, step_k]
        )
        prev = measure.output(
            results[k].prev_sample,
            what=f"prev_sample at step {k}",
            shape=x.exact.shape,
            dtype=dtype,
            device=device,
        )
        # Propagate the bound (SPEC.md, GOLD-4).
        sigma = float(exact.sigmas[k])
        sigma_openai = case["sigma"][k].astype(np.float64)
        c_skip, c_out = (
            float(v)
            for v in oracle.boundary_scalings(sigma, config["sigma_min"], config["sigma_data"])
        )
        c_in = float(truth.c_in(config, sigma))
        du = (
            c_in * e
            + 2 * tolerances.scale_model_input_bound(config, float(exact.ramps[k]), u, dtype)
            + _c_in_mismatch(config, sigma, sigma_openai, x.exact)
        )
        t_abs = abs(float(times[k]))
        dF = (
            slope * du
            + 2
            * 8
            * uD
            * (p["A"] + p["D"] * np.abs(u) + p["A"] * (p["B"] * t_abs / p["C"] + np.abs(u)))
            + uD * np.abs(F.exact)
        )
        zk = np.zeros_like(x.exact) if z is None else z.exact
        b_step = _replay_bound(config, exact, k, x.exact, F.exact, zk, dtype, sigma_openai)
        e = c_skip * e + abs(c_out) * dF + b_step
        done.append(step_k)
        x = steps.sample(impl, prev, dtype, device)
    e = e + float(config["s_noise"]) * np.abs(noise[K - 1]) * g_last
    measure.close(
        np.clip(prev, -1.0, 1.0), case["final"].astype(np.float64), e, "final sample vs OpenAI's"
    )
