"""The expected values: the mpmath oracle (`conformance.truth.oracle`, 60 digits), rounded once to
float64. Nothing here comes from an implementation under test, the numpy reference
included.

Sigmas are taken at the exact ramp i / (N - 1) of the index list that `set_timesteps`
uses; the per-step scalars are computed once per call in mpmath, then applied to each
element (inputs are exact: every sample dtype converts to float64 without rounding).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conformance.protocol.values import TimestepSpec
from conformance.truth import oracle

Array = NDArray[np.float64]


@dataclass(frozen=True)
class ExactSchedule:
    """What `set_timesteps(spec)` must produce: the ramps of the evaluation points (ascending,
    index 0 is sigma_max), their sigmas and model times, and sigma_min appended."""

    indices: tuple[int, ...]  # ramp numerators i, ascending: sigma_k = sigma(i_k / (N - 1))
    N: int
    sigmas: Array  # n + 1 values, the last sigma_min
    timesteps: Array  # n model times

    @property
    def ramps(self) -> Array:
        return np.asarray(self.indices, dtype=np.float64) / (self.N - 1)

    def __len__(self) -> int:
        return len(self.indices)


def sigma(config: Mapping[str, Any], i: int, N: int) -> float:
    """sigma(i / (N - 1)) (EDM eq. 5) to float64."""
    return oracle.to_float64(
        oracle.karras_sigma(
            i, N, float(config["sigma_min"]), float(config["sigma_max"]), float(config["rho"])
        )
    )


def schedule(config: Mapping[str, Any], spec: TimestepSpec) -> ExactSchedule:
    N = int(config["num_train_timesteps"])
    indices = tuple(sorted(spec.indices(N)))  # the reversed (descending) list
    exact = [
        oracle.karras_sigma(
            i, N, float(config["sigma_min"]), float(config["sigma_max"]), float(config["rho"])
        )
        for i in indices
    ]
    sigmas = np.array([oracle.to_float64(s) for s in exact] + [float(config["sigma_min"])])
    # t of the float64-rounded sigma: 250 (u / 2) off at most, inside every bound of TIME-1.
    times = model_times(sigmas[:-1])
    return ExactSchedule(indices, N, sigmas, times)


def model_times(sigmas: Array) -> Array:
    """250 ln(sigma + 1e-44) of float64 sigmas."""
    return np.array([oracle.to_float64(oracle.sigma_to_t(float(s))) for s in np.ravel(sigmas)])


def c_in(config: Mapping[str, Any], sigma_value: float) -> oracle.mpmath.mpf:
    return oracle.c_in(sigma_value, float(config["sigma_data"]))


def scale_model_input(config: Mapping[str, Any], sigma_value: float, x: Array) -> Array:
    """x / sqrt(sigma^2 + sigma_data^2), elementwise."""
    c = c_in(config, sigma_value)
    return _map(lambda v: c * v, x)


def boundary_scalings(config: Mapping[str, Any], sigmas: Array) -> tuple[Array, Array]:
    pairs = [
        oracle.boundary_scalings(float(s), float(config["sigma_min"]), float(config["sigma_data"]))
        for s in np.ravel(sigmas)
    ]
    shape = np.shape(sigmas)
    return (
        np.array([oracle.to_float64(p[0]) for p in pairs]).reshape(shape),
        np.array([oracle.to_float64(p[1]) for p in pairs]).reshape(shape),
    )


def edm_scalings(config: Mapping[str, Any], sigmas: Array) -> tuple[Array, Array]:
    pairs = [oracle.edm_scalings(float(s), float(config["sigma_data"])) for s in np.ravel(sigmas)]
    shape = np.shape(sigmas)
    return (
        np.array([oracle.to_float64(p[0]) for p in pairs]).reshape(shape),
        np.array([oracle.to_float64(p[1]) for p in pairs]).reshape(shape),
    )


def tau(config: Mapping[str, Any], sigma_next: float | None) -> float:
    """The next sigma clamped to [sigma_min, sigma_max] (`oracle.tau`; exact in float64, a
    clamp rounds nothing), sigma_min after the last evaluation (None)."""
    eps = float(config["sigma_min"])
    return eps if sigma_next is None else float(oracle.tau(sigma_next, eps, config["sigma_max"]))


def step(
    config: Mapping[str, Any],
    sigma_value: float,
    sigma_next: float | None,
    F: Array,
    x: Array,
    z: Array | None,
) -> Array:
    """`oracle.step` elementwise, each element rounded once: clamp(c_skip x + c_out F) +
    s_noise z sqrt(tau^2 - eps^2) (sigma_next None: after the last evaluation, tau = sigma_min
    and the noise term is exactly 0; z None: no draw)."""
    element = oracle.step_at(
        sigma_value,
        tau(config, sigma_next),
        sigma_min=float(config["sigma_min"]),
        sigma_max=float(config["sigma_max"]),
        sigma_data=float(config["sigma_data"]),
        s_noise=float(config["s_noise"]),
        clip_denoised=bool(config["clip_denoised"]),
    )
    z = np.zeros_like(x) if z is None else z
    F, x, z = np.broadcast_arrays(F, x, z)
    out = np.empty(x.shape)
    for index in np.ndindex(x.shape):
        out[index] = oracle.to_float64(element(float(F[index]), float(x[index]), float(z[index])))
    return out


def noise_scale(config: Mapping[str, Any], sigma_next: float | None) -> float:
    """s_noise sqrt(tau^2 - eps^2) to float64 (0 after the last evaluation)."""
    return oracle.to_float64(
        oracle.mpf(float(config["s_noise"]))
        * oracle.noise_scale(tau(config, sigma_next), float(config["sigma_min"]))
    )


def add_noise(x0: Array, z: Array, sigma_per_batch: Array) -> Array:
    """x0 + z sigma, sigma one per batch element (the first axis)."""
    sig = np.asarray(sigma_per_batch, dtype=np.float64).reshape((-1,) + (1,) * (x0.ndim - 1))
    x0, z, sig = np.broadcast_arrays(x0, z, sig)
    out = np.empty(x0.shape)
    for index in np.ndindex(x0.shape):
        out[index] = oracle.to_float64(
            oracle.mpf(float(x0[index]))
            + oracle.mpf(float(z[index])) * oracle.mpf(float(sig[index]))
        )
    return out


def _map(fn: Any, x: Array) -> Array:
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape)
    for index in np.ndindex(x.shape):
        out[index] = oracle.to_float64(fn(oracle.mpf(float(x[index]))))
    return out
