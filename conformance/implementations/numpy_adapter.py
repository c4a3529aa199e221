"""Adapter for schedulers that work on numpy arrays: the float64 numpy reference."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from conformance.adapter import ArrayInfo, Capabilities, SchedulerAdapter


class NumpySchedulerAdapter(SchedulerAdapter):
    """A scheduler class with diffusers' API on numpy arrays (CPU only); `generator` is a
    `numpy.random.Generator`."""

    def asarray(self, values: np.ndarray, dtype: str, device: str) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).astype(dtype)

    def describe(self, array: Any) -> ArrayInfo | None:
        if not isinstance(array, np.ndarray):
            return None
        return ArrayInfo("numpy.ndarray", tuple(array.shape), str(array.dtype), "cpu")

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.array(array, dtype=np.float64)

    def copy(self, array: Any) -> Any:
        return np.array(array, copy=True)

    def generator(self, seed: int, device: str) -> np.random.Generator:
        return np.random.default_rng(seed)

    def generator_state(self, generator: Any) -> Any:
        return copy.deepcopy(generator.bit_generator.state)

    def draw_noise(
        self, generator: Any, shape: tuple[int, ...], dtype: str, device: str
    ) -> np.ndarray:
        return generator.standard_normal(shape).astype(dtype)


def reference_adapter() -> NumpySchedulerAdapter:
    """`--impl=reference`: `reference.numpy_scheduler.CMStochasticIterativeScheduler`."""
    import reference
    from reference.numpy_scheduler import CMStochasticIterativeScheduler

    return NumpySchedulerAdapter(
        CMStochasticIterativeScheduler,
        name="reference",
        version=reference.__version__,
        capabilities=Capabilities(
            devices=("cpu",),
            dtypes=("float64",),
            injected_noise=True,
            noise_convention="numpy.standard_normal",
            stateful=True,
        ),
        description="reference.numpy_scheduler.CMStochasticIterativeScheduler (float64 numpy)",
    )
