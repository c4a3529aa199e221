"""Small synthetic colour images from a Gaussian prior, with an exact consistency function.

Images x_0 in R^(3 x H x W) are drawn from N(mu, Sigma) with a separable covariance
Sigma = C_color (x) C_space (Kronecker product): C_color couples the three channels (so the
gray level says something about the colour), C_space is a squared-exponential kernel on
the pixel grid (so neighbouring pixels agree and a patch mean says something about the
pixels in it). With Sigma = U diag(lambda) U^T, the probability-flow ODE
dx/dsigma = sigma (Sigma + sigma^2 I)^-1 (x - mu) keeps every coordinate of
U^T (x - mu) / sqrt(lambda + sigma^2) constant, so the consistency function (CM
Definition 1) is, in closed form,

    f(x, sigma) = mu + U diag(sqrt((lambda + eps^2) / (lambda + sigma^2))) U^T (x - mu),

with f(x, eps) = x. For a linear observation B x = b of a Gaussian the conditional
distribution is Gaussian too; `conditional_mean` gives E[x_0 | B x_0 = b], the ideal answer
that zero-shot editing (CM Algorithm 4) approximates by sampling.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference.numpy_reference.editing import LinearEdit

Array = NDArray[np.float64]


class GaussianImagePrior:
    """N(mu, C_color (x) C_space) on images of shape (3, H, W)."""

    def __init__(self, mu: ArrayLike, C_color: ArrayLike, C_space: ArrayLike) -> None:
        mu = np.asarray(mu, dtype=np.float64)
        C_color = np.asarray(C_color, dtype=np.float64)
        C_space = np.asarray(C_space, dtype=np.float64)
        if mu.ndim != 3 or mu.shape[0] != 3:
            raise ValueError(f"`mu` must be an image of shape (3, H, W), got {mu.shape}")
        P = mu.shape[1] * mu.shape[2]
        if C_color.shape != (3, 3) or C_space.shape != (P, P):
            raise ValueError(
                f"`C_color` must be (3, 3) and `C_space` ({P}, {P}), got {C_color.shape} and "
                f"{C_space.shape}"
            )
        self.mu = mu
        self.shape = mu.shape
        self.C_color, self.C_space = C_color, C_space
        self.lam_c, self.U_c = np.linalg.eigh(C_color)
        self.lam_s, self.U_s = np.linalg.eigh(C_space)
        if self.lam_c.min() <= 0 or self.lam_s.min() <= 0:
            raise ValueError("`C_color` and `C_space` must be symmetric positive definite")
        # eigenvalues of the Kronecker product, laid out as the (3, H*W) coefficient array
        self.lam = np.outer(self.lam_c, self.lam_s)
        # Cholesky factors, for `sample`: unlike the eigenvectors, unique. The grid's symmetries
        # give C_space repeated eigenvalues (129 of 256 at 16 x 16), and which basis of each
        # repeated eigenspace `eigh` returns depends on the LAPACK kernel and its thread count:
        # samples drawn in the eigenbasis changed from machine to machine.
        self.L_c = np.linalg.cholesky(C_color)
        self.L_s = np.linalg.cholesky(C_space)

    # coefficients in the eigenbasis: U^T v for v of shape (..., 3, H, W)
    def _to_eigen(self, v: Array) -> Array:
        v = v.reshape(*v.shape[:-2], -1)
        return np.swapaxes(self.U_c, 0, 1) @ v @ self.U_s

    def _from_eigen(self, a: Array) -> Array:
        v = self.U_c @ a @ np.swapaxes(self.U_s, 0, 1)
        return v.reshape(*v.shape[:-1], *self.shape[1:])

    def sample(self, rng: np.random.Generator, n: int) -> Array:
        """n images x_0 ~ N(mu, Sigma), shape (n, 3, H, W): mu + L_c z L_s^T with
        Sigma = (L_c L_c^T) (x) (L_s L_s^T), the same images for the same `rng` on any
        machine (up to rounding)."""
        z = rng.standard_normal((n, 3, self.lam.shape[1]))
        return self.mu + (self.L_c @ z @ self.L_s.T).reshape(n, *self.shape)

    def consistency_function(self, x: ArrayLike, sigma: float, eps: float = 0.002) -> Array:
        """f(x, sigma) = mu + U diag(sqrt((lambda + eps^2) / (lambda + sigma^2))) U^T (x - mu)."""
        if not (math.isfinite(sigma) and sigma >= eps):
            raise ValueError(f"`sigma` must be a finite noise level >= eps={eps}, got {sigma!r}")
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-3:] != self.shape:
            raise ValueError(f"`x` must have images of shape {self.shape}, got {x.shape}")
        scale = np.sqrt((self.lam + eps**2) / (self.lam + sigma**2))
        return self.mu + self._from_eigen(scale * self._to_eigen(x - self.mu))

    def covariance(self) -> Array:
        """Sigma = C_color (x) C_space as a dense (3 H W) x (3 H W) matrix."""
        return np.kron(self.C_color, self.C_space)

    def conditional_mean(self, B: ArrayLike, b: ArrayLike) -> Array:
        """E[x_0 | B x_0 = b] = mu + Sigma B^T (B Sigma B^T)^-1 (b - B mu), for B acting on
        flattened images; returned as an image."""
        B = np.asarray(B, dtype=np.float64)
        Sigma = self.covariance()
        mu = self.mu.ravel()
        gain = Sigma @ B.T @ np.linalg.inv(B @ Sigma @ B.T)
        return (mu + gain @ (np.asarray(b, dtype=np.float64) - B @ mu)).reshape(self.shape)


def squared_exponential(H: int, W: int, length: float, nugget: float = 1e-3) -> Array:
    """C_space[i, j] = exp(-|p_i - p_j|^2 / (2 length^2)) + nugget [i = j], pixels row by row."""
    rows, cols = np.divmod(np.arange(H * W), W)
    d2 = (rows[:, None] - rows[None, :]) ** 2 + (cols[:, None] - cols[None, :]) ** 2
    return np.exp(-d2 / (2.0 * length**2)) + nugget * np.eye(H * W)


def kept_coordinates(edit: LinearEdit, shape: tuple[int, ...]) -> Array:
    """The rows of A (as a matrix on flattened images) that the edit keeps from the reference
    image: B with B y = the coordinates of A y where Omega = 0. Built by applying A to the
    standard basis, so it holds for any linear A."""
    n = int(np.prod(shape))
    basis = np.eye(n).reshape(n, *shape)
    A = edit.A(basis).reshape(n, -1).T  # column i is A e_i
    kept = np.broadcast_to(1.0 - edit.Omega, edit.A(np.zeros(shape)).shape).ravel() == 1.0
    return A[kept]
