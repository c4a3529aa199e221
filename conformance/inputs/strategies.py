"""Hypothesis strategies for consistency-model scheduler configs, and the project's profiles.

The domain the strategies draw from is the one over which the reference's error bounds
are claimed (README, "Reference"); every draw is a valid configuration, so a failure is a
finding, never a bad draw.

    register_profiles()           register the "ci" and "thorough" settings profiles
    DEFAULT_CONFIG                diffusers' constructor defaults
    sigma_ranges()                (sigma_min, sigma_max) pairs, log-uniform
    scheduler_configs()           constructor keyword arguments (DEFAULT_CONFIG's keys)
    custom_timesteps(N)           `set_timesteps(timesteps=...)` lists: strictly descending in [0, N-1]
    inference_steps(N)            `set_timesteps(num_inference_steps=...)` values in [1, N]
    sample_shapes()               shapes of sample tensors (batch first)
    pinned(case=[...])            a clause test's pinned examples, in one decorator

Load a profile with `pytest --hypothesis-profile=thorough` or `HYPOTHESIS_PROFILE=thorough`
(the project's tests load "ci" unless told otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

T = TypeVar("T")

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_TRAIN_TIMESTEPS",
    "custom_timesteps",
    "inference_steps",
    "pinned",
    "register_profiles",
    "sample_shapes",
    "scheduler_configs",
    "sigma_ranges",
]

DEFAULT_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 40,
    "sigma_min": 0.002,
    "sigma_max": 80.0,
    "sigma_data": 0.5,
    "s_noise": 1.0,
    "rho": 7.0,
    "clip_denoised": True,
}

#: N drawn up to this (the published models use 40 to 201 training steps).
MAX_TRAIN_TIMESTEPS = 1000


def register_profiles() -> None:
    """Register the settings profiles (idempotent; loading one is left to the caller).

    - "ci": derandomized (the same examples on every run, no example database), 25 examples
      per test, no deadline (the mpmath oracle is slow per element, and timing is not what
      these tests measure).
    - "thorough": 1000 random examples per test, no deadline; for a release or after a change
      to a formula.
    """
    _without_local_constants()
    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
    settings.register_profile(
        "ci", max_examples=25, derandomize=True, database=None, print_blob=True, **common
    )
    settings.register_profile("thorough", max_examples=1000, **common)


def pinned(**values: list[Any]) -> Callable[[T], T]:
    """Hypothesis's `@example`, once per pinned input, in one decorator: each keyword is an
    argument of the test and gives its value in every example, in order
    (`@pinned(case=[a, b])` is `@example(case=a)` then `@example(case=b)`)."""
    counts = {name: len(given) for name, given in values.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"pinned: each argument needs one value per example, got {counts}")
    rows = [dict(zip(values, row, strict=True)) for row in zip(*values.values(), strict=True)]

    def apply(test: T) -> T:
        for row in reversed(rows):  # the last decorator applied first: the order as written
            test = example(**row)(test)
        return test

    return apply


def _without_local_constants() -> None:
    """Draw without the literals of the caller's own modules.

    Hypothesis's default provider picks, now and then, a literal found in any loaded module
    outside site-packages (`hypothesis.internal.conjecture.providers._get_local_constants`,
    6.170), and drawing one consumes the random stream: the examples of a derandomized run,
    and so a verdict, then change with whatever code the user has imported (a module holding
    only `(0.75, 3, 12.5)` next to an adapter turned a pass into a warning). Hypothesis offers
    no setting for this, so the suite replaces that lookup with an empty pool; Hypothesis's own
    constants (0, +-inf, NaN, ...) are still drawn. A version without the lookup is left as is.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - Hypothesis reorganised its internals
        return
    if callable(getattr(providers, "_get_local_constants", None)) and hasattr(
        providers, "Constants"
    ):
        none = providers.Constants()
        providers._get_local_constants = lambda: none


def _log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats with log10 uniform in [log10 lo, log10 hi]."""
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: float(10.0**e))


def sigma_ranges(
    min_sigma: float = 1e-4, max_sigma: float = 1e4, min_ratio: float = 1.5
) -> st.SearchStrategy[tuple[float, float]]:
    """(sigma_min, sigma_max) with min_sigma <= sigma_min, sigma_max <= max_sigma and
    sigma_max / sigma_min >= min_ratio; the default pair (0.002, 80) is drawn often."""

    @st.composite
    def pairs(draw: st.DrawFn) -> tuple[float, float]:
        lo = draw(_log_uniform(min_sigma, max_sigma / min_ratio))
        hi = draw(_log_uniform(lo * min_ratio, max_sigma))
        return lo, hi

    return st.one_of(st.just((0.002, 80.0)), pairs())


def scheduler_configs(
    max_train_timesteps: int = MAX_TRAIN_TIMESTEPS,
    rho: st.SearchStrategy[float] | None = None,
    clip_denoised: st.SearchStrategy[bool] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Constructor keyword arguments of `CMStochasticIterativeScheduler`.

    N in [2, max_train_timesteps], sigma ranges from `sigma_ranges()`, rho in [1, 10]
    (7 often), sigma_data log-uniform in [0.05, 2] (0.5 often), s_noise in [0, 2] (1 often),
    clip_denoised either (override `rho` or `clip_denoised` with a strategy of your own).
    """

    @st.composite
    def configs(draw: st.DrawFn) -> dict[str, Any]:
        sigma_min, sigma_max = draw(sigma_ranges())
        return {
            "num_train_timesteps": draw(st.integers(2, max_train_timesteps)),
            "sigma_min": sigma_min,
            "sigma_max": sigma_max,
            "sigma_data": draw(st.one_of(st.just(0.5), _log_uniform(0.05, 2.0))),
            "s_noise": draw(st.one_of(st.just(1.0), st.floats(0.0, 2.0))),
            "rho": draw(rho if rho is not None else st.one_of(st.just(7.0), st.floats(1.0, 10.0))),
            "clip_denoised": draw(clip_denoised if clip_denoised is not None else st.booleans()),
        }

    return configs()


def custom_timesteps(num_train_timesteps: int, max_size: int = 12) -> st.SearchStrategy[list[int]]:
    """Strictly descending index lists in [0, N - 1] of 1 to `max_size` entries, as
    `set_timesteps(timesteps=...)` takes them; 0 (sigma_max) is included half of the time."""
    N = num_train_timesteps
    indices = st.lists(st.integers(0, N - 1), min_size=1, max_size=min(max_size, N), unique=True)
    with_zero = st.lists(st.integers(1, N - 1), max_size=min(max_size, N) - 1, unique=True).map(
        lambda xs: [*xs, 0]
    )
    return st.one_of(indices, with_zero).map(lambda xs: sorted(xs, reverse=True))


def inference_steps(num_train_timesteps: int) -> st.SearchStrategy[int]:
    """`num_inference_steps` in [1, N]."""
    return st.integers(1, num_train_timesteps)


def sample_shapes(max_dims: int = 4, max_side: int = 5) -> st.SearchStrategy[tuple[int, ...]]:
    """Sample shapes, batch first: 1 to `max_dims` axes of 1 to `max_side` elements."""
    return array_shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=max_side)
