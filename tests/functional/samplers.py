"""Functional samplers written as research code writes them: a loop over time points, a
model callable, a noise source. Each has its own calling convention and noise hook; some
conform to Algorithm 1, some carry a departure that real code shows. None knows the suite.

They are the zoo of `tests/functional/zoo.py`, which wraps each in a `FunctionalSampler`.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def karras(i: float, steps: int, t_min: float, t_max: float, rho: float) -> float:
    """sigma at ramp i / (steps - 1) (EDM eq. 5), in float64."""
    a, b = t_max ** (1 / rho), t_min ** (1 / rho)
    return (a + i / (steps - 1) * (b - a)) ** rho


def boundary(sigma: float, t_min: float, sigma_data: float) -> tuple[float, float]:
    """c_skip, c_out of CM Appendix C."""
    c_skip = sigma_data**2 / ((sigma - t_min) ** 2 + sigma_data**2)
    c_out = (sigma - t_min) * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


# -- conforming ---------------------------------------------------------------------------------


def sigmas_karras(n, sigma_min=0.002, sigma_max=80.0, rho=7.0, dtype=np.float64):
    """A library's schedule helper, as k-diffusion's `get_sigmas_karras`: the n-point Karras
    grid (EDM eq. 5 at the ramps linspace(0, 1, n)), then 0.0, computed in `dtype`."""
    hi, lo = dtype(sigma_max) ** dtype(1 / rho), dtype(sigma_min) ** dtype(1 / rho)
    ramps = np.linspace(0.0, 1.0, n, dtype=dtype)
    return [*(float((hi + r * (lo - hi)) ** dtype(rho)) for r in ramps), 0.0]


def sigma_list_sampler(denoise, x, sigmas, noise, sigma_min=0.002):
    """A denoiser sampler given the helper's list (evaluation points, then 0.0 read as
    sigma_min): evaluate, then re-noise to the next point, sqrt(tau^2 - sigma_min^2)."""
    for sigma, tau in zip(sigmas[:-1], sigmas[1:], strict=True):
        x = denoise(x, sigma)
        tau = max(tau, sigma_min)
        x = x + noise(x) * (tau**2 - sigma_min**2) ** 0.5
    return x


def edm_sampler(model, x, sigmas, randn_like, sigma_data=0.5, clip_denoised=True):
    """k-diffusion style: an explicit sigma list (evaluation points then sigma_min), a raw
    network called on c_in x and 250 log(sigma + 1e-44), the noise from `randn_like(x)`."""
    eps = sigmas[-1]
    for i in range(len(sigmas) - 1):
        sigma, tau = sigmas[i], sigmas[i + 1]
        c_skip, c_out = boundary(sigma, eps, sigma_data)
        c_in = 1 / (sigma**2 + sigma_data**2) ** 0.5
        t = torch.full((x.shape[0],), 250 * np.log(sigma + 1e-44), dtype=torch.float64)
        denoised = c_skip * x + c_out * model(c_in * x, t)
        if clip_denoised:
            denoised = denoised.clamp(-1, 1)
        x = denoised + randn_like(x) * (tau**2 - eps**2) ** 0.5
    return x


def jax_style_sampler(apply_fn, x, ts, draws, t_min=0.002, t_max=80.0, rho=7.0, steps=40,
                      sigma_data=0.5, clip=True):  # fmt: skip
    """OpenAI's JAX CIFAR-10 style: ascending indices `ts` into a `steps`-point grid, the
    network on c_in x and 0.25 log(sigma), one pre-drawn noise array per step. The end point
    steps - 1 is t_min exactly."""

    def sigma_at(i):  # noqa: E306
        return t_min if i == steps - 1 else karras(i, steps, t_min, t_max, rho)

    for i in range(len(ts) - 1):
        t, next_t = sigma_at(ts[i]), min(max(sigma_at(ts[i + 1]), t_min), t_max)
        c_skip, c_out = boundary(t, t_min, sigma_data)
        out = apply_fn(x / (t**2 + sigma_data**2) ** 0.5, 0.25 * np.log(t))
        x0 = c_skip * x + c_out * out
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        x = x0 + draws[i] * np.sqrt(next_t**2 - t_min**2)
    return x


def raw_sigma_sampler(net, sample, timesteps, generator, num_train_timesteps=40,
                      sigma_min=0.002, sigma_max=80.0, rho=7.0, sigma_data=0.5):  # fmt: skip
    """diffusers-style descending indices; the network takes the raw sample and sigma itself
    (c_in inside it); always clamps; noise from `generator.randn_like`."""
    N = num_train_timesteps
    sigmas = [karras(i, N, sigma_min, sigma_max, rho) for i in reversed(timesteps)] + [sigma_min]
    for k in range(len(sigmas) - 1):
        c_skip, c_out = boundary(sigmas[k], sigma_min, sigma_data)
        s = torch.full((sample.shape[0],), sigmas[k], dtype=sample.dtype)
        denoised = (c_skip * sample + c_out * net(sample, s)).clamp(-1, 1)
        tau = min(max(sigmas[k + 1], sigma_min), sigma_max)
        sample = denoised + generator.randn_like(sample) * (tau**2 - sigma_min**2) ** 0.5
    return sample


# -- departures ---------------------------------------------------------------------------------


def openai_sampler(denoiser, x, unused, generator, ts, t_min=0.002, t_max=80.0, rho=7.0, steps=40):
    """Models the behaviour of OpenAI's `stochastic_iterative_sampler` (openai/consistency_models,
    cm/karras_diffusion.py; written here, not copied): ascending indices `ts` into a
    `steps`-point Karras grid, every index evaluated with the plain formula (`karras`), the
    last one included, and a denoiser D(x, sigma) that returns the clamped denoised sample.

    The last time point is only a noise target: it is never evaluated, only used for the
    noise scale sqrt(target^2 - t_min^2) of the step before it. Computed by the plain formula
    it is 0.002000000000000003, not t_min, so the sampler adds noise of scale 1.1e-10 after
    its last evaluation. `unused` is a positional slot the modelled sampler has and ignores
    (the zoo passes None)."""
    sigmas = [karras(i, steps, t_min, t_max, rho) for i in ts]
    evaluated, targets = sigmas[:-1], sigmas[1:]
    per_element = (x.shape[0],)
    for sigma, target in zip(evaluated, targets, strict=True):
        denoised = denoiser(x, torch.full(per_element, sigma, dtype=x.dtype))
        target = min(max(target, t_min), t_max)
        x = denoised + generator.randn_like(x) * math.sqrt(target**2 - t_min**2)
    return x


def tau_sampler(denoise, x, sigmas, noise):
    """Re-noises with the next sigma itself instead of sqrt(tau^2 - eps^2); no noise after
    the last evaluation. A denoiser D(x, sigma), a list of pre-drawn noise arrays."""
    for i in range(len(sigmas) - 1):
        x = denoise(x, sigmas[i])
        if i < len(sigmas) - 2:
            x = x + sigmas[i + 1] * noise[i]
    return x


def float32_sampler(denoiser, x, ts, generator, t_min=0.002, t_max=80.0, rho=7.0, steps=40,
                    s_noise=1.0):  # fmt: skip
    """Its schedule in float32 (torch's default dtype), not clipped to [t_min, t_max]: its
    end point is float32(t_min), 9.5e-11 above 0.002, so it adds noise after the last
    evaluation (and for a sigma_min that float32 rounds down, sqrt of a negative: NaN). Noise
    from its seeded generator: torch.randn(shape, generator=g, dtype=x.dtype)."""
    ramp = torch.tensor(ts, dtype=torch.float32) / (steps - 1)
    a, b = torch.tensor(t_max) ** (1 / rho), torch.tensor(t_min) ** (1 / rho)
    sigmas = (a + ramp * (b - a)) ** rho
    for i in range(len(ts) - 1):
        x = denoiser(x, sigmas[i].to(x.dtype).repeat(x.shape[0]))
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = x + s_noise * z * (sigmas[i + 1] ** 2 - t_min**2).sqrt().to(x.dtype)
    return x


def clip_off_sampler(model, x, ts, gen, t_min=0.002, t_max=80.0, rho=7.0, steps=40,
                     sigma_data=0.5, clip_denoised=False):  # fmt: skip
    """OpenAI-style `ts`, but clamping off by default; the network sees c_in x and
    250 log(sigma + 1e-44)."""

    def sigma_at(i):  # noqa: E306
        return t_min if i == steps - 1 else karras(i, steps, t_min, t_max, rho)

    for i in range(len(ts) - 1):
        t, next_t = sigma_at(ts[i]), sigma_at(ts[i + 1])
        c_skip, c_out = boundary(t, t_min, sigma_data)
        x0 = c_skip * x + c_out * model(x / (t**2 + sigma_data**2) ** 0.5, 250 * np.log(t + 1e-44))
        if clip_denoised:
            x0 = x0.clamp(-1, 1)
        x = x0 + gen.randn_like(x) * (next_t**2 - t_min**2) ** 0.5
    return x


def no_cin_sampler(model, x, sigmas, randn_like, sigma_data=0.5, clip_denoised=True):
    """Passes the raw sample to a network that expects c_in x (no c_in)."""
    eps = sigmas[-1]
    for i in range(len(sigmas) - 1):
        c_skip, c_out = boundary(sigmas[i], eps, sigma_data)
        t = 250 * np.log(sigmas[i] + 1e-44)
        denoised = c_skip * x + c_out * model(x, t)
        if clip_denoised:
            denoised = denoised.clamp(-1, 1)
        x = denoised + randn_like(x) * (sigmas[i + 1] ** 2 - eps**2) ** 0.5
    return x


def edm_cout_sampler(model, x, sigmas, noise_fn, sigma_data=0.5, clip_denoised=True):
    """c_out without the boundary shift (EDM's sigma sd / sqrt(sigma^2 + sd^2)), as the PyPI
    package `consistency` has it: f(x, eps) != x. The network sees 1000 * 0.25 log(sigma)."""
    eps = sigmas[-1]
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i]
        c_skip = sigma_data**2 / ((sigma - eps) ** 2 + sigma_data**2)
        c_out = sigma * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
        c_in = 1 / (sigma**2 + sigma_data**2) ** 0.5
        denoised = c_skip * x + c_out * model(c_in * x, 1000 * 0.25 * np.log(sigma))
        if clip_denoised:
            denoised = denoised.clamp(-1, 1)
        x = denoised + noise_fn(x) * (sigmas[i + 1] ** 2 - eps**2) ** 0.5
    return x


def off_by_one_sampler(denoise, x, timesteps, randn_like, num_train_timesteps=40,
                       sigma_min=0.002, sigma_max=80.0, rho=7.0):  # fmt: skip
    """Wrong time points: the ramp i / N instead of i / (N - 1)."""
    N = num_train_timesteps
    sigmas = [karras(i * (N - 1) / N, N, sigma_min, sigma_max, rho) for i in reversed(timesteps)]
    sigmas.append(sigma_min)
    for k in range(len(sigmas) - 1):
        x = denoise(x, sigmas[k])
        x = x + randn_like(x) * (max(sigmas[k + 1], sigma_min) ** 2 - sigma_min**2) ** 0.5
    return x
