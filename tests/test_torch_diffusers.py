"""The torch scheduler against diffusers' `CMStochasticIterativeScheduler` (0.42.1) on float32.

Noise: given the same generator (or list of generators), both draw the same numbers, bit
for bit, and leave the generators in the same state (`randn_like_diffusers` follows
diffusers' `randn_tensor`). Steps: fed the same inputs, they agree within float32 rounding,
and differ for two stated reasons, each bounded from diffusers' own state:
- diffusers keeps `sigmas` in float32, so it evaluates c_skip and c_out at sigma rounded to
  float32 (relative shift delta, times the sensitivities kappa of tests/bounds.py),
  in float32 arithmetic, with eps = 0.002 rounded to float32 (as OpenAI's float32 code);
- its last step adds z sqrt(float32(sigma_min)^2 - sigma_min^2) = 6.7e-7 z; ours adds 0.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bounds import (
    UNIT_ROUNDOFF,
    naive_schedule_bound_ulp,
    reference_schedule_bound_ulp,
    sensitivity,
    step_bound,
)
from diffusers import CMStochasticIterativeScheduler as DiffusersScheduler
from diffusers.utils.torch_utils import randn_tensor

from reference.numpy_reference import formulas
from reference.torch_scheduler.scheduler import CMStochasticIterativeScheduler, randn_like_diffusers

U32, U64 = UNIT_ROUNDOFF[torch.float32], UNIT_ROUNDOFF[torch.float64]


def generators(seeds):
    if isinstance(seeds, int):
        return torch.Generator().manual_seed(seeds)
    return [torch.Generator().manual_seed(s) for s in seeds]


def states(g):
    return [x.get_state() for x in (g if isinstance(g, list) else [g])]


@pytest.mark.parametrize("seeds", [0, [1], [2, 3, 4]], ids=["one", "list-of-one", "list"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16], ids=str)
def test_noise_draws_match_randn_tensor_bit_for_bit(seeds, dtype):
    shape = (3, 2, 5, 4)  # a list of generators must hold one per batch element (or one)
    ours_g, theirs_g = generators(seeds), generators(seeds)
    ours = randn_like_diffusers(shape, ours_g, torch.device("cpu"), dtype)
    theirs = randn_tensor(shape, generator=theirs_g, device=torch.device("cpu"), dtype=dtype)
    assert ours.dtype == theirs.dtype == dtype
    assert torch.equal(ours, theirs)
    for a, b in zip(states(ours_g), states(theirs_g), strict=True):
        assert torch.equal(a, b)


def diffusers_step_bound(
    theirs: DiffusersScheduler,
    k: int,
    sigma: float,
    tau: float,
    x: np.ndarray,
    F: np.ndarray,
    z: np.ndarray,
    result: np.ndarray,
) -> np.ndarray:
    """|diffusers - exact| for step k on inputs x, F, z (module docstring), in float64.

    A = |c_skip x|, B = |c_out F|, C = |scale z|: float32 arithmetic as OpenAI's float32 code
    (tests/golden_cases.py, `replay_bound`): u32 (7 A + 6 B + 2 C + |result|); the
    float32 sigma: delta (kappa_skip A + kappa_out B); eps in float32: |eps32 - eps| (|F| +
    |x| / sd); its noise scale, evaluated from its own float32 sigmas as its `step` does,
    against the exact one: |z| |scale_diffusers - scale|.
    """
    eps, sd = theirs.config.sigma_min, theirs.config.sigma_data
    c_skip, c_out = formulas.boundary_scalings(sigma, eps, sd)
    A, B = np.abs(c_skip * x), np.abs(c_out * F)
    kappa_skip, kappa_out, _ = sensitivity(sigma, eps, sd)
    delta = abs(float(theirs.sigmas[k]) - sigma) / sigma
    sigma_hat = theirs.sigmas[k + 1].clamp(min=eps, max=theirs.config.sigma_max)
    scale_theirs = float((sigma_hat**2 - eps**2) ** 0.5)
    scale = formulas.noise_scale(tau, eps)
    eps_shift = abs(float(np.float32(eps)) - eps)
    return (
        delta * (kappa_skip * A + kappa_out * B)
        + eps_shift * (np.abs(F) + np.abs(x) / sd)
        + U32 * (7 * A + 6 * B + 2 * np.abs(scale * z) + np.abs(result))
        + np.abs(z) * abs(scale_theirs - scale)
    ) * (1 + 1e-6)


@pytest.mark.parametrize(
    "schedule",
    [dict(timesteps=[22, 0]), dict(num_inference_steps=4), dict(num_inference_steps=1)],
    ids=["22-0", "n4", "onestep"],
)
@pytest.mark.parametrize("seeds", [7, [8, 9]], ids=["generator", "generator-list"])
def test_float32_loop_against_diffusers(schedule, seeds):
    ours, theirs = CMStochasticIterativeScheduler(), DiffusersScheduler()
    ours.set_timesteps(**schedule)
    theirs.set_timesteps(**schedule)
    ours_g, theirs_g = generators(seeds), generators(seeds)
    if "timesteps" in schedule:
        ramp = sorted(schedule["timesteps"])
    else:  # diffusers' indices arange(n) * (N // n), reversed, and the ramp reverses them back
        ramp = [
            i * (40 // schedule["num_inference_steps"])
            for i in range(schedule["num_inference_steps"])
        ]
    data = torch.Generator().manual_seed(123)
    x = 80 * torch.randn(2, 3, 8, 8, generator=data)
    for k, (t, t_theirs) in enumerate(zip(ours.timesteps, theirs.timesteps, strict=True)):
        # Both are float64 model times, but diffusers evaluates the Karras form naively
        # ((hi + r (lo - hi))^rho, which loses up to 29 ULP near r = 1) where we use the
        # reference's weighted form: their sigmas differ by both schedules' ULP bounds
        # (tests/bounds.py), t = 250 log sigma by 250 times that, plus the log's
        # and the product's roundings on either side.
        ulps = reference_schedule_bound_ulp(0.002, 80.0, 7.0) + naive_schedule_bound_ulp(
            ramp[k], 40, 0.002, 80.0, 7.0
        )
        t_bound = 250 * ulps * 2 * U64 + 6 * U64 * abs(float(t)) + 1e-30
        assert abs(float(t) - float(t_theirs)) <= t_bound
        F = torch.randn(x.shape, generator=data)
        u_ours, u_theirs = ours.scale_model_input(x, t), theirs.scale_model_input(x, t_theirs)
        # c_in x: diffusers' float32 c_in (four roundings and the float32 sigma) against ours.
        delta = abs(float(theirs.sigmas[k]) - float(ours.sigmas[k])) / float(ours.sigmas[k])
        bound = (delta + 7 * U32) * u_theirs.abs() + 1e-45
        assert torch.all((u_ours - u_theirs).abs() <= bound)
        before = [s.clone() for s in states(ours_g)]
        out_ours = ours.step(F, t, x, generator=ours_g).prev_sample
        out_theirs = theirs.step(F, t_theirs, x, generator=theirs_g).prev_sample
        for a, b in zip(states(ours_g), states(theirs_g), strict=True):
            assert torch.equal(a, b)  # the same numbers were drawn
        # Recover the draw both used, to size the bound.
        replay_g = generators(seeds)
        for r, state in zip(
            replay_g if isinstance(replay_g, list) else [replay_g], before, strict=True
        ):
            r.set_state(state)
        z = (
            randn_like_diffusers(tuple(x.shape), replay_g, x.device, x.dtype)
            if len(ours.timesteps) > 1
            else torch.zeros_like(x)
        )
        sigma, tau = float(ours.sigmas[k]), float(ours.sigmas[k + 1])
        xs, Fs, zs = (v.double().numpy() for v in (x, F, z))
        S = (
            np.abs(formulas.boundary_scalings(sigma, 0.002, 0.5)[0] * xs)
            + np.abs(formulas.boundary_scalings(sigma, 0.002, 0.5)[1] * Fs)
            + np.abs(formulas.noise_scale(tau, 0.002) * zs)
        )
        bound = step_bound(torch.float32, S) + diffusers_step_bound(
            theirs, k, sigma, tau, xs, Fs, zs, out_theirs.double().numpy()
        )
        error = (out_ours - out_theirs).double().abs().numpy()
        assert np.all(error <= bound), f"step {k}: {(error / bound).max():.3g} of the bound"
        assert out_ours.dtype == out_theirs.dtype == torch.float32
        x = out_theirs


def test_last_step_differs_from_diffusers_by_its_float32_noise_only():
    """On the last step diffusers adds z sqrt(float32(0.002)^2 - 0.002^2) (6.7e-7 z); ours
    adds nothing. Given the same x, F and generator, the difference is that term, up to the
    float32 differences of the denoised sample (the bounds above with z = 0)."""
    ours, theirs = CMStochasticIterativeScheduler(), DiffusersScheduler()
    ours.set_timesteps(timesteps=[22, 0])
    theirs.set_timesteps(timesteps=[22, 0])
    ours.set_begin_index(1)
    theirs.set_begin_index(1)
    data = torch.Generator().manual_seed(5)
    x, F = torch.randn(2, 3, 8, 8, generator=data), torch.randn(2, 3, 8, 8, generator=data)
    g_ours, g_theirs, g_z = generators(11), generators(11), generators(11)
    out_ours = ours.step(F, ours.timesteps[1], x, generator=g_ours).prev_sample
    out_theirs = theirs.step(F, theirs.timesteps[1], x, generator=g_theirs).prev_sample
    z = randn_like_diffusers(tuple(x.shape), g_z, x.device, x.dtype).double().numpy()
    eps = theirs.config.sigma_min
    scale_theirs = float((theirs.sigmas[-1].clamp(min=eps) ** 2 - eps**2) ** 0.5)
    assert 0 < scale_theirs < 1e-6  # 6.7e-7: sqrt(float32(0.002)^2 - 0.002^2)
    assert float(ours._schedule.table_host[-1, -1]) == 0.0
    sigma, xs, Fs = float(ours.sigmas[1]), x.double().numpy(), F.double().numpy()
    c_skip, c_out = formulas.boundary_scalings(sigma, eps, 0.5)
    zero = np.zeros_like(xs)
    bound = (
        step_bound(torch.float32, np.abs(c_skip * xs) + np.abs(c_out * Fs))
        + diffusers_step_bound(theirs, 1, sigma, eps, xs, Fs, zero, out_theirs.double().numpy())
        + U32 * np.abs(scale_theirs * z)
    )
    residual = np.abs((out_theirs - out_ours).double().numpy() - scale_theirs * z)
    assert np.all(residual <= bound), f"{(residual / bound).max():.3g} of the bound"
    # and the noise term is what separates them: without it the difference is larger.
    assert np.abs(scale_theirs * z).max() > bound.max()
