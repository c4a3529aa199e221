"""A network sampler that draws from its own seeded generator, and single faults of it.

`GeneratorSampler` is research code as it is often written with torch: OpenAI's ascending
indices `ts` into a `steps`-point grid (the end point included), a raw network F(c_in x, t)
with t = 250 ln(sigma + 1e-44), the clamp as a parameter, and its noise from the generator
the caller seeds: `torch.randn(x.shape, generator=g, dtype=x.dtype)` after every evaluation
of a multistep run (the last one's scaled by 0), none in one-step sampling. It conforms to
Algorithm 1.

Each fault is a subclass that changes a few lines of one piece (the denoise, the clamp, the
re-noise, the schedule, the model time, the number of network calls, the number of draws);
`tests/functional/zoo_generator.py` declares the clauses each must fail.
"""

from __future__ import annotations

import math

import torch


class GeneratorSampler:
    """Consistency-model multistep sampling with the caller's torch generator (conforming)."""

    def __call__(self, model, x, ts, generator, t_min=0.002, t_max=80.0, rho=7.0, steps=40,
                 sigma_data=0.5, clip_denoised=True, s_noise=1.0):  # fmt: skip
        self.t_min, self.t_max, self.rho, self.steps = t_min, t_max, rho, steps
        self.sigma_data, self.s_noise = sigma_data, s_noise
        multistep = len(ts) > 2
        for i in range(len(ts) - 1):
            sigma = self.sigma(ts[i])
            tau = min(max(self.sigma(ts[i + 1]), t_min), t_max)
            denoised = self.denoise(model, x, sigma)
            if clip_denoised:
                denoised = self.clamp(denoised, model, x, sigma)
            x = self.renoise(denoised, tau, generator, i == len(ts) - 2) if multistep else denoised
            x = self.one_step(x, generator) if not multistep else x
        return self.finish(model, x)

    # -- the pieces -------------------------------------------------------------------------

    def sigma(self, i: int) -> float:
        """sigma at index i of the grid (EDM eq. 5), the end point t_min exactly."""
        if i == self.steps - 1:
            return self.t_min
        a, b = self.t_max ** (1 / self.rho), self.t_min ** (1 / self.rho)
        return (a + i / (self.steps - 1) * (b - a)) ** self.rho

    def scalings(self, sigma: float) -> tuple[float, float]:
        sd, eps = self.sigma_data, self.t_min
        c_skip = sd**2 / ((sigma - eps) ** 2 + sd**2)
        c_out = (sigma - eps) * sd / math.sqrt(sigma**2 + sd**2)
        return c_skip, c_out

    def time(self, sigma: float, batch: int) -> torch.Tensor:
        return torch.full((batch,), 250.0 * math.log(sigma + 1e-44), dtype=torch.float64)

    def network(self, model, x, sigma):
        c_in = 1 / math.sqrt(sigma**2 + self.sigma_data**2)
        return model(c_in * x, self.time(sigma, x.shape[0]))

    def denoise(self, model, x, sigma):
        c_skip, c_out = self.scalings(sigma)
        return c_skip * x + c_out * self.network(model, x, sigma)

    def clamp(self, denoised, model, x, sigma):
        return denoised.clamp(-1.0, 1.0)

    def draw(self, x, generator):
        return torch.randn(x.shape, generator=generator, dtype=x.dtype)

    def renoise(self, denoised, tau, generator, last):
        z = self.draw(denoised, generator)
        return denoised + self.s_noise * z * math.sqrt(tau**2 - self.t_min**2)

    def one_step(self, x, generator):
        return x

    def finish(self, model, x):
        return x


# -- the denoise ----------------------------------------------------------------------------


class CSkipUnshifted(GeneratorSampler):
    """c_skip without the boundary shift: sd^2 / (sigma^2 + sd^2)."""

    def scalings(self, sigma):
        c_skip, c_out = super().scalings(sigma)
        return self.sigma_data**2 / (sigma**2 + self.sigma_data**2), c_out


class COutNoSqrt(GeneratorSampler):
    """c_out with the square root forgotten: (sigma - eps) sd / (sigma^2 + sd^2)."""

    def scalings(self, sigma):
        c_skip, _ = super().scalings(sigma)
        return c_skip, (sigma - self.t_min) * self.sigma_data / (sigma**2 + self.sigma_data**2)


# -- the clamp ------------------------------------------------------------------------------


class ClampIgnored(GeneratorSampler):
    """Takes clip_denoised but never clamps."""

    def clamp(self, denoised, model, x, sigma):
        return denoised


class ClampsNetwork(GeneratorSampler):
    """Clamps the network's output instead of the denoised sample."""

    def clamp(self, denoised, model, x, sigma):
        c_skip, c_out = self.scalings(sigma)
        F = (denoised - c_skip * x) / c_out if c_out else 0 * x
        return c_skip * x + c_out * F.clamp(-1.0, 1.0)


# -- the re-noise ---------------------------------------------------------------------------


class RenoiseTau(GeneratorSampler):
    """Re-noises with tau, not sqrt(tau^2 - eps^2) (so with sigma_min after the last evaluation)."""

    def renoise(self, denoised, tau, generator, last):
        return denoised + self.s_noise * self.draw(denoised, generator) * tau


class SNoiseIgnored(GeneratorSampler):
    """Takes s_noise but does not scale the draw by it."""

    def renoise(self, denoised, tau, generator, last):
        z = self.draw(denoised, generator)
        return denoised + z * math.sqrt(tau**2 - self.t_min**2)


class NoiseAfterLast(GeneratorSampler):
    """After the last evaluation re-noises to sigma_min itself (scale eps, not 0)."""

    def renoise(self, denoised, tau, generator, last):
        if last:
            return denoised + self.s_noise * self.draw(denoised, generator) * self.t_min
        return super().renoise(denoised, tau, generator, last)


# -- the schedule ---------------------------------------------------------------------------


class RhoInverted(GeneratorSampler):
    """The ramp in sigma^rho instead of sigma^(1/rho)."""

    def sigma(self, i):
        if i == self.steps - 1:
            return self.t_min
        a, b = self.t_max**self.rho, self.t_min**self.rho
        return (a + i / (self.steps - 1) * (b - a)) ** (1 / self.rho)


class RampOverN(GeneratorSampler):
    """The ramp i / steps, not i / (steps - 1) (the end point still t_min)."""

    def sigma(self, i):
        if i == self.steps - 1:
            return self.t_min
        a, b = self.t_max ** (1 / self.rho), self.t_min ** (1 / self.rho)
        return (a + i / self.steps * (b - a)) ** self.rho


class NaNAfterLast(GeneratorSampler):
    """After the last evaluation its noise scale is the root of tau^2 - eps^2 - 1e-12 < 0:
    NaN in every element."""

    def renoise(self, denoised, tau, generator, last):
        z = self.draw(denoised, generator)
        g2 = tau**2 - self.t_min**2 - (1e-12 if last else 0.0)
        return denoised + self.s_noise * z * torch.tensor(g2, dtype=torch.float64).sqrt().item()


class DrawsUpFront(GeneratorSampler):
    """Conforming: draws its n noises before the loop (in order, one per step), as code that
    pre-draws a noise array does."""

    def __call__(self, model, x, ts, generator, **config):
        self.drawn = [self.draw(x, generator) for _ in range(len(ts) - 1)] if len(ts) > 2 else []
        return super().__call__(model, x, ts, generator, **config)

    def renoise(self, denoised, tau, generator, last):
        z = self.drawn.pop(0)
        return denoised + self.s_noise * z * math.sqrt(tau**2 - self.t_min**2)


class DrawsUpFrontTau(DrawsUpFront):
    """Draws its noises up front and re-noises with tau, not sqrt(tau^2 - eps^2)."""

    def renoise(self, denoised, tau, generator, last):
        return denoised + self.s_noise * self.drawn.pop(0) * tau


# -- its own settings ----------------------------------------------------------------------


class NeverClampsTau(RenoiseTau):
    """Never clamps (no parameter, as much research code) and re-noises with tau."""

    def __call__(self, model, x, ts, generator, **config):
        return super().__call__(model, x, ts, generator, **config, clip_denoised=False)


class AlwaysClampsCOut(COutNoSqrt):
    """Always clamps (no parameter) and forgets the square root of c_out."""

    def __call__(self, model, x, ts, generator, **config):
        return super().__call__(model, x, ts, generator, **config, clip_denoised=True)


class OtherDefaults(GeneratorSampler):
    """Defaults sigma_min = 0.003 and no clamp, sigma_max = 120 (another dataset's)."""

    def __call__(self, model, x, ts, generator, t_min=0.003, t_max=120.0, clip_denoised=False,
                 **config):  # fmt: skip
        return super().__call__(
            model, x, ts, generator, t_min=t_min, t_max=t_max, clip_denoised=clip_denoised,
            **config,
        )  # fmt: skip


# -- the model time -------------------------------------------------------------------------


class Float32Time(GeneratorSampler):
    """Conforming: its network sees a float32 model time (its sigmas and scalings float64)."""

    def time(self, sigma, batch):
        return super().time(sigma, batch).to(torch.float32)


class TimeLog10(GeneratorSampler):
    """The network sees 250 log10(sigma) (a typo for the natural log)."""

    def time(self, sigma, batch):
        return torch.full((batch,), 250.0 * math.log10(sigma), dtype=torch.float64)


# -- the number of network calls -------------------------------------------------------------


class DenoisesTwice(GeneratorSampler):
    """Calls the network twice per evaluation and averages (a model-ensembling habit)."""

    def network(self, model, x, sigma):
        return (super().network(model, x, sigma) + super().network(model, x, sigma)) / 2


# -- the number of draws ----------------------------------------------------------------------


class DrawsTwice(GeneratorSampler):
    """Draws twice per step and keeps the second (a leftover of a refactoring)."""

    def draw(self, x, generator):
        super().draw(x, generator)
        return super().draw(x, generator)


class SkipsLastDraw(GeneratorSampler):
    """Draws nothing after the last evaluation (its scale is 0 anyway): the caller's generator
    ends one draw short of the convention."""

    def renoise(self, denoised, tau, generator, last):
        return denoised if last else super().renoise(denoised, tau, generator, last)


class OneStepDraws(GeneratorSampler):
    """In one-step sampling draws a (zero-scaled) noise all the same."""

    def one_step(self, x, generator):
        return x + 0.0 * self.draw(x, generator)


# -- x_T drawn from the caller's generator --------------------------------------------------


class DrawsXT(GeneratorSampler):
    """Conforming: draws x_T = t_max z from the caller's generator (its first draw, as a
    public sampler given a seeded generator does), then steps; its network applies c_in
    itself (F(x, t): declared c_in=False)."""

    def __call__(self, model, x, ts, generator, t_max=80.0, **config):
        x = self.initial(x, generator, t_max)
        return super().__call__(model, x, ts, generator, t_max=t_max, **config)

    def initial(self, x, generator, t_max):
        return t_max * self.draw(x, generator)

    def network(self, model, x, sigma):
        return model(x, self.time(sigma, x.shape[0]))


class XTUnscaled(DrawsXT):
    """Draws x_T = z: the scale t_max forgotten."""

    def initial(self, x, generator, t_max):
        return self.draw(x, generator)


class XTDrawnTwice(DrawsXT):
    """Draws x_T twice and keeps the first (a leftover draw): its steps' draws come one later
    than the convention's."""

    def initial(self, x, generator, t_max):
        z = self.draw(x, generator)
        self.draw(x, generator)
        return t_max * z


class DrawsXTOwnGrid(DrawsXT):
    """Conforming: takes the number of steps n and computes its own grid (SCHED-1's indices
    into its `steps`-point grid, the end point included), x_T drawn as `DrawsXT`."""

    def __call__(self, model, x, n, generator, steps=40, **config):
        ts = [*sorted(k * (steps // n) for k in range(n)), steps - 1]
        return super().__call__(model, x, ts, generator, steps=steps, **config)


class DrawsXTGridNPlus1(DrawsXT):
    """Conforming: takes the number of steps n and evaluates the first n points of the
    (n + 1)-point Karras grid, skipping the last (sigma_min, where f is the identity), as a
    step-count sampler that builds `linspace(0, 1, n + 1)` ramps does; x_T drawn as `DrawsXT`."""

    def __call__(self, model, x, n, generator, **config):
        config.pop("steps", None)  # its grid's N is n + 1, whatever it is asked
        return super().__call__(model, x, list(range(n + 1)), generator, steps=n + 1, **config)


class DrawsXTGridN(DrawsXT):
    """Conforming: takes n and evaluates every point of the n-point Karras grid, the last at
    sigma_min (an identity evaluation, after a re-noise of scale 0), as a step-count sampler
    built on an n-point schedule helper does; one point, sigma_max, for n = 1."""

    def __call__(self, model, x, n, generator, **config):
        steps = max(n, 2)
        ts = [*range(n), steps - 1]  # the end point twice: evaluated, then the last tau
        return super().__call__(model, x, ts, generator, steps=steps, **config)
