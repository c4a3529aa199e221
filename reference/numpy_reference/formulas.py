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
    evaluated as the weighted mean ((1 - r) sigma_max^(1/rho) + r sigma_min^(1/rho))^rho
    (see `karras_interpolate`). Prefer `karras_sigma_at` when r = i / (N - 1): a rounded
    ramp near 1 already carries an error that the power rho amplifies.
    """
    r = np.asarray(ramp, dtype=np.float64)
    return karras_interpolate(1.0 - r, r, sigma_min, sigma_max, rho)


def karras_sigma_at(i: ArrayLike, N: int, sigma_min: float, sigma_max: float, rho: float) -> Float:
    """sigma(r) at the ramp r = i / (N - 1) of an N-point grid (index 0 is sigma_max).

    The weights r = i / (N - 1) and 1 - r = (N - 1 - i) / (N - 1) are each rounded once
    from integers, so neither carries the error of the other.
    """
    i = np.asarray(i, dtype=np.float64)
    return karras_interpolate((N - 1 - i) / (N - 1), i / (N - 1), sigma_min, sigma_max, rho)


def karras_interpolate(
    w_max: ArrayLike, w_min: ArrayLike, sigma_min: float, sigma_max: float, rho: float
) -> Float:
    """(w_max sigma_max^(1/rho) + w_min sigma_min^(1/rho))^rho with w_max + w_min = 1 (EDM eq. 5).

    The naive form sigma_max^(1/rho) + r (sigma_min^(1/rho) - sigma_max^(1/rho)) cancels near
    r = 1, losing up to sigma_max^(1/rho) / sigma_min^(1/rho) units of the base's last place
    before the power rho multiplies the loss (29 ULP at the default config, thousands when
    rho is small). A sum of two non-negative terms cancels nothing: the base is good to about
    2 ULP plus the error of the two roots, the result to about 2 rho + |ln sigma| / 2 + 1 ULP
    (derived in tests/test_reference_oracle.py). The ends are the paper's exactly:
    t_N = T = sigma_max at w_min = 0 and t_1 = eps = sigma_min at w_max = 0.
    """
    w_max = np.asarray(w_max, dtype=np.float64)
    w_min = np.asarray(w_min, dtype=np.float64)
    max_inv_rho = sigma_max ** (1.0 / rho)
    min_inv_rho = sigma_min ** (1.0 / rho)
    sigma = (w_max * max_inv_rho + w_min * min_inv_rho) ** rho
    return np.where(w_min == 0, sigma_max, np.where(w_max == 0, sigma_min, sigma))[()]


def sigma_to_t(sigma: ArrayLike) -> Float:
    """The model time fed to the network: t = 1000 * 0.25 * log(sigma + 1e-44).

    OpenAI `cm/karras_diffusion.py`, `KarrasDenoiser.denoise`: `rescaled_t`.
    """
    return 1000 * 0.25 * np.log(np.asarray(sigma, dtype=np.float64) + 1e-44)


def c_in(sigma: ArrayLike, sigma_data: float) -> Float:
    """Input scaling c_in(sigma) = 1 / sqrt(sigma^2 + sigma_data^2) (EDM Table 1; CM Appendix C).

    `np.hypot(a, b)` is sqrt(a^2 + b^2) rounded once, without overflow."""
    sigma = np.asarray(sigma, dtype=np.float64)
    return 1.0 / np.hypot(sigma, sigma_data)


def edm_scalings(sigma: ArrayLike, sigma_data: float) -> tuple[Float, Float]:
    """EDM's preconditioning (EDM Table 1), without the boundary shift:

    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)
    c_out  = sigma * sigma_data / sqrt(sigma^2 + sigma_data^2)
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    return _c_skip(sigma, 0.0, sigma_data), sigma * sigma_data / np.hypot(sigma, sigma_data)


def boundary_scalings(sigma: ArrayLike, eps: float, sigma_data: float) -> tuple[Float, Float]:
    """The consistency-model scalings of CM Appendix C (eq. 43), with eps = sigma_min:

    c_skip(t) = sigma_data^2 / ((t - eps)^2 + sigma_data^2)
    c_out(t)  = sigma_data (t - eps) / sqrt(sigma_data^2 + t^2)

    so that c_skip(eps) = 1 and c_out(eps) = 0 exactly: the boundary condition
    f(x, eps) = x of eq. (3) holds by construction (and in float64: t - eps is 0).
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    c_out = (sigma - eps) * sigma_data / np.hypot(sigma, sigma_data)
    return _c_skip(sigma, eps, sigma_data), c_out


def _c_skip(sigma: Float, eps: float, sigma_data: float) -> Float:
    """sigma_data^2 / ((sigma - eps)^2 + sigma_data^2), the denominator summed from the exact
    parts of sigma - eps and of its square.

    Plainly evaluated, the roundings of sigma - eps, its square, the sum and the quotient add
    up to 4.1 ULP (measured; 6 ULP worst case). Here (sigma - eps)^2 enters the sum exactly
    to first order, leaving the roundings of sigma_data^2, the sum and the quotient: <= 3 ULP.
    """
    d, d_err = exact_difference(sigma, eps)  # sigma - eps = d + d_err
    d2, d2_err = exact_square(d)  # d^2 = d2 + d2_err
    sd2 = sigma_data**2
    return sd2 / ((d2 + sd2) + (d2_err + 2.0 * d * d_err))


# -- error-free transformations ---------------------------------------------------------------
# Each returns the rounded result and its rounding error, both float64, whose sum is exact
# (Knuth, TAOCP vol. 2, 4.2.2; Dekker 1971). They keep c_skip within 3 ULP.


def exact_difference(a: ArrayLike, b: ArrayLike) -> tuple[Float, Float]:
    """(s, e) with s = fl(a - b) and s + e = a - b exactly (Knuth's TwoSum applied to a, -b)."""
    s = np.subtract(a, b)
    b_virtual = s - a  # the part of -b that made it into s
    a_virtual = s - b_virtual  # the part of a that made it into s
    return s, (a - a_virtual) + (-b - b_virtual)


def exact_square(a: ArrayLike) -> tuple[Float, Float]:
    """(p, e) with p = fl(a^2) and p + e = a^2 exactly (Dekker's product with Veltkamp's split
    of a into two 26-bit halves; exact while |a| < 1e300)."""
    a = np.asarray(a, dtype=np.float64)
    p = a * a
    c = 134217729.0 * a  # 2^27 + 1
    hi = c - (c - a)
    lo = a - hi
    return p, ((hi * hi - p) + 2.0 * hi * lo) + lo * lo


def consistency_function(F: ArrayLike, x: ArrayLike, c_skip: Float, c_out: Float) -> Float:
    """f_theta(x, t) = c_skip(t) x + c_out(t) F_theta(x, t)  (CM eq. 5)."""
    return c_skip * np.asarray(x, dtype=np.float64) + c_out * np.asarray(F, dtype=np.float64)


def clamp(x0: Float, clip_denoised: bool) -> Float:
    """Clip the denoised sample to the data range [-1, 1] when `clip_denoised` (OpenAI's default)."""
    return np.clip(x0, -1.0, 1.0) if clip_denoised else x0


def tau(sigma_next: ArrayLike, sigma_min: float, sigma_max: float) -> Float:
    """tau_n of Algorithm 1 (line 5), the time the sample is re-noised to: the next time point
    clipped to [sigma_min, sigma_max], as OpenAI's sampler and diffusers' `step` clip it (so
    the step after the last evaluation re-noises to sigma_min, with scale 0)."""
    return np.clip(np.asarray(sigma_next, dtype=np.float64), sigma_min, sigma_max)


def noise_scale(sigma_next: ArrayLike, eps: float) -> Float:
    """The standard deviation of the noise added before the next evaluation,
    sqrt(tau_n^2 - eps^2)  (CM Algorithm 1, line 5). It is 0 at tau_n = eps.

    Evaluated as sqrt((tau_n - eps)(tau_n + eps)): the difference of the inputs is exact or
    rounded once, while tau_n^2 - eps^2 would cancel the rounding errors of both squares
    when tau_n is close to eps.
    """
    sigma_next = np.asarray(sigma_next, dtype=np.float64)
    return np.sqrt((sigma_next - eps) * (sigma_next + eps))


def renoise(x0: Float, z: ArrayLike, s_noise: float, sigma_next: ArrayLike, eps: float) -> Float:
    """x_{tau_n} = x + sqrt(tau_n^2 - eps^2) z  (CM Algorithm 1, line 5), z scaled by s_noise."""
    return x0 + (s_noise * np.asarray(z, dtype=np.float64)) * noise_scale(sigma_next, eps)
