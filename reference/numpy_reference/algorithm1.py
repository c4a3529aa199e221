"""Algorithm 1 of "Consistency Models" (multistep consistency sampling) as a function.

    Input: consistency model f, time points tau_1 > ... > tau_{N-1}, initial noise x_T
    x <- f(x_T, T)                                      line 2
    for n = 1 to N - 1:
        z ~ N(0, I)                                     line 4
        x_tau_n <- x + sqrt(tau_n^2 - eps^2) z          line 5
        x <- f(x_tau_n, tau_n)                          line 6
    Output: x

OpenAI's `stochastic_iterative_sampler` (cm/karras_diffusion.py, commit
e32b69ee) and diffusers' scheduler run the same loop with one more re-noising
after the last evaluation, to the end point of the time list (scale 0 when that
point is eps). `sample` follows them: `sigmas` holds the evaluation points and
then the end point, and `noises[k]` is the draw added after evaluation k. An end
point above eps (OpenAI's `ts` not ending at `steps - 1`) is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference.numpy_reference import formulas, validation

ConsistencyFn = Callable[[NDArray[np.float64], float], NDArray[np.float64]]


def openai_time_points(
    ts: Sequence[int], steps: int, sigma_min: float, sigma_max: float, rho: float
) -> NDArray[np.float64]:
    """OpenAI's convention: ascending indices `ts` into a `steps`-point Karras grid (index 0
    is sigma_max), each t_i = sigma(ts_i / (steps - 1)). The diffusers scheduler expresses
    `ts = [0, 22, 39]`, `steps = 40` as `num_train_timesteps=40, timesteps=[22, 0]`."""
    return formulas.karras_sigma_at(np.asarray(ts), steps, sigma_min, sigma_max, rho)


def consistency_model(
    network: Callable[[NDArray[np.float64], NDArray[np.float64]], ArrayLike],
    sigma_min: float,
    sigma_data: float,
    clip_denoised: bool = True,
) -> ConsistencyFn:
    """f(x, sigma) = clamp(c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, t(sigma)))  (CM eq. 5,
    Appendix C), from a raw network F(u, t) taking the scaled input and the model time."""

    def f(x: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
        c_skip, c_out = formulas.boundary_scalings(sigma, sigma_min, sigma_data)
        u = formulas.c_in(sigma, sigma_data) * x
        F = np.asarray(network(u, formulas.sigma_to_t(sigma)), dtype=np.float64)
        if F.shape != u.shape:
            raise ValueError(
                f"the network's output must have the input's shape {u.shape}, got {F.shape}"
            )
        return formulas.clamp(formulas.consistency_function(F, x, c_skip, c_out), clip_denoised)

    return f


def sample(
    f: ConsistencyFn,
    sigmas: ArrayLike,
    x_T: ArrayLike,
    noises: Sequence[ArrayLike],
    eps: float,
    s_noise: float = 1.0,
) -> NDArray[np.float64]:
    """Run Algorithm 1: evaluate f at sigmas[0], ..., sigmas[K-1] and re-noise after each
    evaluation k to sigmas[k+1] with `noises[k]`; return the last iterate (not clamped).

    `sigmas` is strictly decreasing with K + 1 entries (evaluation points, then the end
    point, which may repeat a last evaluation point at eps); `x_T` is the initial sample,
    already scaled by sigmas[0] (line 1).
    """
    eps = validation.check_float("eps", eps)
    s_noise = validation.check_float("s_noise", s_noise, positive=False)
    sigmas = validation.check_time_points(sigmas, eps)
    K = len(sigmas) - 1
    x = np.asarray(x_T, dtype=np.float64)
    validation.check_noises(noises, K, "x_T", x.shape)
    for k in range(K):
        x0 = f(x, sigmas[k])  # lines 2 and 6
        x = formulas.renoise(x0, noises[k], s_noise, sigmas[k + 1], eps)  # line 5
    return x
