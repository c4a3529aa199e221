"""Functional samplers that break the clauses no other member of the zoo breaks (TIME-1,
STEP-2, STEP-8, STEP-9, STEP-10, NOISE-2, NOISE-3), each with one departure that real code
shows, written as research code writes them. `conforming_generator_sampler` is their
conforming base: OpenAI's `ts` time points, a denoiser D(x, sigma), the noise from a seeded
torch generator, torch.randn(shape, generator=g, dtype=x.dtype) (diffusers' convention).

`tests/functional/zoo_breakers.py` wraps each in a `FunctionalSampler` with its verdict.
"""

from __future__ import annotations

import numpy as np
import torch

from tests.functional.samplers import boundary, karras


def _sigma_at(i: int, steps: int, t_min: float, t_max: float, rho: float) -> float:
    """sigma at index i of a steps-point grid, the end point t_min exactly."""
    return t_min if i == steps - 1 else karras(i, steps, t_min, t_max, rho)


def _renoise(tau: float, t_min: float, t_max: float) -> float:
    """sqrt(tau^2 - eps^2), tau clamped to [eps, sigma_max] (Algorithm 1, line 5)."""
    tau = min(max(tau, t_min), t_max)
    return (tau**2 - t_min**2) ** 0.5


def _draw(generator, x):
    return torch.randn(x.shape, generator=generator, dtype=x.dtype)


def conforming_generator_sampler(denoiser, x, ts, generator, t_min=0.002, t_max=80.0, rho=7.0,
                                 steps=40, s_noise=1.0, draw=_draw):  # fmt: skip
    """Algorithm 1 with a denoiser and a seeded generator; `draw(generator, x)` is its draw,
    taken after every evaluation of a multistep run (the last one's scaled by 0) and not at
    all in one-step sampling (STEP-5: the caller's generator keeps its state)."""
    multistep = len(ts) > 2
    for i in range(len(ts) - 1):
        sigma = _sigma_at(ts[i], steps, t_min, t_max, rho)
        tau = _sigma_at(ts[i + 1], steps, t_min, t_max, rho)
        x = denoiser(x, torch.full((x.shape[0],), sigma, dtype=torch.float64))
        if multistep:
            x = x + s_noise * draw(generator, x) * _renoise(tau, t_min, t_max)
    return x


# -- the noise (STEP-10, NOISE-2, NOISE-3) -------------------------------------------------------


def global_rng_sampler(denoiser, x, ts, generator, **config):
    """Takes a generator and ignores it: torch.randn from the global RNG (a run is not
    reproducible from its seed)."""
    return conforming_generator_sampler(
        denoiser, x, ts, generator, draw=lambda g, x: torch.randn(x.shape, dtype=x.dtype), **config
    )


def float32_draws_sampler(denoiser, x, ts, generator, **config):
    """Draws its noise in float32 whatever the sample dtype, then casts: on float64 samples
    other numbers than the generator's float64 draws."""
    return conforming_generator_sampler(
        denoiser,
        x,
        ts,
        generator,
        draw=lambda g, x: torch.randn(x.shape, generator=g, dtype=torch.float32).to(x.dtype),
        **config,
    )


def uniform_draws_sampler(denoiser, x, ts, generator, **config):
    """torch.rand for torch.randn: uniform draws on [0, 1), the wrong distribution."""
    return conforming_generator_sampler(
        denoiser,
        x,
        ts,
        generator,
        draw=lambda g, x: torch.rand(x.shape, generator=g, dtype=x.dtype),
        **config,
    )


# -- the output (STEP-8, STEP-9) -------------------------------------------------------------------


def in_place_sampler(denoiser, x, ts, generator, **config):
    """Returns its result in the caller's x_T (to save a buffer): the input is overwritten."""
    out = conforming_generator_sampler(denoiser, x, ts, generator, **config)
    return x.copy_(out)


def float64_output_sampler(denoiser, x, ts, generator, **config):
    """Returns the final sample in float64 whatever the sample dtype (it accumulated there):
    on float32 samples the right values, in the wrong dtype."""
    return conforming_generator_sampler(denoiser, x, ts, generator, **config).double()


# -- the network's conditioning (STEP-2, TIME-1) ----------------------------------------------------


def network_sampler(model, x, ts, gen, t_min=0.002, t_max=80.0, rho=7.0, steps=40,
                    sigma_data=0.5, clip_denoised=True, clamp=None, model_time=None):  # fmt: skip
    """OpenAI-style `ts` with a raw network F(c_in x, t), t = 250 log(sigma + 1e-44), noise
    from `gen.randn_like(x)`; `clamp(x0)` and `model_time(sigma)` are where the breakers below
    differ."""
    clamp = clamp or (lambda x0: x0.clamp(-1.0, 1.0))
    model_time = model_time or (lambda sigma: 250 * np.log(sigma + 1e-44))
    for i in range(len(ts) - 1):
        t = _sigma_at(ts[i], steps, t_min, t_max, rho)
        tau = _sigma_at(ts[i + 1], steps, t_min, t_max, rho)
        c_skip, c_out = boundary(t, t_min, sigma_data)
        x0 = c_skip * x + c_out * model(x / (t**2 + sigma_data**2) ** 0.5, model_time(t))
        if clip_denoised:
            x0 = clamp(x0)
        x = x0 + gen.randn_like(x) * _renoise(tau, t_min, t_max)
    return x


def upper_clamp_sampler(model, x, ts, gen, **config):
    """Clamps the denoised sample from above only (x0.clamp(max=1)): values below -1 pass."""
    return network_sampler(model, x, ts, gen, clamp=lambda x0: x0.clamp(max=1.0), **config)


def float32_time_sampler(model, x, ts, gen, **config):
    """The model time 250 log(sigma + 1e-44) computed in float32 (torch's default dtype)."""
    return network_sampler(
        model,
        x,
        ts,
        gen,
        model_time=lambda sigma: float(250 * torch.log(torch.tensor(sigma + 1e-44))),
        **config,
    )
