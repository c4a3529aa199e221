"""Error bounds, per dtype, from a first-order rounding-error analysis of each formula.

Every bound is `SAFETY` times the first-order bound derived in conformance/SPEC.md next to
the clause it serves ("Tolerances"), in units of the unit roundoff u of the dtype actually
used (u = 2^-53 for float64, 2^-24 float32, 2^-11 float16, 2^-8 bfloat16). The analysis
assumes what SPEC.md requires of an implementation:

- the schedule sigma_i is the float64 Karras formula (EDM eq. 5), correctly rounded
  library pow/log (within 1 ulp);
- the per-step scalars (sigma, c_in, c_skip, c_out, the noise scale) are computed in
  precision P = float64 for float64 samples and P >= float32 for every other dtype;
- the arithmetic on the samples is in the sample dtype D (or wider), its result rounded
  to D once.

Each function returns float64 arrays, elementwise, in numpy arithmetic: a bound is sized
from float64 values (the truth and the clamp of tau come from `conformance.truth`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from conformance import truth

#: Unit roundoff (half the machine epsilon) of each sample dtype.
U: Mapping[str, float] = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}

#: The smallest positive (subnormal) value of each dtype: a result rounded into the subnormal
#: range errs by up to half of it whatever its size, so every bound on a result in D adds it.
TINY: Mapping[str, float] = {
    "float64": 2.0**-1074,
    "float32": 2.0**-149,
    "float16": 2.0**-24,
    "bfloat16": 2.0**-133,
}

#: Every first-order bound is doubled: second-order terms, and library functions (pow, log,
#: sqrt, tanh) that round within 1 ulp (2u) where the analysis counts one rounding (u).
SAFETY = 2.0

Array = NDArray[np.float64]


def scalar_precision(dtype: str) -> str:
    """The least precision SPEC.md allows for the per-step scalars of samples of `dtype`."""
    return "float64" if dtype == "float64" else "float32"


def schedule_rel_bound(
    config: Mapping[str, Any], ramp: ArrayLike, precision: str = "float64"
) -> Array:
    """Relative error bound of a Karras sigma at ramp r computed in `precision` (float64
    unless the implementation claims only lower dtypes: SPEC.md, SCHED-1).

    sigma = beta^rho, beta = a + r (b - a), a = sigma_max^(1/rho), b = sigma_min^(1/rho).
    a carries u from pow and |ln sigma_max| / rho u from the rounded exponent 1/rho (b
    likewise); b - a, r (one division), r (b - a) and the sum add one rounding each. So
    |d beta| <= u [a (1 + la) + r (a (1 + la) + b (1 + lb) + 3 |b - a|) + beta], and
    beta^rho multiplies the relative error by rho and adds one rounding:
    rel(sigma) <= rho |d beta| / beta + 2u  (2u: pow within 1 ulp).
    """
    u = U[precision]
    rho = float(config["rho"])
    r = np.asarray(ramp, dtype=np.float64)
    a = float(config["sigma_max"]) ** (1.0 / rho)
    b = float(config["sigma_min"]) ** (1.0 / rho)
    la = abs(np.log(float(config["sigma_max"]))) / rho
    lb = abs(np.log(float(config["sigma_min"]))) / rho
    beta = a + r * (b - a)
    d_beta = u * (a * (1 + la) + r * (a * (1 + la) + b * (1 + lb) + 3 * abs(b - a)) + beta)
    return SAFETY * (rho * d_beta / beta + 2 * u)


def schedule_precision(dtypes: Sequence[str], stateful: bool) -> str:
    """The precision a schedule is held to (SPEC.md, SCHED-1): float64 for a scheduler (its
    stored schedule) and for a sampler that claims float64 samples; the precision of its
    per-step scalars (float32) for a functional sampler that claims only lower dtypes."""
    return "float64" if stateful or "float64" in dtypes else "float32"


def stored_sigma_rel_bound(config: Mapping[str, Any], ramp: ArrayLike, precision: str) -> Array:
    """The sigma an implementation uses in precision P: the float64 bound plus rounding to P."""
    extra = 0.0 if precision == "float64" else U[precision]
    return schedule_rel_bound(config, ramp) + extra


def model_time_bound(
    config: Mapping[str, Any], ramp: ArrayLike, t: ArrayLike, precision: str = "float64"
) -> Array:
    """Absolute error bound of t = 250 ln(sigma + 1e-44) in float64 (SPEC.md, TIME-1).

    dt = 250 d(sigma)/sigma + |t| (u for log + u for the product) + 250 u for sigma + 1e-44.
    Times held to a lower `precision` (the dtypes a sampler claims: `schedule_precision`) add
    sigma rounded to it (250 u_P) and t rounded to it (u_P |t|)."""
    bound = 250.0 * schedule_rel_bound(config, ramp) + model_time_rounding(t, "float64")
    if precision != "float64":
        bound = bound + SAFETY * U[precision] * (250.0 + np.abs(np.asarray(t, dtype=np.float64)))
    return bound


def model_time_rounding(t: ArrayLike, precision: str) -> Array:
    """Absolute error bound of t = 250 ln(sigma + 1e-44) computed in `precision` from a given
    sigma (SPEC.md, TIME-2, GOLD-2): 250 u for sigma + 1e-44, u |t| for the log and u |t| for
    the product."""
    t = np.abs(np.asarray(t, dtype=np.float64))
    return SAFETY * U[precision] * (250.0 + 2.0 * t)


def moment_rounding(dtype: str) -> float:
    """How far rounding draws w to `dtype` can move their mean, variance and the fraction in
    [-1, 1] (SPEC.md, NOISE-3): each w moves by at most u_D |w|, the moments by O(u_D): 4 u_D."""
    return 4 * U[dtype]


def rounding_bound(dtype: str, *values: ArrayLike, roundings: int = 1) -> Array:
    """`roundings` roundings to `dtype` of each of `values` (their sum of magnitudes): what
    two results of the same arithmetic on the same inputs may differ by, or a sample read
    back through another rounding (SPEC.md, STEP-2, STEP-4, STEP-5, GOLD-3)."""
    total = sum(np.abs(np.asarray(v, dtype=np.float64)) for v in values)
    return SAFETY * roundings * U[dtype] * total


def scale_model_input_bound(
    config: Mapping[str, Any], ramp: float, expected: ArrayLike, dtype: str, readback: float = 0.0
) -> Array:
    """Absolute error bound of x / sqrt(sigma^2 + sigma_data^2) for samples of `dtype`
    (SPEC.md, CIN-1).

    rel <= rel(sigma) sigma^2 / (sigma^2 + sd^2) + 3 u_P (square, sum, sqrt in P) + 2 u_D
    (the scalar rounded to D, the product rounded to D)."""
    P = scalar_precision(dtype)
    sigma = _sigma(config, ramp)
    sd2 = float(config["sigma_data"]) ** 2
    rel_sigma = stored_sigma_rel_bound(config, ramp, P) + readback
    rel = rel_sigma * sigma**2 / (sigma**2 + sd2) + 3 * U[P] + 2 * U[dtype]
    return SAFETY * rel * np.abs(np.asarray(expected, dtype=np.float64)) + TINY[dtype]


def scalings_bound(
    config: Mapping[str, Any], sigma: ArrayLike, precision: str
) -> tuple[Array, Array, Array, Array]:
    """Absolute error bounds of (c_skip, c_out) of CM Appendix C and of EDM (no shift),
    computed in `precision` from an exact sigma of that precision (SPEC.md, SCAL-1, SCAL-3).

    d = sigma - eps: |dd| <= u (eps + |d|) (eps rounded to P, the difference rounded).
    c_skip = sd^2 / (d^2 + sd^2): rel <= 2 |d| |dd| / (d^2 + sd^2) + 4u.
    c_out = d sd / sqrt(sigma^2 + sd^2): abs <= |dd| sd / sqrt(sigma^2 + sd^2) + 4u |c_out|.
    EDM's are the same with eps = 0."""
    u = U[precision]
    s = np.asarray(sigma, dtype=np.float64)
    eps, sd = float(config["sigma_min"]), float(config["sigma_data"])
    d = s - eps
    dd = u * (eps + np.abs(d))
    c_skip = sd**2 / (d**2 + sd**2)
    c_out = d * sd / np.sqrt(s**2 + sd**2)
    b_skip = c_skip * (2 * np.abs(d) * dd / (d**2 + sd**2) + 4 * u)
    b_out = dd * sd / np.sqrt(s**2 + sd**2) + 4 * u * np.abs(c_out)
    e_skip = sd**2 / (s**2 + sd**2)
    e_out = s * sd / np.sqrt(s**2 + sd**2)
    b_e_skip = e_skip * (2 * np.abs(s) * u * np.abs(s) / (s**2 + sd**2) + 4 * u)
    b_e_out = 5 * u * np.abs(e_out)
    return SAFETY * b_skip, SAFETY * b_out, SAFETY * b_e_skip, SAFETY * b_e_out


def step_bound(
    config: Mapping[str, Any],
    ramp: float,
    ramp_next: float | None,
    x: ArrayLike,
    F: ArrayLike,
    z: ArrayLike,
    dtype: str,
    *,
    sigma: float | None = None,
    sigma_next: float | None = None,
    readback: float = 0.0,
    readback_next: float = 0.0,
) -> tuple[Array, Array]:
    """(bound, scale) for prev = clamp(c_skip x + c_out F) + s_noise z sqrt(tau^2 - eps^2)
    (SPEC.md, STEP-1 to STEP-4), elementwise, for samples of `dtype`.

    `ramp_next` is None when the next sigma is the appended sigma_min (the last step): the
    noise scale must then be exactly 0 and its error bound is 0. `scale` is the magnitude
    of the terms, |c_skip x| + |c_out F| + s |z| g, to which errors are relative.
    `sigma`, `sigma_next`: the sigmas the implementation used, where the truth is computed
    at them (default: the Karras sigmas at the ramps); the error of a stored sigma is still
    sized from its ramp. `readback`, `readback_next`: the relative error with which those
    sigmas are known (read back from a model time given below float64), added to eta.
    """
    P = scalar_precision(dtype)
    uP, uD = U[P], U[dtype]
    eps, sd, s = float(config["sigma_min"]), float(config["sigma_data"]), float(config["s_noise"])
    x = np.abs(np.asarray(x, dtype=np.float64))
    F = np.abs(np.asarray(F, dtype=np.float64))
    z = np.abs(np.asarray(z, dtype=np.float64))
    sigma = _sigma(config, ramp) if sigma is None else float(sigma)
    eta = stored_sigma_rel_bound(config, ramp, P) + readback
    eta_eps = 0.0 if P == "float64" else uP

    # The scalings at sigma with sigma's own error eta (CM eq. 43).
    d = sigma - eps
    dd = sigma * eta + eps * eta_eps + uP * abs(d)
    c_skip = sd**2 / (d**2 + sd**2)
    c_out = d * sd / np.sqrt(sigma**2 + sd**2)
    b_skip = c_skip * (2 * abs(d) * dd / (d**2 + sd**2) + 4 * uP)
    b_out = dd * sd / np.sqrt(sigma**2 + sd**2) + abs(c_out) * (
        sigma**2 * eta / (sigma**2 + sd**2) + 4 * uP
    )
    skip_x, out_F = c_skip * x, abs(c_out) * F
    # Rounding a scalar to D errs by u_D |c|, or by half the subnormal spacing TINY_D / 2
    # when |c| is below D's normal range (c_skip = 3.9e-5 at sigma = 80 is subnormal in
    # float16): the second term.
    denoise = b_skip * x + b_out * F + 3 * uD * (skip_x + out_F) + TINY[dtype] / 2 * (x + F)

    g, noise = noise_term_bound(
        config, ramp_next, z, dtype, sigma_next=sigma_next, readback=readback_next
    )
    prev = skip_x + out_F + s * z * g
    bound = SAFETY * (denoise + noise + uD * prev) + TINY[dtype]
    return bound, prev


def noise_term_bound(
    config: Mapping[str, Any],
    ramp_next: float | None,
    z: ArrayLike,
    dtype: str,
    *,
    sigma_next: float | None = None,
    readback: float = 0.0,
) -> tuple[float, Array]:
    """(g, first-order bound of the noise term s z g), g = sqrt(tau^2 - eps^2) with tau the
    next sigma clamped to [sigma_min, sigma_max] (Algorithm 1, line 5; SPEC.md, "Step").

    tau^2 - eps^2 errs by e = 2 tau^2 eta_tau + 2 eps^2 eta_eps + 2 u_P (tau^2 + eps^2);
    g then by min(e / 2g, sqrt(e)) + u_P g; the term s z g adds s |z| (dg + 3 u_D g) +
    u_P s |z| g. `ramp_next` None: after the last evaluation, g = 0 exactly. `readback`:
    the relative error with which tau is known, added to eta_tau."""
    P = scalar_precision(dtype)
    uP, uD = U[P], U[dtype]
    eps, s = float(config["sigma_min"]), float(config["s_noise"])
    eta_eps = 0.0 if P == "float64" else uP
    z = np.abs(np.asarray(z, dtype=np.float64))
    if ramp_next is None:
        return 0.0, np.zeros_like(z)
    nxt = _sigma(config, ramp_next) if sigma_next is None else float(sigma_next)
    tau = truth.tau(config, nxt)
    eta_tau = stored_sigma_rel_bound(config, ramp_next, P) + readback
    g = float(np.sqrt(max(tau**2 - eps**2, 0.0)))
    d_diff = 2 * tau**2 * eta_tau + 2 * eps**2 * eta_eps + 2 * uP * (tau**2 + eps**2)
    dg = min(d_diff / (2 * g), np.sqrt(d_diff)) + uP * g if g > 0 else np.sqrt(d_diff)
    noise = s * z * (dg + 3 * uD * g) + uP * s * z * g + TINY[dtype] / 2 * z
    return g, noise


def at_observed_scale(
    config: Mapping[str, Any], sigma_next: float | None, g_hat: float
) -> Mapping[str, Any]:
    """`config` with s_noise raised to the scale the draws were added with, s g_hat / g (g =
    sqrt(tau^2 - eps^2)), where that is larger: the noise terms of a comparison at a fitted
    scale (NOISE-1, NOISE-2) round at what was added. A wrong scale is STEP-3's, fitted away
    in those comparisons; but a larger one than s g (s_noise ignored at s < 1) rounds more."""
    s = float(config["s_noise"])
    g = truth.noise_scale({**config, "s_noise": 1.0}, sigma_next)
    if not (np.isfinite(g_hat) and g > 0 and abs(s * g_hat) > s * g):
        return config
    return {**config, "s_noise": abs(s * g_hat) / g}


def renoise_difference_bound(
    config: Mapping[str, Any],
    ramp_next: float | None,
    z1: ArrayLike,
    z2: ArrayLike,
    prev1: ArrayLike,
    prev2: ArrayLike,
    dtype: str,
    *,
    sigma_next: float | None = None,
    readback: float = 0.0,
) -> Array:
    """Bound of |(prev(z1) - prev(z2)) - s g (z1 - z2)| for two steps on the same inputs
    with two draws (SPEC.md, STEP-3, NOISE-1, NOISE-2): the denoised value is the same
    number in both and cancels; what is left is each noise term's error and each result's
    rounding to D, u_D |prev|."""
    uD = U[dtype]
    _, n1 = noise_term_bound(config, ramp_next, z1, dtype, sigma_next=sigma_next, readback=readback)
    _, n2 = noise_term_bound(config, ramp_next, z2, dtype, sigma_next=sigma_next, readback=readback)
    p1 = np.abs(np.asarray(prev1, dtype=np.float64))
    p2 = np.abs(np.asarray(prev2, dtype=np.float64))
    return SAFETY * (n1 + n2 + uD * (p1 + p2)) + 2 * TINY[dtype]


def last_noise_scale_bound(config: Mapping[str, Any], dtype: str) -> float:
    """The largest noise scale s sqrt(tau^2 - eps^2) after the last evaluation that a last
    sigma tau within the SCHED-1 bound of sigma_min can give (SPEC.md, STEP-4): a computed
    (not appended) sigma_min, rounded to P, makes tau^2 - eps^2 up to e = 2 eps^2 (eta +
    eta_eps) + 4 u_P eps^2, and g up to sqrt(e). The exact appended sigma_min gives 0."""
    P = scalar_precision(dtype)
    uP = U[P]
    eps, s = float(config["sigma_min"]), float(config["s_noise"])
    eta = stored_sigma_rel_bound(config, 1.0, P)
    eta_eps = 0.0 if P == "float64" else uP
    e = 2 * eps**2 * (eta + eta_eps) + 4 * uP * eps**2
    return SAFETY * s * float(np.sqrt(e))


def add_noise_bound(
    config: Mapping[str, Any],
    ramp: ArrayLike,
    x0: ArrayLike,
    z: ArrayLike,
    dtype: str,
    *,
    sigma: ArrayLike | None = None,
) -> tuple[Array, Array]:
    """(bound, scale) of x0 + z sigma(t) (SPEC.md, ADD-1): sigma with its schedule error and
    rounded to the sample dtype, the product and the sum rounded to it. `sigma`: the sigmas
    the implementation used (default: the Karras sigmas at the ramps)."""
    uD = U[dtype]
    x0 = np.abs(np.asarray(x0, dtype=np.float64))
    z = np.abs(np.asarray(z, dtype=np.float64))
    sigma = _sigma(config, ramp) if sigma is None else np.asarray(sigma, dtype=np.float64)
    eta = schedule_rel_bound(config, ramp) + U[scalar_precision(dtype)]
    term = z * sigma
    scale = x0 + term
    return SAFETY * (term * (eta + 2 * uD) + uD * scale) + TINY[dtype], scale


def toy_network_error(
    p: Mapping[str, float],
    du: ArrayLike,
    u: ArrayLike,
    t: float,
    dt: float,
    F: ArrayLike,
    dtype: str,
) -> Array:
    """Absolute error bound of the golden files' toy network F(u, t) = A tanh(u + B sin(t / C))
    + D u (parameters `p`) evaluated in `dtype` at an input off by `du` and a time off by `dt`
    (SPEC.md, GOLD-4): its slope A + D times du; about 8 roundings of each of its terms A,
    D |u| and A (B |t| / C + |u|) (the argument of tanh and of sin), doubled; F rounded to D;
    and A B |dt| / C for the time."""
    uD = U[dtype]
    u = np.abs(np.asarray(u, dtype=np.float64))
    slope = p["A"] + p["D"]
    return (
        slope * np.asarray(du, dtype=np.float64)
        + 2 * 8 * uD * (p["A"] + p["D"] * u + p["A"] * (p["B"] * abs(t) / p["C"] + u))
        + uD * np.abs(np.asarray(F, dtype=np.float64))
        + p["A"] * p["B"] * abs(dt) / p["C"]
    )


def _sigma(config: Mapping[str, Any], ramp: ArrayLike) -> Array:
    """The float64 Karras sigma, for sizing bounds only (the truth comes from the oracle)."""
    rho = float(config["rho"])
    a = float(config["sigma_max"]) ** (1.0 / rho)
    b = float(config["sigma_min"]) ** (1.0 / rho)
    return (a + np.asarray(ramp, dtype=np.float64) * (b - a)) ** rho
