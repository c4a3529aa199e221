"""A toy data distribution with an exact consistency function: a 1-D Gaussian mixture.

Data x_0 ~ p_0 = sum_k w_k N(mu_k, s_k^2), applied elementwise (every array element is an
independent draw). Diffusing to noise level sigma (EDM: x_sigma = x_0 + sigma z) gives
p_sigma = sum_k w_k N(mu_k, s_k^2 + sigma^2), whose ideal denoiser is known in closed form
(Tweedie):

    D(x; sigma) = E[x_0 | x_sigma = x]
                = sum_k r_k(x) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)),
    r_k(x)      = w_k N(x; mu_k, s_k^2 + sigma^2) / p_sigma(x).

The probability-flow ODE (CM eq. 2; EDM eq. 3 with sigma(t) = t, s(t) = 1) is
dx/dsigma = (x - D(x; sigma)) / sigma; in lambda = log sigma it reads

    dx/dlambda = x - D(x; e^lambda),

smooth and not stiff on the region the samples visit. The consistency function of CM
Definition 1 maps a point of a trajectory to the trajectory's point at eps = sigma_min:

    f(x, sigma) = x(eps) where x(.) solves the ODE with x(sigma) = x,

so that f(x, eps) = x (the boundary condition, CM eq. 3) exactly. `consistency_function`
integrates the ODE with the classical fixed-step Runge-Kutta method (RK4) in lambda. For a
single Gaussian N(mu, s^2) the ODE is linear and

    f(x, sigma) = mu + sqrt((s^2 + eps^2) / (s^2 + sigma^2)) (x - mu),

`gaussian_consistency_function`, the closed form the numerical solver is checked against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference.numpy_reference import formulas

Array = NDArray[np.float64]

# RK4 step in lambda = log sigma. The global error is O(h^4); h = 0.05 gives 212 steps from
# sigma = 80 to eps = 0.002 and reproduces the single-Gaussian closed form to ~1e-7 and an
# mpmath Taylor-series solution of the mixture's ODE to ~1e-7 (tests/test_toy_gmm.py).
DEFAULT_H = 0.05


def gaussian_consistency_function(
    x: ArrayLike, sigma: float, mu: float, s: float, eps: float
) -> Array:
    """f(x, sigma) = mu + sqrt((s^2 + eps^2) / (s^2 + sigma^2)) (x - mu): the exact consistency
    function of the data distribution N(mu, s^2), whose ODE dx/dsigma = sigma (x - mu) /
    (s^2 + sigma^2) keeps (x - mu) / sqrt(s^2 + sigma^2) constant."""
    x = np.asarray(x, dtype=np.float64)
    return mu + np.sqrt((s**2 + eps**2) / (s**2 + sigma**2)) * (x - mu)


@dataclass(frozen=True)
class GaussianMixture:
    """p_0 = sum_k w_k N(mu_k, s_k^2) on the real line, elementwise on arrays."""

    w: tuple[float, ...]
    mu: tuple[float, ...]
    s: tuple[float, ...]

    def __post_init__(self) -> None:
        K = len(self.w)
        if K == 0 or len(self.mu) != K or len(self.s) != K:
            raise ValueError(
                f"`w`, `mu` and `s` must be non-empty and of one length, got lengths "
                f"{len(self.w)}, {len(self.mu)}, {len(self.s)}"
            )
        if not all(math.isfinite(v) for v in (*self.w, *self.mu, *self.s)):
            raise ValueError(f"`w`, `mu`, `s` must be finite, got {self.w}, {self.mu}, {self.s}")
        if min(self.w) <= 0 or abs(sum(self.w) - 1.0) > 1e-12:
            raise ValueError(f"`w` must be positive and sum to 1, got {self.w}")
        if min(self.s) <= 0:
            raise ValueError(f"`s` must be positive, got {self.s}")

    # -- the distribution at noise level sigma ----------------------------------------------

    def noised(self, sigma: float) -> GaussianMixture:
        """p_sigma = p_0 convolved with N(0, sigma^2): the same mixture, variances s_k^2 + sigma^2."""
        return GaussianMixture(self.w, self.mu, tuple(math.hypot(s, sigma) for s in self.s))

    def sample(self, rng: np.random.Generator, shape: int | tuple[int, ...]) -> Array:
        """Independent draws of p_0 with the given shape."""
        k = rng.choice(len(self.w), size=shape, p=np.asarray(self.w))
        return np.asarray(self.mu)[k] + np.asarray(self.s)[k] * rng.standard_normal(shape)

    def pdf(self, x: ArrayLike) -> Array:
        x = np.asarray(x, dtype=np.float64)[..., None]
        w, mu, s = (np.asarray(v) for v in (self.w, self.mu, self.s))
        return np.sum(w * np.exp(-0.5 * ((x - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi)), -1)

    def cdf(self, x: ArrayLike) -> Array:
        x = np.asarray(x, dtype=np.float64)
        total = np.zeros_like(x)
        for w, mu, s in zip(self.w, self.mu, self.s, strict=True):
            total += w * 0.5 * (1.0 + _erf((x - mu) / (s * math.sqrt(2.0))))
        return total

    def mean(self) -> float:
        return float(np.dot(self.w, self.mu))

    # -- the denoiser and the probability-flow ODE ------------------------------------------

    def denoiser(self, x: ArrayLike, sigma: float) -> Array:
        """D(x; sigma) = E[x_0 | x_sigma = x] (Tweedie), from the mixture's posterior."""
        x = np.asarray(x, dtype=np.float64)
        log_r, means = [], []
        for w, mu, s in zip(self.w, self.mu, self.s, strict=True):
            var = s**2 + sigma**2
            log_r.append(math.log(w) - 0.5 * math.log(var) - 0.5 * (x - mu) ** 2 / var)
            means.append(mu + s**2 / var * (x - mu))  # E[x_0 | x, component k]
        # responsibilities r_k, normalised after a max shift (stable far in the tails)
        top = np.maximum.reduce(log_r)
        r = [np.exp(lr - top) for lr in log_r]
        return sum(rk * mk for rk, mk in zip(r, means, strict=True)) / sum(r)

    def ode_velocity(self, x: Array, lam: float) -> Array:
        """dx/dlambda = x - D(x; e^lambda): the PF ODE in lambda = log sigma."""
        return x - self.denoiser(x, math.exp(lam))

    def solve_ode(
        self, x: ArrayLike, sigma_from: float, sigma_to: float, h: float = DEFAULT_H
    ) -> Array:
        """Carry x from noise level sigma_from to sigma_to along the PF ODE, with
        ceil(|log(sigma_to / sigma_from)| / h) classical RK4 steps of equal length in lambda."""
        _check_sigma("sigma_from", sigma_from)
        _check_sigma("sigma_to", sigma_to)
        if not (isinstance(h, float | int) and 0 < h <= 1):
            raise ValueError(f"`h` must be a step in (0, 1] (in log sigma), got {h!r}")
        x = np.array(x, dtype=np.float64)  # a copy: the caller's array is never modified
        lam0, lam1 = math.log(sigma_from), math.log(sigma_to)
        n = math.ceil(abs(lam1 - lam0) / h)
        if n == 0:
            return x
        dl = (lam1 - lam0) / n
        for i in range(n):
            lam = lam0 + i * dl
            k1 = self.ode_velocity(x, lam)
            k2 = self.ode_velocity(x + 0.5 * dl * k1, lam + 0.5 * dl)
            k3 = self.ode_velocity(x + 0.5 * dl * k2, lam + 0.5 * dl)
            k4 = self.ode_velocity(x + dl * k3, lam + dl)
            x = x + dl / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return x

    def consistency_function(
        self, x: ArrayLike, sigma: float, eps: float = 0.002, h: float = DEFAULT_H
    ) -> Array:
        """f(x, sigma): the point at eps of the PF-ODE trajectory through (x, sigma)
        (CM Definition 1); exactly x at sigma = eps."""
        _check_sigma("sigma", sigma)
        if sigma < eps:
            raise ValueError(f"`sigma` must be >= eps={eps}, got {sigma!r}")
        return self.solve_ode(x, sigma, eps, h)

    def euler_consistency_function(self, x: ArrayLike, sigma: float, eps: float = 0.002) -> Array:
        """A crude consistency function: one Euler step of the PF ODE from sigma to eps,
        x + (eps - sigma) (x - D(x; sigma)) / sigma. It meets the boundary condition
        f(x, eps) = x but is far from the ODE's solution at large sigma (it is close to the
        posterior mean there): a stand-in for an imperfectly trained model."""
        _check_sigma("sigma", sigma)
        x = np.asarray(x, dtype=np.float64)
        return x + (eps - sigma) * (x - self.denoiser(x, sigma)) / sigma


def raw_network(
    f: Callable[[Array, float], Array], sigma_data: float = 0.5, eps: float = 0.002
) -> Callable[[ArrayLike, ArrayLike], Array]:
    """The raw network F(u, t) that turns a consistency function f(x, sigma) into the
    diffusers/OpenAI parameterisation (CM eq. 5, Appendix C): given the scaled input
    u = c_in(sigma) x and the model time t = 250 log(sigma), it returns
    F = (f(x, sigma) - c_skip(sigma) x) / c_out(sigma), so that a scheduler's
    c_skip x + c_out F gives back f(x, sigma). Not defined at sigma = eps (c_out = 0)."""

    def F(u: ArrayLike, t: ArrayLike) -> Array:
        t = float(np.asarray(t, dtype=np.float64))
        sigma = math.exp(t / 250.0)  # inverts t = 250 log(sigma + 1e-44) to ~1e-15 relative
        u = np.asarray(u, dtype=np.float64)
        x = u / formulas.c_in(sigma, sigma_data)
        c_skip, c_out = formulas.boundary_scalings(sigma, eps, sigma_data)
        if c_out == 0:
            raise ValueError(f"the raw network is undefined at sigma = eps ({sigma!r})")
        return (f(x, sigma) - c_skip * x) / c_out

    return F


# The mixture the notebooks use: three modes inside [-1, 1] (the data range images use),
# far enough from the edges that clamping to [-1, 1] removes less than 1e-6 of the mass.
NOTEBOOK_MIXTURE = GaussianMixture(w=(0.3, 0.5, 0.2), mu=(-0.6, 0.1, 0.65), s=(0.08, 0.15, 0.05))


def wasserstein1_to(samples: ArrayLike, dist: GaussianMixture, grid: Sequence[float]) -> float:
    """W_1(empirical distribution of `samples`, dist) = integral |F_n(x) - F(x)| dx, by the
    trapezoidal rule on `grid` (a fine grid covering the samples and the mass of dist)."""
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    g = np.asarray(grid, dtype=np.float64)
    F_n = np.searchsorted(x, g, side="right") / len(x)
    diff = np.abs(F_n - dist.cdf(g))
    return float(np.sum(0.5 * (diff[1:] + diff[:-1]) * np.diff(g)))


def ks_statistic(samples: ArrayLike, dist: GaussianMixture) -> float:
    """Kolmogorov-Smirnov statistic sup_x |F_n(x) - F(x)|, exact at the sample points."""
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = len(x)
    F = dist.cdf(x)
    return float(max(np.max(np.arange(1, n + 1) / n - F), np.max(F - np.arange(n) / n)))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _check_sigma(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, float | int | np.floating | np.integer):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite noise level > 0, got {value!r}")
