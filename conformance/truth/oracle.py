"""An mpmath oracle: the same quantities as `reference.numpy_reference.formulas`, to 60
significant digits.

Inputs are float64 values taken exactly (every float64 is an exact binary
fraction); ramps i / (N - 1) are taken as exact rationals. Each function returns
mpmath numbers; `to_float64` rounds once, to nearest, so a float64 result can be
compared with an implementation's in units in the last place (ULP).
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np
from numpy.typing import ArrayLike, NDArray

DIGITS = 60
_ctx = mpmath.MPContext()
_ctx.dps = DIGITS
mpf = _ctx.mpf


def _exact(value: float) -> mpmath.mpf:
    return mpf(float(value))


def karras_sigma(i: int, N: int, sigma_min: float, sigma_max: float, rho: float) -> mpmath.mpf:
    """sigma(r) = (sigma_max^(1/rho) + r (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho at the
    exact ramp r = i / (N - 1) (EDM eq. 5)."""
    r = mpf(int(i)) / (int(N) - 1)
    inv_rho = 1 / _exact(rho)
    lo, hi = _exact(sigma_min) ** inv_rho, _exact(sigma_max) ** inv_rho
    return (hi + r * (lo - hi)) ** _exact(rho)


def sigma_to_t(sigma: float) -> mpmath.mpf:
    """t = 250 log(sigma + 1e-44)."""
    return 250 * _ctx.log(_exact(sigma) + mpf("1e-44"))


def c_in(sigma: float, sigma_data: float) -> mpmath.mpf:
    s, sd = _exact(sigma), _exact(sigma_data)
    return 1 / _ctx.sqrt(s**2 + sd**2)


def edm_scalings(sigma: float, sigma_data: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    s, sd = _exact(sigma), _exact(sigma_data)
    return sd**2 / (s**2 + sd**2), s * sd / _ctx.sqrt(s**2 + sd**2)


def boundary_scalings(sigma: float, eps: float, sigma_data: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    s, e, sd = _exact(sigma), _exact(eps), _exact(sigma_data)
    return sd**2 / ((s - e) ** 2 + sd**2), (s - e) * sd / _ctx.sqrt(s**2 + sd**2)


def tau(sigma_next: float, sigma_min: float, sigma_max: float = float("inf")) -> mpmath.mpf:
    """The next sigma clamped to [sigma_min, sigma_max] (Algorithm 1, line 5: tau, the point
    the sample is re-noised to; sigma_min after the last evaluation)."""
    return min(max(_exact(sigma_next), _exact(sigma_min)), _exact(sigma_max))


def noise_scale(sigma_next: float, eps: float, sigma_max: float = float("inf")) -> mpmath.mpf:
    """sqrt(tau^2 - eps^2), tau the clamped next sigma (`tau`; 0 at tau = eps)."""
    t, e = tau(sigma_next, eps, sigma_max), _exact(eps)
    return _ctx.sqrt(t**2 - e**2)


def step_at(
    sigma: float,
    sigma_next: float,
    *,
    sigma_min: float,
    sigma_max: float,
    sigma_data: float,
    s_noise: float = 1.0,
    clip_denoised: bool = True,
) -> Callable[[float, float, float], mpmath.mpf]:
    """One scheduler step at (sigma, sigma_next) as a function of one element's (F, x, z):
    clamp(c_skip x + c_out F) + s_noise z sqrt(tau^2 - eps^2). The per-step scalars are
    computed once, so that a caller maps it over the elements of an array."""
    c_skip, c_out = boundary_scalings(sigma, sigma_min, sigma_data)
    noise = _exact(s_noise) * noise_scale(sigma_next, sigma_min, sigma_max)
    one = mpf(1)

    def element(F: float, x: float, z: float) -> mpmath.mpf:
        x0 = c_skip * _exact(x) + c_out * _exact(F)
        if clip_denoised:
            x0 = min(max(x0, -one), one)
        return x0 + noise * _exact(z)

    return element


def step(
    F: float, x: float, z: float, sigma: float, sigma_next: float, **config: float
) -> mpmath.mpf:
    """One scheduler step for one element (`step_at`; `config`: its keyword arguments)."""
    return step_at(sigma, sigma_next, **config)(F, x, z)  # type: ignore[arg-type]


def to_float64(value: mpmath.mpf) -> float:
    """Round an oracle value to the nearest float64, ties to even (one rounding)."""
    return mpmath.libmp.to_float(mpf(value)._mpf_, rnd="n")


def ulp(value: mpmath.mpf) -> mpmath.mpf:
    """The unit in the last place of float64 in the binade of `value`: 2^(floor(log2|value|) - 52),
    and 2^-1074 (the smallest subnormal) for |value| below the normal range, zero included."""
    value = mpf(value)
    if value == 0:
        return mpf(2) ** -1074
    _, exponent = _ctx.frexp(value)  # value = m 2^exponent, 1/2 <= |m| < 1
    return mpf(2) ** max(exponent - 53, -1074)


def ulp_error(actual: ArrayLike, exact: object) -> NDArray[np.float64]:
    """|actual - exact| / ulp(exact), element by element: the error of float64 results in
    units of the last place of the exact values (no rounding of `exact` in between, so a
    correctly rounded result scores <= 0.5). `exact` is an mpmath number or a nested
    sequence of them with the shape of `actual`. An exact zero scores 0 only when matched
    exactly; any other result scores at least 1."""
    actual = np.asarray(actual, dtype=np.float64)
    exact_array = np.asarray(exact, dtype=object).reshape(actual.shape)
    out = np.empty(actual.shape, dtype=np.float64)
    for index in np.ndindex(actual.shape):
        e = exact_array[index]
        out[index] = float(abs(mpf(float(actual[index])) - e) / ulp(e))
    return out


def elementwise(
    fn: Callable[..., mpmath.mpf], *arrays: ArrayLike, **kwargs: object
) -> NDArray[np.float64]:
    """Apply a scalar oracle function over broadcast float64 arrays, rounding each result once."""
    broadcast = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    out = np.empty(broadcast[0].shape, dtype=np.float64)
    for index in np.ndindex(out.shape):
        out[index] = to_float64(fn(*(float(a[index]) for a in broadcast), **kwargs))
    return out
