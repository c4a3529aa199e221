"""The formulas of consistency-model sampling, one function each, in float64 numpy.

Symbols follow "Consistency Models" (Song, Dhariwal, Chen, Sutskever, ICML 2023,
arXiv:2303.01469) and, for the noise schedule, "Elucidating the Design Space of
Diffusion-Based Generative Models" (Karras et al. 2022, arXiv:2206.00364, "EDM"):

    sigma      noise level (the paper's time t; EDM's sigma(t) = t)
    eps        the smallest time, epsilon = sigma_min, where f(x, eps) = x
    sigma_data standard deviation of the data (0.5 for images in [-1, 1])
    rho        the Karras schedule's exponent
    F          the raw network output F_theta
    x          the sample x_t fed to the consistency function
    z          a standard-normal draw

Every function takes and returns float64 numpy arrays (or scalars) and does no
validation: the scheduler validates its inputs once, these stay readable.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Float = NDArray[np.float64] | np.float64


def karras_sigma(ramp: ArrayLike, sigma_min: float, sigma_max: float, rho: float) -> Float:
    """The Karras schedule on a ramp r in [0, 1]: r = 0 is sigma_max, r = 1 is sigma_min.

    EDM eq. (5), used by the CM paper (Sec. 5 and Appendix C) for the time points
    t_i = (eps^(1/rho) + (i-1)/(N-1) (T^(1/rho) - eps^(1/rho)))^rho, written as
    diffusers and OpenAI's `get_sigmas_karras` walk it, from sigma_max down:
        sigma(r) = (sigma_max^(1/rho) + r (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho
    """
    r = np.asarray(ramp, dtype=np.float64)
    max_inv_rho = sigma_max ** (1.0 / rho)
    min_inv_rho = sigma_min ** (1.0 / rho)
    return (max_inv_rho + r * (min_inv_rho - max_inv_rho)) ** rho


def sigma_to_t(sigma: ArrayLike) -> Float:
    """The model time fed to the network: t = 1000 * 0.25 * log(sigma + 1e-44).

    OpenAI `cm/karras_diffusion.py`, `KarrasDenoiser.denoise`: `rescaled_t`.
    """
    return 1000 * 0.25 * np.log(np.asarray(sigma, dtype=np.float64) + 1e-44)


def c_in(sigma: ArrayLike, sigma_data: float) -> Float:
    """Input scaling c_in(sigma) = 1 / sqrt(sigma^2 + sigma_data^2) (EDM Table 1; CM Appendix C)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    return 1.0 / np.sqrt(sigma**2 + sigma_data**2)


def edm_scalings(sigma: ArrayLike, sigma_data: float) -> tuple[Float, Float]:
    """EDM's preconditioning (EDM Table 1), without the boundary shift:

    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)
    c_out  = sigma * sigma_data / sqrt(sigma^2 + sigma_data^2)
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / np.sqrt(sigma**2 + sigma_data**2)
    return c_skip, c_out


def boundary_scalings(sigma: ArrayLike, eps: float, sigma_data: float) -> tuple[Float, Float]:
    """The consistency-model scalings of CM Appendix C (eq. 43), with eps = sigma_min:

    c_skip(t) = sigma_data^2 / ((t - eps)^2 + sigma_data^2)
    c_out(t)  = sigma_data (t - eps) / sqrt(sigma_data^2 + t^2)

    so that c_skip(eps) = 1 and c_out(eps) = 0 exactly: the boundary condition
    f(x, eps) = x of eq. (3) holds by construction.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    c_skip = sigma_data**2 / ((sigma - eps) ** 2 + sigma_data**2)
    c_out = (sigma - eps) * sigma_data / np.sqrt(sigma**2 + sigma_data**2)
    return c_skip, c_out


def consistency_function(F: ArrayLike, x: ArrayLike, c_skip: Float, c_out: Float) -> Float:
    """f_theta(x, t) = c_skip(t) x + c_out(t) F_theta(x, t)  (CM eq. 5)."""
    return c_skip * np.asarray(x, dtype=np.float64) + c_out * np.asarray(F, dtype=np.float64)


def clamp(x0: Float, clip_denoised: bool) -> Float:
    """Clip the denoised sample to the data range [-1, 1] when `clip_denoised` (OpenAI's default)."""
    return np.clip(x0, -1.0, 1.0) if clip_denoised else x0


def noise_scale(sigma_next: ArrayLike, eps: float) -> Float:
    """The standard deviation of the noise added before the next evaluation,
    sqrt(tau_n^2 - eps^2)  (CM Algorithm 1, line 5). It is 0 at tau_n = eps."""
    sigma_next = np.asarray(sigma_next, dtype=np.float64)
    return np.sqrt(sigma_next**2 - eps**2)


def renoise(x0: Float, z: ArrayLike, s_noise: float, sigma_next: ArrayLike, eps: float) -> Float:
    """x_{tau_n} = x + sqrt(tau_n^2 - eps^2) z  (CM Algorithm 1, line 5), z scaled by s_noise."""
    return x0 + (s_noise * np.asarray(z, dtype=np.float64)) * noise_scale(sigma_next, eps)
