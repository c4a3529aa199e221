"""Samplers modelled on behaviours seen when public consistency-model samplers were gated
(the first time point as x_T's scale, the boundary condition applied inside a network's
loop with c_in in the network, a step count whose own grid has one point too many, a
network sampler on its own grid with a c_out that lacks the boundary shift), each
written here from the behaviour, with the departures the zoo names. Algorithm 1 of Song et
al. 2023 with the boundary scalings c_skip = sd^2 / ((sigma - eps)^2 + sd^2),
c_out = (sigma - eps) sd / sqrt(sigma^2 + sd^2)."""

from __future__ import annotations

import math

import torch

EPS, SIGMA_DATA = 0.002, 0.5


def c_skip(sigma: float) -> float:
    return SIGMA_DATA**2 / ((sigma - EPS) ** 2 + SIGMA_DATA**2)


def c_out(sigma: float) -> float:
    return (sigma - EPS) * SIGMA_DATA / math.hypot(sigma, SIGMA_DATA)


def edm_c_skip(sigma: float) -> float:
    """EDM's c_skip (the boundary at sigma = 0): f(x, eps) is not x."""
    return SIGMA_DATA**2 / (sigma**2 + SIGMA_DATA**2)


def renoise(tau: float) -> float:
    """sqrt(tau^2 - eps^2), 0 for a tau that rounds below eps (a schedule's end point)."""
    return math.sqrt(max(tau**2 - EPS**2, 0.0))


def first_point_denoiser(denoise, like, sigmas, noise):
    """Draws x_T at its first time point (x_T = sigma_1 z), then Algorithm 1 on the
    evaluation sigmas it is given."""
    x = sigmas[0] * noise(like)
    for i, sigma in enumerate(sigmas):
        if i:
            x = x + noise(x) * renoise(sigma)
        x = denoise(x, sigma)
    return x


def network_loop(model, x, sigmas, noise, skip=c_skip, first_point=False):
    """A network F(x, sigma) with c_in inside it: the loop applies c_skip, c_out and the
    clamp; x_T drawn at the first time point where `first_point`."""
    if first_point:
        x = sigmas[0] * noise(x)
    for i, sigma in enumerate(sigmas):
        if i:
            x = x + noise(x) * renoise(sigma)
        t = torch.full((x.shape[0],), sigma, dtype=x.dtype)
        x = (skip(sigma) * x + c_out(sigma) * model(x, t)).clamp(-1.0, 1.0)
    return x


def grid_one_too_many(denoise, x, n, noise, num_train_timesteps=40, sigma_min=EPS,
                      sigma_max=80.0, rho=7.0):  # fmt: skip
    """Takes a step count n and evaluates n + 1 points of its own Karras grid for n > 1 (the
    indices k (N // (n + 1)), k = 0..n), then re-noises to the next point."""
    N = num_train_timesteps
    m = n + 1 if n > 1 else n
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = [(hi + k * (N // m) / (N - 1) * (lo - hi)) ** rho for k in range(m)]
    for sigma, tau in zip(sigmas, [*sigmas[1:], sigma_min], strict=True):
        x = denoise(x, sigma)
        x = x + noise(x) * math.sqrt(max(tau**2 - sigma_min**2, 0.0))
    return x


def network_steps(model, x, n, noise, num_train_timesteps=40, sigma_min=EPS, sigma_max=80.0,
                  rho=7.0, clip_denoised=True, shift=True):  # fmt: skip
    """Takes a step count n, computes its own Karras grid (the indices k (N // n), k = 0..n-1,
    from the top) and calls a network F(x, sigma) with c_in inside it: the loop applies
    c_skip, c_out and the clamp (unless not `clip_denoised`), and re-noises to the next point
    with sqrt(tau^2 - eps^2). Without `shift`, c_out = sd sigma / sqrt(sigma^2 + sd^2) lacks the boundary shift
    (sigma - eps), so f(x, eps) is not x: a departure seen in a public sampler."""
    N, eps = num_train_timesteps, sigma_min
    lo, hi = eps ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = [(hi + k * (N // n) / (N - 1) * (lo - hi)) ** rho for k in range(n)]
    for i, sigma in enumerate(sigmas):
        if i:
            x = x + noise(x) * math.sqrt(max(sigma**2 - eps**2, 0.0))
        t = torch.full((x.shape[0],), sigma, dtype=x.dtype)
        skip = SIGMA_DATA**2 / ((sigma - eps) ** 2 + SIGMA_DATA**2)
        out = (sigma - eps * shift) * SIGMA_DATA / math.hypot(sigma, SIGMA_DATA)
        x = skip * x + out * model(x, t)
        x = x.clamp(-1.0, 1.0) if clip_denoised else x
    return x
