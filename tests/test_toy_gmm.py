"""The toy Gaussian mixture's exact consistency function
(`reference.toy_models.gaussian_mixture`): the RK4 solution of the probability-flow ODE against the single-Gaussian closed form and against an
mpmath Taylor-series solution, its boundary condition and self-consistency, and the
distribution it carries the initial noise to."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from reference.numpy_reference import formulas
from reference.toy_models.gaussian_mixture import (
    NOTEBOOK_MIXTURE,
    GaussianMixture,
    gaussian_consistency_function,
    ks_statistic,
    raw_network,
    wasserstein1_to,
)

EPS = 0.002

# RK4's global error is C h^4 with C of the size of the solution's lambda-derivatives,
# which for this ODE (dx/dlambda = x - D, |dD/dx| <= 1 away from mode boundaries) are of
# the size of |f(x, sigma) - mean|, itself <= 1 on the samples used. h^4 = 6.25e-6 at the
# default h = 0.05; the measured errors are <= 2.6e-7 (closed form) and 4e-8 (mpmath), so
# 1e-6 bounds them with room and is 200 times below a 0.1 % error of an f of size 0.2.
RK4_ATOL = 1e-6


@pytest.mark.parametrize("sigma", [80.0, 1.0, 0.05])
def test_single_gaussian_matches_closed_form(sigma: float) -> None:
    mu, s = 0.3, 0.2
    g = GaussianMixture((1.0,), (mu,), (s,))
    x = mu + sigma * np.linspace(-4.0, 4.0, 41)
    exact = gaussian_consistency_function(x, sigma, mu, s, EPS)
    err = np.max(np.abs(g.consistency_function(x, sigma, EPS) - exact))
    assert err <= RK4_ATOL * max(1.0, np.max(np.abs(exact - mu))), f"sigma={sigma}: error {err:.3g}"


def test_rk4_converges_at_fourth_order() -> None:
    """Halving h divides the error against the closed form by ~16 (2^4): a lower-order
    stepper (a wrong RK4 weight) would give 2, 4 or 8."""
    mu, s, sigma = 0.3, 0.2, 80.0
    g = GaussianMixture((1.0,), (mu,), (s,))
    x = mu + sigma * np.linspace(-3.0, 3.0, 13)
    exact = gaussian_consistency_function(x, sigma, mu, s, EPS)
    errors = [
        np.max(np.abs(g.consistency_function(x, sigma, EPS, h=h) - exact)) for h in (0.2, 0.1)
    ]
    order = math.log2(errors[0] / errors[1])
    assert 3.7 < order < 4.3, f"observed order {order:.2f}, errors {errors}"


def _mpmath_consistency_function(mix: GaussianMixture, x0: float, sigma: float) -> float:
    """An independent solution of the same ODE: mpmath's Taylor-series integrator
    (`odefun`, error below its working precision of 12 digits), in s = -log sigma."""
    ctx = mpmath.MPContext()
    ctx.dps = 12
    w, mu, sd = ([ctx.mpf(v) for v in vals] for vals in (mix.w, mix.mu, mix.s))

    def D(x, sig):  # Tweedie's posterior mean of the mixture
        var = [s**2 + sig**2 for s in sd]
        r = [
            wk * ctx.exp(-((x - mk) ** 2) / (2 * vk)) / ctx.sqrt(vk)
            for wk, mk, vk in zip(w, mu, var, strict=True)
        ]
        return sum(
            rk * (mk + sk**2 / vk * (x - mk)) for rk, mk, sk, vk in zip(r, mu, sd, var, strict=True)
        ) / sum(r)

    sol = ctx.odefun(lambda S, x: -(x - D(x, ctx.exp(-S))), -ctx.log(sigma), ctx.mpf(x0))
    return float(sol(-ctx.log(ctx.mpf(EPS))))


@pytest.mark.parametrize("x0, sigma", [(40.0, 80.0), (-100.0, 80.0), (0.5, 1.0), (-0.3, 0.2)])
def test_mixture_matches_mpmath_taylor_solution(x0: float, sigma: float) -> None:
    ours = float(NOTEBOOK_MIXTURE.consistency_function(x0, sigma, EPS))
    oracle = _mpmath_consistency_function(NOTEBOOK_MIXTURE, x0, sigma)
    assert abs(ours - oracle) <= RK4_ATOL, f"f({x0}, {sigma}) = {ours!r}, mpmath {oracle!r}"


def test_denoiser_is_tweedie_of_the_noised_density() -> None:
    """D(x; sigma) = x + sigma^2 d/dx log p_sigma(x) (Tweedie), with the derivative taken by
    mpmath at 30 digits from the density alone."""
    mpmath.mp.dps = 30
    try:
        for sigma in (0.05, 0.7, 20.0):
            pn = NOTEBOOK_MIXTURE.noised(sigma)

            def log_p(x, pn=pn):
                return mpmath.log(
                    sum(
                        w * mpmath.npdf(x, mu, s)
                        for w, mu, s in zip(pn.w, pn.mu, pn.s, strict=True)
                    )
                )

            for x in (-0.7, 0.0, 0.4, 2.5):
                tweedie = float(x + sigma**2 * mpmath.diff(log_p, x))
                ours = float(NOTEBOOK_MIXTURE.denoiser(x, sigma))
                # float64 evaluation of a few exp/log terms: a few ulps of values below 3
                assert abs(ours - tweedie) <= 1e-13, (sigma, x, ours, tweedie)
    finally:
        mpmath.mp.dps = 15


def test_boundary_condition_holds_exactly() -> None:
    x = np.linspace(-2, 2, 9)
    np.testing.assert_array_equal(NOTEBOOK_MIXTURE.consistency_function(x, EPS, EPS), x)
    np.testing.assert_array_equal(NOTEBOOK_MIXTURE.euler_consistency_function(x, EPS, EPS), x)


def test_self_consistency_along_a_trajectory() -> None:
    """f(x_t, t) = f(x_t', t') for two points of one ODE trajectory (CM eq. 4)."""
    x80 = 80.0 * np.linspace(-2.5, 2.5, 21)
    for sigma2 in (3.0, 0.3, 0.01):
        x2 = NOTEBOOK_MIXTURE.solve_ode(x80, 80.0, sigma2)
        np.testing.assert_allclose(
            NOTEBOOK_MIXTURE.consistency_function(x2, sigma2, EPS),
            NOTEBOOK_MIXTURE.consistency_function(x80, 80.0, EPS),
            rtol=0,
            atol=2 * RK4_ATOL,  # two RK4 solutions, each within RK4_ATOL
        )


# Kolmogorov's limiting distribution: P(sqrt(n) KS > 1.95) = 1e-3. Seeds are fixed, so the
# test is deterministic; a correct f fails it with probability 1e-3 over seeds.
KS_CRITICAL_1E3 = 1.95


def test_one_step_pushes_noise_to_the_data_distribution() -> None:
    """f(x_T, 80) with x_T ~ N(0, 80^2) is distributed as p_eps = p_0 * N(0, eps^2) (up to
    the 1e-5 relative variance of p_80 that N(0, 80^2) leaves out); the crude Euler
    consistency function is not, so the test can fail."""
    n = 4000
    x_T = 80.0 * np.random.default_rng(11).standard_normal(n)
    target = NOTEBOOK_MIXTURE.noised(EPS)
    exact = ks_statistic(NOTEBOOK_MIXTURE.consistency_function(x_T, 80.0, EPS), target)
    crude = ks_statistic(NOTEBOOK_MIXTURE.euler_consistency_function(x_T, 80.0, EPS), target)
    assert math.sqrt(n) * exact < KS_CRITICAL_1E3, f"exact f: KS = {exact:.4f}"
    assert math.sqrt(n) * crude > KS_CRITICAL_1E3, f"Euler f: KS = {crude:.4f}"


def test_raw_network_reproduces_f_through_the_scalings() -> None:
    """c_skip x + c_out F(c_in x, t(sigma)) = f(x, sigma): what a scheduler computes."""
    f = NOTEBOOK_MIXTURE.euler_consistency_function
    F = raw_network(f, sigma_data=0.5, eps=EPS)
    x = np.linspace(-3, 3, 13)
    for sigma in (80.0, 1.3, 0.01):
        c_skip, c_out = formulas.boundary_scalings(sigma, EPS, 0.5)
        u, t = formulas.c_in(sigma, 0.5) * x, formulas.sigma_to_t(sigma)
        # sigma recovered from t = 250 log(sigma) to a relative 1e-15 * |log sigma|
        np.testing.assert_allclose(
            c_skip * x + c_out * F(u, t), f(x, sigma), rtol=1e-12, atol=1e-14
        )


def test_distances_on_known_cases() -> None:
    """W_1(delta_0, N(0, 1)) = E|Z| = sqrt(2 / pi); KS(delta_0, N(0, 1)) = 1/2."""
    g = GaussianMixture((1.0,), (0.0,), (1.0,))
    grid = np.linspace(-9, 9, 180001)
    # trapezoidal rule on a step of 1e-4: error <= 1e-4 (one step straddles the jump)
    assert abs(wasserstein1_to(np.zeros(10), g, grid) - math.sqrt(2 / math.pi)) < 1e-4
    assert ks_statistic(np.zeros(10), g) == pytest.approx(0.5, abs=1e-15)
    np.testing.assert_allclose(g.cdf([0.0, 1.0]), [0.5, 0.8413447460685429], rtol=1e-15)


def test_bad_input_is_refused_with_the_argument_named() -> None:
    with pytest.raises(ValueError, match="`w` must be positive and sum to 1"):
        GaussianMixture((0.5, 0.6), (0.0, 1.0), (1.0, 1.0))
    with pytest.raises(ValueError, match="`s` must be positive"):
        GaussianMixture((1.0,), (0.0,), (0.0,))
    with pytest.raises(ValueError, match="one length"):
        GaussianMixture((1.0,), (0.0, 1.0), (1.0,))
    with pytest.raises(ValueError, match="`sigma` must be >= eps"):
        NOTEBOOK_MIXTURE.consistency_function(0.0, 0.001, EPS)
    with pytest.raises(ValueError, match="`sigma_from` must be a finite noise level > 0"):
        NOTEBOOK_MIXTURE.solve_ode(0.0, -1.0, EPS)
    with pytest.raises(ValueError, match="`h` must be a step"):
        NOTEBOOK_MIXTURE.solve_ode(0.0, 1.0, EPS, h=0.0)
    x = np.array([1.0, 2.0])
    NOTEBOOK_MIXTURE.consistency_function(x, 1.0, EPS)
    np.testing.assert_array_equal(x, [1.0, 2.0])  # the caller's array is untouched
    with pytest.raises(TypeError, match="`sigma` must be a real number"):
        NOTEBOOK_MIXTURE.euler_consistency_function(0.0, True)
