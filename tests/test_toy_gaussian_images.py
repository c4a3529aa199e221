"""The Gaussian image prior of notebook 2 (`reference.toy_models.gaussian_images`): its closed-form
consistency function against a dense RK4 solution of the probability-flow ODE, and its
conditional mean against the constraint it conditions on."""

from __future__ import annotations

import numpy as np
import pytest

from reference.numpy_reference import editing
from reference.toy_models.gaussian_images import (
    GaussianImagePrior,
    kept_coordinates,
    squared_exponential,
)

EPS = 0.002
H = W = 4


@pytest.fixture(scope="module")
def prior() -> GaussianImagePrior:
    C_color = 0.09 * np.array([[1.0, 0.8, 0.5], [0.8, 1.0, 0.6], [0.5, 0.6, 1.0]])
    mu = np.linspace(-0.3, 0.3, 3 * H * W).reshape(3, H, W)
    return GaussianImagePrior(mu, C_color, squared_exponential(H, W, 1.5))


def _dense_rk4(prior: GaussianImagePrior, x: np.ndarray, sigma: float, n: int) -> np.ndarray:
    """dx/dlambda = x - D(x; e^lambda) with D = mu + Sigma (Sigma + sigma^2 I)^-1 (x - mu),
    by dense linear algebra (no eigendecomposition), n RK4 steps from sigma to eps."""
    Sigma, mu, I = prior.covariance(), prior.mu.ravel(), np.eye(3 * H * W)

    def velocity(v: np.ndarray, lam: float) -> np.ndarray:
        return v - mu - (Sigma @ np.linalg.solve(Sigma + np.exp(2 * lam) * I, (v - mu).T)).T

    v = x.reshape(len(x), -1)
    lam0, dl = np.log(sigma), (np.log(EPS) - np.log(sigma)) / n
    for i in range(n):
        lam = lam0 + i * dl
        k1 = velocity(v, lam)
        k2 = velocity(v + dl / 2 * k1, lam + dl / 2)
        k3 = velocity(v + dl / 2 * k2, lam + dl / 2)
        k4 = velocity(v + dl * k3, lam + dl)
        v = v + dl / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return v.reshape(x.shape)


@pytest.mark.parametrize("sigma", [80.0, 3.0, 0.1])
def test_closed_form_matches_dense_ode_solution(prior: GaussianImagePrior, sigma: float) -> None:
    rng = np.random.default_rng(0)
    x = prior.mu + sigma * rng.standard_normal((2, 3, H, W))
    # 400 RK4 steps over |log(sigma / eps)| <= 10.6: h <= 0.027, global error ~h^4 |f - mu|
    # ~ 5e-7 |f - mu|; measured 6e-10. A 0.1 % error in an eigenvalue moves f by ~1e-4.
    np.testing.assert_allclose(
        prior.consistency_function(x, sigma, EPS),
        _dense_rk4(prior, x, sigma, 400),
        rtol=0,
        atol=1e-7,
    )


def test_boundary_condition_holds(prior: GaussianImagePrior) -> None:
    x = np.random.default_rng(1).standard_normal((1, 3, H, W))
    # the scale sqrt((lambda + eps^2) / (lambda + eps^2)) is exactly 1; the two orthogonal
    # basis changes round to a few ulps
    np.testing.assert_allclose(prior.consistency_function(x, EPS, EPS), x, rtol=0, atol=1e-14)


def _rotated_eigh(i: int, angle: float):
    """np.linalg.eigh, with eigenvectors i and i + 1 rotated by `angle` within their plane
    (another valid decomposition where their eigenvalues are equal)."""
    eigh = np.linalg.eigh

    def rotated(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam, U = eigh(a)
        if len(lam) > i + 1:
            c, s = np.cos(angle), np.sin(angle)
            U = U.copy()
            U[:, [i, i + 1]] = U[:, [i, i + 1]] @ np.array([[c, -s], [s, c]])
        return lam, U

    return rotated


def test_samples_do_not_depend_on_the_eigenbasis(
    prior: GaussianImagePrior, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grid's symmetries give C_space repeated eigenvalues, whose eigenvectors LAPACK may
    return in any basis (it did: notebook 2 drew other images on another machine). A prior
    built where eigh returns another valid basis (two eigenvectors of a repeated eigenvalue
    rotated) must draw the same samples for a seed and compute the same f (up to rounding)."""
    lam = prior.lam_s
    i = int(np.argmin(np.abs(np.diff(lam)) / lam[1:]))
    assert abs(lam[i + 1] - lam[i]) <= 1e-12 * lam[i + 1], "no repeated eigenvalue to rotate"
    monkeypatch.setattr(np.linalg, "eigh", _rotated_eigh(i, 0.7))
    other = GaussianImagePrior(prior.mu, prior.C_color, prior.C_space)
    monkeypatch.undo()
    assert not np.allclose(other.U_s, prior.U_s), "the basis was not rotated"
    x = prior.sample(np.random.default_rng(5), 3)
    np.testing.assert_allclose(other.sample(np.random.default_rng(5), 3), x, rtol=0, atol=1e-13)
    np.testing.assert_allclose(
        other.consistency_function(x, 1.0), prior.consistency_function(x, 1.0), rtol=0, atol=1e-12
    )


def test_samples_have_the_prior_covariance(prior: GaussianImagePrior) -> None:
    n = 20000
    x = prior.sample(np.random.default_rng(2), n).reshape(n, -1)
    cov = np.cov(x, rowvar=False)
    # A statistical check that `sample` draws with the right factors (a gross error such as
    # Sigma for its square root fails it); the closed form of f is checked
    # deterministically above. Each entry's sampling error has standard deviation
    # <= sqrt(2 / n) max Sigma_ii = 0.0009; 6 of those bound all 1176 distinct entries
    # together with probability 1 - 2e-6 (union bound), and the seed is fixed.
    np.testing.assert_allclose(
        cov, prior.covariance(), rtol=0, atol=6 * np.sqrt(2 / n) * 0.09 * 1.001
    )


@pytest.mark.parametrize(
    "edit",
    [editing.colorization(), editing.superresolution(2), editing.inpainting(np.eye(H) > 0)],
    ids=lambda e: e.name,
)
def test_conditional_mean_meets_the_constraint(prior: GaussianImagePrior, edit) -> None:
    """B E[x | B x = b] = b, and the mean is the least-Sigma^-1-norm correction of mu."""
    B = kept_coordinates(edit, prior.shape)
    y = prior.sample(np.random.default_rng(3), 1)[0]
    b = B @ y.ravel()
    m = prior.conditional_mean(B, b).ravel()
    np.testing.assert_allclose(B @ m, b, rtol=0, atol=1e-12)
    # the correction m - mu lies in the range of Sigma B^T (normal equations of the minimum)
    correction = m - prior.mu.ravel()
    coef, *_ = np.linalg.lstsq(prior.covariance() @ B.T, correction, rcond=None)
    np.testing.assert_allclose(prior.covariance() @ B.T @ coef, correction, rtol=0, atol=1e-12)
    # kept coordinates agree with the edit's own replacement: replacement(y, m) == m
    np.testing.assert_allclose(
        editing.replacement(y, m.reshape(prior.shape), edit), m.reshape(prior.shape), atol=1e-12
    )


def test_bad_input_is_refused(prior: GaussianImagePrior) -> None:
    with pytest.raises(ValueError, match="`sigma` must be a finite noise level >= eps"):
        prior.consistency_function(np.zeros((3, H, W)), 0.001, EPS)
    with pytest.raises(ValueError, match="`x` must have images of shape"):
        prior.consistency_function(np.zeros((3, H, W + 1)), 1.0, EPS)
    with pytest.raises(ValueError, match="`mu` must be an image of shape"):
        GaussianImagePrior(np.zeros((H, W)), np.eye(3), np.eye(H * W))
    with pytest.raises(ValueError, match="positive definite"):
        GaussianImagePrior(np.zeros((3, H, W)), -np.eye(3), np.eye(H * W))
