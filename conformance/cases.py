"""Hypothesis strategies for the suite's test cases, built on `conformance.strategies`.

A *case* is a scheduler config, a `set_timesteps` argument, a position in the schedule, a
sample shape and a seed for the suite's own test data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from conformance.adapter import TimestepSpec
from conformance.strategies import (
    DEFAULT_CONFIG,
    custom_timesteps,
    inference_steps,
    sample_shapes,
    scheduler_configs,
)

#: Samples stay small: the oracle evaluates each element in mpmath.
SHAPES = sample_shapes(max_dims=3, max_side=4)


@dataclass(frozen=True)
class Case:
    config: dict[str, Any]
    spec: TimestepSpec
    k: int  # the position checked
    shape: tuple[int, ...]
    seed: int

    @property
    def n(self) -> int:
        return len(self.spec.indices(self.config["num_train_timesteps"]))


def specs(num_train_timesteps: int) -> st.SearchStrategy[TimestepSpec]:
    """Either convention of `set_timesteps`."""
    return st.one_of(
        inference_steps(num_train_timesteps).map(lambda n: TimestepSpec(num_inference_steps=n)),
        custom_timesteps(num_train_timesteps).map(lambda ts: TimestepSpec(timesteps=tuple(ts))),
    )


@st.composite
def cases(
    draw: st.DrawFn,
    *,
    configs: st.SearchStrategy[dict[str, Any]] | None = None,
    position: str = "any",
    min_steps: int = 1,
) -> Case:
    """A case whose position k is "any", "inner" (not the last, or the only one) or "last"."""
    config = draw(configs if configs is not None else scheduler_configs())
    N = config["num_train_timesteps"]
    spec = draw(specs(N).filter(lambda s: len(s.indices(N)) >= min_steps))
    n = len(spec.indices(N))
    if position == "last":
        k = n - 1
    elif position == "inner":
        k = draw(st.integers(0, max(n - 2, 0)))
    else:
        k = draw(st.integers(0, n - 1))
    return Case(config, spec, k, draw(SHAPES), draw(st.integers(0, 2**31 - 1)))


def default_case(
    timesteps: tuple[int, ...] = (22, 0),
    k: int = 0,
    shape: tuple[int, ...] = (2, 3, 4),
    **config: Any,
) -> Case:
    """A pinned case on the default config (for `@example`)."""
    return Case({**DEFAULT_CONFIG, **config}, TimestepSpec(timesteps=timesteps), k, shape, 12345)
