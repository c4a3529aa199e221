"""Error bounds shared by the project's tests, each derived next to its definition.

The torch scheduler's step (`step_bound`, `scale_bound`): one step computes, elementwise, with
a = c_skip x, b = c_out F, c = s_noise sqrt(tau^2 - eps^2) z:

    x0   = clamp(a + b)          prev = x0 + c

in the sample's dtype (unit roundoff u_s) from scalars rounded to the compute dtype
(u_c: float64 for float64 samples, float32 otherwise). Writing S = |a| + |b| + |c|:

- rounding the three scalars perturbs each term by at most u_c of itself: u_c S;
- the kernels round at most five times (the products a, b and c, the two sums), each by
  at most u_s of a quantity bounded by S (clamp is 1-Lipschitz): 5 u_s S;
- first-order analysis; the second-order terms (u_s^2 S) are below a thousandth of these;
- a result in the subnormal range is rounded to an absolute half-spacing eta_s instead
  (2^-25 = 3e-8 for float16, where c_skip x reaches it at large sigma): 5 eta_s, and
  eta_c for each scalar.

So |torch - exact| <= (u_c + 5 u_s) S + 3 eta_c + 5 eta_s. The numpy reference computes the
same in float64 with at most seven roundings (three for c_skip x + c_out F, three for
(s_noise z) sqrt(..) and its sum, one for s_noise times the scale, which the torch table folds
in): 7 u64 S. Against the reference the bound is therefore (u_c + 5 u_s + 7 u64) S; for
float64 that is 13 u64 S = 1.4e-15 S. tests/test_torch_bounds.py checks that it is tight (a
planted 0.1 % error in c_out exceeds it).

The Karras schedule (`*_schedule_bound*`): the reference's weighted form and OpenAI's and
diffusers' naive one, in float64 and float32 (derived in tests/test_reference_oracle.py and
below). The sensitivities of the scalings to sigma (`sensitivity`) turn a difference of
sigmas into a difference of scalings.

These are derived apart from the suite's bounds (conformance/measuring/bounds.py) on purpose:
they count the roundings of the project's own kernels (the torch table, the reference's
formulas, OpenAI's and diffusers' schedule code) to test the reference against them, where
the suite's bound any implementation against the oracle; a test of the reference sized by
the suite's bounds would check the suite with itself. Only facts of the algorithm (tau's
clamp: `conformance.truth.tau`) are shared.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from conformance import truth
from reference.numpy_reference import formulas

# Unit roundoff 2^-p, p the significand bits including the implicit one.
UNIT_ROUNDOFF = {
    torch.float64: 2.0**-53,
    torch.float32: 2.0**-24,
    torch.float16: 2.0**-11,
    torch.bfloat16: 2.0**-8,
}
U64 = UNIT_ROUNDOFF[torch.float64]
# Half the spacing of the subnormals: the absolute error of rounding a tiny result.
ETA = {dtype: torch.finfo(dtype).smallest_normal * u for dtype, u in UNIT_ROUNDOFF.items()}
DTYPES = list(UNIT_ROUNDOFF)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The scalars are float64 for float64 samples, float32 for all others."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def compute_roundoff(dtype: torch.dtype) -> float:
    """u_c, the unit roundoff of the scalars' dtype."""
    return UNIT_ROUNDOFF[compute_dtype(dtype)]


def step_magnitude(
    x: np.ndarray, F: np.ndarray, z: np.ndarray, sigma: float, sigma_next: float, config
) -> np.ndarray:
    """S = |c_skip x| + |c_out F| + |s_noise sqrt(tau^2 - eps^2) z|, elementwise, in float64."""
    eps = config["sigma_min"]
    c_skip, c_out = formulas.boundary_scalings(sigma, eps, config["sigma_data"])
    scale = config["s_noise"] * formulas.noise_scale(truth.tau(config, float(sigma_next)), eps)
    return np.abs(c_skip * x) + np.abs(c_out * F) + np.abs(scale * z)


def step_bound(dtype: torch.dtype, magnitude: np.ndarray) -> np.ndarray:
    """(u_c + 5 u_s + 7 u64) S + 3 eta_c + 5 eta_s: torch step in `dtype` against the
    float64 reference."""
    relative = compute_roundoff(dtype) + 5 * UNIT_ROUNDOFF[dtype] + 7 * U64
    return relative * magnitude + 3 * ETA[compute_dtype(dtype)] + 5 * ETA[dtype]


def scale_bound(dtype: torch.dtype, magnitude: np.ndarray) -> np.ndarray:
    """c_in x: the scalar rounded (u_c), one product rounded (u_s); the reference computes
    c_in (about three roundings) and the product: 4 u64. Here magnitude = |c_in x|; a
    subnormal result adds eta_s."""
    relative = compute_roundoff(dtype) + UNIT_ROUNDOFF[dtype] + 4 * U64
    return relative * magnitude + ETA[compute_dtype(dtype)] + ETA[dtype]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """Exact float64 copy of any floating tensor (bfloat16 included)."""
    return t.detach().cpu().to(torch.float64).numpy()


def worst_ratio(actual: np.ndarray, expected: np.ndarray, bound: np.ndarray) -> float:
    """max |actual - expected| / bound: <= 1 means within the bound."""
    err = np.abs(actual - expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / bound)
    return float(np.max(ratio))


def naive_schedule_bound_ulp(i: np.ndarray, n: int, sigma_min: float, sigma_max: float, rho: float):
    """Error bound, in ULP, of OpenAI's float64 time points (hi + r (lo - hi))^rho.

    With e = (|ln s| / rho + 1) u the error of each root (rounded 1/rho, then pow), the base
    b = hi + r (lo - hi) is off by e (hi + r (hi + lo)) + 3 u r |hi - lo| (difference, ramp,
    product) + u b (sum); b^rho multiplies its relative error by rho and adds u.
    """
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    r = i / (n - 1)
    b = hi + r * (lo - hi)
    e = max(abs(math.log(sigma_min)), abs(math.log(sigma_max))) / rho + 1
    return rho * (e * (hi + r * (hi + lo)) + 3 * r * abs(hi - lo) + b) / b + 1


def reference_schedule_bound_ulp(sigma_min: float, sigma_max: float, rho: float) -> float:
    """The reference's (|ln s| + 4 rho + 1) ULP (tests/test_reference_oracle.py)."""
    return max(abs(math.log(sigma_min)), abs(math.log(sigma_max))) + 4 * rho + 1


def float32_schedule_bound(i: np.ndarray, n: int, sigma_min: float, sigma_max: float, rho: float):
    """Relative error bound, in u32, of `get_sigmas_karras` (float32 ramp from torch.linspace).

    hi and (lo - hi) are rounded to float32 when they meet the float32 ramp (u32 hi, u32 r|hi-lo|),
    linspace's ramp is off by <= 2 u32 (start + i step or end - (n-1-i) step, step rounded),
    the product and sum add u32 r|hi - lo| and u32 b; pow (float32) adds <= 2 u32 (1 ULP):
        rho (hi + 2 r |hi - lo| + 2 |hi - lo| + b) / b + 2.
    """
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    r = i / (n - 1)
    b = hi + r * (lo - hi)
    return rho * (hi + 2 * r * abs(hi - lo) + 2 * abs(hi - lo) + b) / b + 2


def sensitivity(sigma: float, eps: float, sd: float) -> tuple[float, float, float]:
    """(kappa_skip, kappa_out, kappa_in): |d ln q / d ln sigma| of q = c_skip, c_out, c_in,

    kappa_skip = 2 sigma (sigma - eps) / ((sigma - eps)^2 + sd^2)
    kappa_out  = |sigma / (sigma - eps) - sigma^2 / (sigma^2 + sd^2)|
    kappa_in   = sigma^2 / (sigma^2 + sd^2) <= 1
    """
    d = sigma - eps
    return (
        2 * sigma * d / (d * d + sd * sd),
        abs(sigma / d - sigma**2 / (sigma**2 + sd**2)),
        sigma**2 / (sigma**2 + sd**2),
    )
