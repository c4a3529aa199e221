"""Array bridges: how the suite moves its float64 numpy test data into an implementation's
arrays and back, and how it draws standard-normal noise the way that framework does.

A bridge is a public building block: the built-in scheduler adapters use one, and so does a
functional-sampler adapter (`conformance.functional`). Nothing in the interface assumes
torch; a bridge for another framework (JAX, CuPy) implements the abstract methods of
`ArrayBridge` and, if it has seeded generators, the three noise methods.

    NumpyBridge()   numpy arrays on the CPU; generator: numpy.random.Generator,
                    noise convention "numpy.standard_normal"
    TorchBridge()   torch tensors on any device; generator: torch.Generator, noise
                    convention "torch.randn" (diffusers' `randn_tensor`, lists included)
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ArrayInfo:
    """What an implementation returned: its type, shape, dtype and device, as text."""

    type: str
    shape: tuple[int, ...]
    dtype: str
    device: str


class ArrayBridge(ABC):
    """The array operations the suite needs from one framework."""

    #: The noise convention of `draw_noise` (see `conformance.adapter.Capabilities`).
    noise_convention: str | None = None

    @abstractmethod
    def asarray(self, values: np.ndarray, dtype: str, device: str) -> Any:
        """The framework's array holding `values` (float64 numpy) rounded to `dtype`."""

    @abstractmethod
    def describe(self, array: Any) -> ArrayInfo | None:
        """Type, shape, dtype and device of an array of this framework; None if `array` is
        not one."""

    @abstractmethod
    def to_numpy(self, array: Any) -> np.ndarray:
        """A float64 numpy copy (exact: every dtype the suite uses converts to float64
        without rounding)."""

    @abstractmethod
    def copy(self, array: Any) -> Any:
        """An independent copy (to detect an implementation that writes into its inputs)."""

    def same_values(self, a: Any, b: Any) -> bool:
        """Bitwise equality (NaN equal to NaN)."""
        x, y = self.to_numpy(a), self.to_numpy(b)
        return x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=True))

    def device_available(self, device: str) -> tuple[bool, str]:
        """Whether `device` exists on this machine, and if not, why."""
        return (device == "cpu", "" if device == "cpu" else f"device {device!r} not available")

    # -- noise (optional) --------------------------------------------------------------------

    def generator(self, seed: int, device: str) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no seeded generator")

    def generator_state(self, generator: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no seeded generator")

    def draw_noise(self, generator: Any, shape: tuple[int, ...], dtype: str, device: str) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no noise convention")


class NumpyBridge(ArrayBridge):
    """numpy arrays (CPU only); generators are `numpy.random.Generator`s."""

    noise_convention = "numpy.standard_normal"

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


class TorchBridge(ArrayBridge):
    """`torch.Tensor`s on any device; generators are `torch.Generator`s on the sample's
    device (torch is imported when the bridge is made)."""

    noise_convention = "torch.randn"

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def asarray(self, values: np.ndarray, dtype: str, device: str) -> Any:
        array = self.torch.as_tensor(np.asarray(values, dtype=np.float64))
        return array.to(device=device, dtype=getattr(self.torch, dtype))

    def describe(self, array: Any) -> ArrayInfo | None:
        if not isinstance(array, self.torch.Tensor):
            return None
        dtype = str(array.dtype).removeprefix("torch.")
        return ArrayInfo("torch.Tensor", tuple(array.shape), dtype, str(array.device))

    def to_numpy(self, array: Any) -> np.ndarray:
        return array.detach().to("cpu", self.torch.float64).numpy().copy()

    def copy(self, array: Any) -> Any:
        return array.detach().clone()

    def same_values(self, a: Any, b: Any) -> bool:
        return a.shape == b.shape and a.dtype == b.dtype and bool(self.torch.equal(a, b))

    def device_available(self, device: str) -> tuple[bool, str]:
        torch = self.torch
        kind, _, index = device.partition(":")
        if kind == "cpu":
            return True, ""
        if kind == "cuda":
            if not torch.cuda.is_available():
                return False, "no CUDA device on this machine (torch.cuda.is_available() is False)"
            if index and int(index) >= torch.cuda.device_count():
                return False, f"{device} requested, {torch.cuda.device_count()} CUDA device(s)"
            return True, ""
        if kind == "mps":
            ok = torch.backends.mps.is_available()
            return ok, "" if ok else "no MPS device on this machine"
        return False, f"unknown device kind {kind!r}"

    def generator(self, seed: int, device: str) -> Any:
        return self.torch.Generator(device=device).manual_seed(seed)

    def generator_state(self, generator: Any) -> Any:
        return generator.get_state().clone()

    def draw_noise(self, generator: Any, shape: tuple[int, ...], dtype: str, device: str) -> Any:
        # diffusers' `randn_tensor` with the generator(s) on the sample's device: a list
        # draws shape (1, ...) from each generator, concatenated along the batch axis.
        torch = self.torch
        torch_dtype = getattr(torch, dtype)
        if isinstance(generator, (list, tuple)):
            one = (1, *shape[1:])
            parts = [
                torch.randn(one, generator=g, dtype=torch_dtype, device=device) for g in generator
            ]
            return torch.cat(parts, dim=0)
        return torch.randn(shape, generator=generator, dtype=torch_dtype, device=device)
