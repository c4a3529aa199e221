"""Hypothesis strategies for the suite's test cases, built on `conformance.inputs.strategies`.

A *case* is a scheduler config, a `set_timesteps` argument, a position in the schedule, a
sample shape and a seed for the suite's own test data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from conformance.inputs.strategies import (
    DEFAULT_CONFIG,
    custom_timesteps,
    inference_steps,
    sample_shapes,
    scheduler_configs,
)
from conformance.protocol.values import TimestepSpec

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


#: At most this many timesteps in a case that runs the loop: every position costs a step, and
#: custom indices reach every sigma of the grid anyway (SCHED-1 checks long schedules).
MAX_STEPS = 8


def specs(num_train_timesteps: int, max_steps: int = MAX_STEPS) -> st.SearchStrategy[TimestepSpec]:
    """Either convention of `set_timesteps`, with at most `max_steps` timesteps."""
    N = num_train_timesteps
    return st.one_of(
        inference_steps(min(N, max_steps)).map(lambda n: TimestepSpec(num_inference_steps=n)),
        custom_timesteps(N, max_size=max_steps).map(lambda ts: TimestepSpec(timesteps=tuple(ts))),
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
