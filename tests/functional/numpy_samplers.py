"""A numpy sampler that draws x_T and its re-noise from the caller's seeded
`numpy.random.Generator`, and a fault of it.

`NumpySampler` is research code as it is written without a deep-learning framework:
diffusers' descending indices `timesteps` into an N-point Karras grid (sigma_min appended
after the last one), a network F(x, t) that applies c_in itself and sees
t = 250 ln(sigma + 1e-44), the clamp as a parameter, and every random number from the
generator the caller seeds: x_T = sigma_max z with z its first draw, then, in a multistep
run, one draw after every evaluation (the last one's scaled by 0), none in one-step
sampling. Each draw is `rng.standard_normal(x.shape)` (float64) cast to the sample's dtype.
It conforms to Algorithm 1; `tests/functional/zoo_numpy.py` declares it and its fault.
"""

from __future__ import annotations

import math

import numpy as np


class NumpySampler:
    """Consistency-model multistep sampling in numpy, x_T and the noise from the caller's
    `numpy.random.Generator` (conforming)."""

    def __call__(self, network, x, timesteps, rng, num_train_timesteps=40, sigma_min=0.002,
                 sigma_max=80.0, rho=7.0, sigma_data=0.5, clip_denoised=True, s_noise=1.0):  # fmt: skip
        hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
        ramps = [i / (num_train_timesteps - 1) for i in reversed(timesteps)]
        sigmas = [(hi + r * (lo - hi)) ** rho for r in ramps] + [sigma_min]
        x = self.initial(rng, x, sigma_max)
        for k, sigma in enumerate(sigmas[:-1]):
            c_skip = sigma_data**2 / ((sigma - sigma_min) ** 2 + sigma_data**2)
            c_out = (sigma - sigma_min) * sigma_data / math.sqrt(sigma**2 + sigma_data**2)
            t = np.full(x.shape[:1], 250.0 * math.log(sigma + 1e-44))
            denoised = c_skip * x + c_out * network(x, t)
            if clip_denoised:
                denoised = np.clip(denoised, -1.0, 1.0)
            if len(sigmas) == 2:  # one-step sampling: the denoised sample, nothing drawn
                return denoised
            tau = min(max(sigmas[k + 1], sigma_min), sigma_max)
            x = denoised + s_noise * math.sqrt(tau**2 - sigma_min**2) * self.draw(rng, x)
        return x

    def draw(self, rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
        return rng.standard_normal(like.shape).astype(like.dtype)

    def initial(self, rng: np.random.Generator, like: np.ndarray, sigma_max: float) -> np.ndarray:
        """x_T = sigma_max z, z the generator's first draw."""
        return sigma_max * self.draw(rng, like)


class XTUnscaled(NumpySampler):
    """Draws x_T = z: the scale sigma_max forgotten."""

    def initial(self, rng, like, sigma_max):
        return self.draw(rng, like)
