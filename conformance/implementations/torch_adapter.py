"""Adapter for schedulers with diffusers' API on torch tensors: the project's torch
implementation, and any user class given as `--impl=package.module:Class`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from conformance.adapter import ArrayInfo, Capabilities, SchedulerAdapter, step_accepts_noise


class TorchSchedulerAdapter(SchedulerAdapter):
    """A scheduler class with diffusers' API on `torch.Tensor`s; `generator` is a
    `torch.Generator` on the sample's device."""

    def asarray(self, values: np.ndarray, dtype: str, device: str) -> torch.Tensor:
        array = torch.as_tensor(np.asarray(values, dtype=np.float64))
        return array.to(device=device, dtype=getattr(torch, dtype))

    def describe(self, array: Any) -> ArrayInfo | None:
        if not isinstance(array, torch.Tensor):
            return None
        dtype = str(array.dtype).removeprefix("torch.")
        return ArrayInfo("torch.Tensor", tuple(array.shape), dtype, str(array.device))

    def to_numpy(self, array: Any) -> np.ndarray:
        return array.detach().to("cpu", torch.float64).numpy().copy()

    def copy(self, array: Any) -> Any:
        return array.detach().clone()

    def same_values(self, a: Any, b: Any) -> bool:
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))

    def device_available(self, device: str) -> tuple[bool, str]:
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

    def generator(self, seed: int, device: str) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(seed)

    def generator_state(self, generator: Any) -> Any:
        return generator.get_state().clone()

    def draw_noise(
        self, generator: Any, shape: tuple[int, ...], dtype: str, device: str
    ) -> torch.Tensor:
        # diffusers' `randn_tensor` with the generator(s) on the sample's device: a list
        # draws shape (1, ...) from each generator, concatenated along the batch axis.
        torch_dtype = getattr(torch, dtype)
        if isinstance(generator, (list, tuple)):
            one = (1, *shape[1:])
            parts = [
                torch.randn(one, generator=g, dtype=torch_dtype, device=device) for g in generator
            ]
            return torch.cat(parts, dim=0)
        return torch.randn(shape, generator=generator, dtype=torch_dtype, device=device)


def class_adapter(scheduler_class: type, name: str) -> TorchSchedulerAdapter:
    """The adapter of a plain scheduler class with diffusers' API on torch tensors.

    Nothing is declared, so little is claimed: CPU and CUDA, float64 and float32, injected
    noise if `step` has a `noise` parameter, no known noise convention (only the
    statistical layer checks its draws). Declare more with an `Adapter` (README)."""
    return TorchSchedulerAdapter(
        scheduler_class,
        name=name,
        version=distribution_version(scheduler_class),
        capabilities=Capabilities(
            devices=("cpu", "cuda"),
            dtypes=("float64", "float32"),
            injected_noise=step_accepts_noise(scheduler_class),
            noise_convention=None,
            stateful=True,
        ),
    )


def torch_reference_adapter() -> TorchSchedulerAdapter:
    """`--impl=torch`: `reference.torch_scheduler.CMStochasticIterativeScheduler`."""
    import reference
    from reference.torch_scheduler import CMStochasticIterativeScheduler

    return TorchSchedulerAdapter(
        CMStochasticIterativeScheduler,
        name="torch",
        version=f"{reference.__version__} (torch {torch.__version__})",
        capabilities=Capabilities(
            devices=("cpu", "cuda"),
            dtypes=("float64", "float32", "float16", "bfloat16"),
            injected_noise=True,
            noise_convention="torch.randn",
            stateful=True,
        ),
        description="reference.torch_scheduler.CMStochasticIterativeScheduler",
    )


def distribution_version(obj: Any) -> str:
    """The version of the installed distribution that provides `obj`'s top-level package,
    else its module's `__version__`, else "unknown"."""
    import importlib.metadata
    import sys

    top = obj.__module__.split(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    module = sys.modules.get(top)
    return str(getattr(module, "__version__", "unknown"))
