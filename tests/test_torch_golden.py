"""Every golden sampler case (OpenAI's `karras_sample`, golden/README.md) replayed step by
step through the torch scheduler, in float64, float32 and float16.

Step k is fed what OpenAI's step k was fed: the sample x_t[k], the recorded network output
model_out[k] and the recorded draw noise[k]; its output must land on x_t[k+1] (after the
last step, on `final`). The bounds are the reference's own (`replay_bound` and the inline
bounds of tests/golden_cases.py and tests/bounds.py: OpenAI's arithmetic, the sigma shift between the
two schedules, OpenAI's 1.1e-10 last noise) plus what the torch dtype adds:
- float64: nothing. Our scalars are the reference's bits and our update rounds five times
  where the reference's allowance is seven.
- float32 and float16: our arithmetic in that dtype (`step_bound` of tests/bounds.py:
  (u_c + 5 u_s) S) and, where the golden tensors are wider, their rounding to the sample
  dtype on the way in (u_s S, plus a subnormal half-spacing per input).
The case `open_end` ends above sigma_min, which the scheduler API cannot express; the
reference replays it through `reference.numpy_reference.algorithm1` and so it is skipped here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bounds import ETA, UNIT_ROUNDOFF, scale_bound, sensitivity, step_bound, to_numpy
from golden_cases import OPEN_END_CASES, SAMPLER_CASES, scheduler_for
from golden_cases import replay_bound as reference_replay_bound

from conformance.truth import golden
from reference.numpy_reference import formulas
from reference.torch_scheduler.scheduler import CMStochasticIterativeScheduler

GOLDEN_DTYPES = {"float32": torch.float32, "float64": torch.float64}
REPLAY_DTYPES = [torch.float64, torch.float32, torch.float16]
U64, U32 = UNIT_ROUNDOFF[torch.float64], UNIT_ROUNDOFF[torch.float32]


def torch_scheduler_for(case: golden.GoldenCase) -> CMStochasticIterativeScheduler:
    """The torch scheduler set up as the reference's `scheduler_for(case)`."""
    ref = scheduler_for(case)
    ours = CMStochasticIterativeScheduler(**ref.config)
    if case.config["sampler"] == "onestep":
        ours.set_timesteps(num_inference_steps=1)
    else:
        ours.set_timesteps(timesteps=list(reversed(case.config["ts"][:-1])))
    return ours


def torch_extra(dtype: torch.dtype, golden_dtype: torch.dtype, S: np.ndarray) -> np.ndarray:
    """What computing in `dtype` adds to the reference's float64 bound (module docstring)."""
    if dtype == torch.float64:
        return np.zeros_like(S)
    extra = step_bound(dtype, S)
    if UNIT_ROUNDOFF[dtype] > UNIT_ROUNDOFF[golden_dtype]:
        extra = extra + UNIT_ROUNDOFF[dtype] * S + 3 * ETA[dtype]
    return extra


def replay_case(name: str, dtype: torch.dtype) -> golden.GoldenCase:
    if name in OPEN_END_CASES:
        pytest.skip(f"{name} ends above sigma_min; the scheduler API always ends at sigma_min")
    return golden.load_case(name)


@pytest.mark.parametrize("dtype", REPLAY_DTYPES, ids=str)
@pytest.mark.parametrize("name", SAMPLER_CASES)
def test_golden_case_replayed_step_by_step(name, dtype):
    case = replay_case(name, dtype)
    config = case.config
    golden_dtype = GOLDEN_DTYPES[config["dtype"]]
    ours = torch_scheduler_for(case)
    K = case["x_t"].shape[0]
    assert len(ours.timesteps) == K
    eps, sd = config["sigma_min"], config["sigma_data"]
    for k, t in enumerate(ours.timesteps):
        x, F = case["x_t"][k], case["model_out"][k]
        z = case["noise"][k] if "noise" in case.tensors else None
        noise = None if z is None else torch.tensor(z).to(dtype)
        prev = ours.step(torch.tensor(F).to(dtype), t, torch.tensor(x).to(dtype), noise=noise)
        out = to_numpy(prev.prev_sample)
        assert prev.prev_sample.dtype == dtype
        last = k == K - 1
        expected = case["final"] if last else case["x_t"][k + 1]
        if last:  # `final` is the last iterate clamped to [-1, 1], a 1-Lipschitz map
            out = np.clip(out, -1.0, 1.0)
        x64, F64 = x.astype(np.float64), F.astype(np.float64)
        sigma, tau = float(ours.sigmas[k]), float(ours.sigmas[k + 1])
        c_skip, c_out = formulas.boundary_scalings(sigma, eps, sd)
        scale = 0.0 if z is None else formulas.noise_scale(tau, eps)
        S = np.abs(c_skip * x64) + np.abs(c_out * F64)
        if z is not None:
            S = S + np.abs(scale * z.astype(np.float64))
        bound = reference_replay_bound(
            case, k, sigma, tau, x64, F64, None if z is None else z.astype(np.float64), out
        ) + torch_extra(dtype, golden_dtype, S)
        error = np.abs(out - expected)
        assert np.all(error <= bound), (
            f"{name} in {dtype}, step {k}: {(error / bound).max():.3g} of the bound"
        )


@pytest.mark.parametrize("dtype", REPLAY_DTYPES, ids=str)
@pytest.mark.parametrize("name", SAMPLER_CASES)
def test_golden_model_inputs_and_denoised(name, dtype):
    """`scale_model_input` against model_in[k], the model time against model_t[k], and the
    step with noise 0 against clamp(denoised[k]), with the reference's inline bounds of
    test_model_inputs_and_denoised_match_openai plus what the dtype adds."""
    case = replay_case(name, dtype)
    config = case.config
    golden_dtype = GOLDEN_DTYPES[config["dtype"]]
    unit = UNIT_ROUNDOFF[golden_dtype]
    narrower = UNIT_ROUNDOFF[dtype] > unit
    eps, sd = config["sigma_min"], config["sigma_data"]
    eps_shift = abs(float(np.float32(eps)) - eps) if golden_dtype == torch.float32 else 0.0
    for k in range(case["x_t"].shape[0]):
        ours = torch_scheduler_for(case)
        ours.set_begin_index(k)
        t = ours.timesteps[k]
        sigma = float(ours.sigmas[k])
        delta = abs(float(case["sigma"][k, 0]) - sigma) / sigma
        kappa_skip, kappa_out, kappa_in = sensitivity(sigma, eps, sd)
        x64 = case["x_t"][k].astype(np.float64)
        F64 = case["model_out"][k].astype(np.float64)
        x, F = torch.tensor(x64).to(dtype), torch.tensor(F64).to(dtype)

        t_allowed = (2 * U64 + 3 * unit) * abs(float(t)) + 250 * delta * (1 + 1e-6) + 1e-30
        assert np.all(np.abs(case["model_t"][k] - float(t)) <= t_allowed), k

        model_in = to_numpy(ours.scale_model_input(x, t))
        magnitude = np.abs(formulas.c_in(sigma, sd) * x64)
        allowed = (3 * U64 + 5 * unit + kappa_in * delta) * magnitude * (1 + 1e-6)
        if dtype != torch.float64:
            allowed = allowed + scale_bound(dtype, magnitude)
            if narrower:
                allowed = allowed + UNIT_ROUNDOFF[dtype] * magnitude + ETA[dtype]
        error = np.abs(model_in - case["model_in"][k])
        assert np.all(error <= allowed), f"model_in[{k}]: {(error / allowed).max():.3g}"

        zero = torch.zeros_like(x) if len(ours.timesteps) > 1 else None
        x0 = to_numpy(ours.step(F, t, x, noise=zero).prev_sample)
        c_skip, c_out = formulas.boundary_scalings(sigma, eps, sd)
        A, B = np.abs(c_skip * x64), np.abs(c_out * F64)
        allowed = (
            7 * U64 * (A + B) + unit * (7 * A + 6 * B) + delta * (kappa_skip * A + kappa_out * B)
        )
        allowed = (allowed + eps_shift * (np.abs(F64) + np.abs(x64) / sd)) * (1 + 1e-6)
        allowed = allowed + torch_extra(dtype, golden_dtype, A + B)
        expected = case["denoised"][k]
        if config["clip_denoised"]:  # clamp is 1-Lipschitz: the bound carries over
            expected = np.clip(expected, -1.0, 1.0)
        error = np.abs(x0 - expected)
        assert np.all(error <= allowed), f"denoised[{k}]: {(error / allowed).max():.3g}"
