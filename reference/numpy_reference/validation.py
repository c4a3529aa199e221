"""Argument checks shared by the numpy and torch schedulers, and by the functional
Algorithms 1 and 4 (`algorithm1.sample`, `editing.zero_shot_edit`).

Each check raises `TypeError` (wrong kind of value) or `ValueError` (right kind,
outside what is allowed) with a message that names the argument, the value and
what is allowed. They run on the host, once per call to `__init__` or
`set_timesteps`, never inside `step`'s arithmetic.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: sigma_min, sigma_max and sigma_data must lie in this range: their squares stay normal.
SIGMA_RANGE = (1e-150, 1e150)
#: |ln sigma| / rho must stay below this: sigma^(1/rho) stays a normal float64 (e^700 ~ 1e304).
_MAX_LN_ROOT = 700.0


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """An integer (not a bool, not a float) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an integer, got {value!r} of type {type(value).__name__}"
        )
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"`{name}` must be {allowed}, got {value}")
    return value


def check_float(name: str, value: object, *, positive: bool = True) -> float:
    """A finite real number, > 0 when `positive`, else >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a real number, got {value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value) or (value <= 0 if positive else value < 0):
        allowed = "a finite number > 0" if positive else "a finite number >= 0"
        raise ValueError(f"`{name}` must be {allowed}, got {value!r}")
    return value


def check_config(
    num_train_timesteps: object,
    sigma_min: object,
    sigma_max: object,
    sigma_data: object,
    s_noise: object,
    rho: object,
    clip_denoised: object,
) -> None:
    """The scheduler's constructor arguments (conformance/SPEC.md, CFG-2)."""
    # N >= 2: the ramp divides by N - 1.
    check_int("num_train_timesteps", num_train_timesteps, 2)
    lo = check_float("sigma_min", sigma_min)
    hi = check_float("sigma_max", sigma_max)
    if not lo < hi:
        raise ValueError(
            f"`sigma_min` must be < `sigma_max`, got sigma_min={lo!r}, sigma_max={hi!r}"
        )
    sd = check_float("sigma_data", sigma_data)
    check_float("s_noise", s_noise, positive=False)
    rho = check_float("rho", rho)
    # The formulas square sigma and sigma_data: keep the squares normal float64 numbers.
    for name, value in (("sigma_min", lo), ("sigma_max", hi), ("sigma_data", sd)):
        if not SIGMA_RANGE[0] <= value <= SIGMA_RANGE[1]:
            raise ValueError(
                f"`{name}` must be in [{SIGMA_RANGE[0]:g}, {SIGMA_RANGE[1]:g}] (its square must be "
                f"a normal float64), got {value!r}"
            )
    # The schedule interpolates sigma^(1/rho): it must neither overflow nor underflow.
    ln_sigma = max(abs(math.log(lo)), abs(math.log(hi)))
    if ln_sigma / rho > _MAX_LN_ROOT:
        raise ValueError(
            f"`rho` must be >= {ln_sigma / _MAX_LN_ROOT:.3g} for sigma_min={lo!r}, "
            f"sigma_max={hi!r} (sigma^(1/rho) must stay within float64), got {rho!r}"
        )
    if not isinstance(clip_denoised, (bool, np.bool_)):
        raise TypeError(f"`clip_denoised` must be a bool, got {clip_denoised!r}")


def check_set_timesteps_args(num_inference_steps: object, timesteps: object) -> None:
    """Exactly one of the two conventions."""
    if (num_inference_steps is None) == (timesteps is None):
        raise ValueError(
            "exactly one of `num_inference_steps` and `timesteps` must be given, got "
            f"num_inference_steps={num_inference_steps!r}, timesteps={timesteps!r}"
        )


def check_num_inference_steps(num_inference_steps: object, num_train_timesteps: int) -> int:
    """1 <= n <= N: `arange(n) * (N // n)` needs N // n >= 1."""
    return check_int("num_inference_steps", num_inference_steps, 1, num_train_timesteps)


def check_custom_timesteps(timesteps: object, num_train_timesteps: int) -> list[int]:
    """Strictly descending integer indices in [0, N - 1]; returns them as Python ints.

    Accepts a sequence or a 1-D array or tensor of integers (anything with `tolist`).
    Fractional values are refused rather than truncated.
    """
    values = timesteps.tolist() if hasattr(timesteps, "tolist") else timesteps
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(
            f"`timesteps` must be a sequence of integers, got {timesteps!r} "
            f"of type {type(timesteps).__name__}"
        )
    if len(values) == 0:
        raise ValueError("`timesteps` must hold at least one index, got an empty sequence")
    out = []
    for i, t in enumerate(values):
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise TypeError(
                f"`timesteps[{i}]` must be an integer index in [0, {num_train_timesteps - 1}], "
                f"got {t!r} of type {type(t).__name__}"
            )
        if not 0 <= t < num_train_timesteps:
            raise ValueError(
                f"`timesteps[{i}]` must be in [0, {num_train_timesteps - 1}] "
                f"(num_train_timesteps={num_train_timesteps}), got {t}"
            )
        if i > 0 and t >= out[-1]:
            raise ValueError(
                f"`timesteps` must be strictly descending, got timesteps[{i - 1}]={out[-1]} "
                f"followed by timesteps[{i}]={t}"
            )
        out.append(int(t))
    return out


def check_shape(name: str, shape: tuple[int, ...], like: str, expected: tuple[int, ...]) -> None:
    """`name`'s shape is `like`'s (no broadcast)."""
    if shape != expected:
        raise ValueError(f"`{name}` must have the shape of `{like}` {expected}, got {shape}")


def check_time_points(sigmas: ArrayLike, eps: float) -> NDArray[np.float64]:
    """The time points of a sampling loop as float64: K >= 1 evaluation points, strictly
    decreasing, then the end point the last evaluation re-noises to, all >= eps. The end point
    may equal the last evaluation point only at eps (a scheduler whose last evaluation is at
    sigma_min itself, re-noised with scale sqrt(eps^2 - eps^2) = 0)."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError(
            "`sigmas` must be 1-D with the evaluation points and an end point, "
            f"got shape {sigmas.shape}"
        )
    end_ok = eps <= sigmas[-1] and (sigmas[-1] < sigmas[-2] or sigmas[-1] == eps)
    if not (np.all(np.diff(sigmas[:-1]) < 0) and end_ok):
        raise ValueError(
            f"`sigmas` must be strictly decreasing and >= eps={eps}, got {sigmas.tolist()}"
        )
    return sigmas


def check_noises(noises: Sequence[ArrayLike], K: int, like: str, shape: tuple[int, ...]) -> None:
    """One standard-normal draw per evaluation (K), each of the sample's shape."""
    if len(noises) != K:
        raise ValueError(f"`noises` must hold one draw per evaluation ({K}), got {len(noises)}")
    for k, z in enumerate(noises):
        check_shape(f"noises[{k}]", np.shape(z), like, shape)
