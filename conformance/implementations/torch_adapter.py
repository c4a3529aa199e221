"""Adapter for schedulers with diffusers' API on torch tensors: the project's torch
implementation, and any user class given as `--impl=package.module:Class`."""

from __future__ import annotations

from typing import Any

import torch

from conformance.implementations.scheduler import SchedulerAdapter, step_accepts_noise
from conformance.protocol.bridges import TorchBridge
from conformance.protocol.values import Capabilities


class TorchSchedulerAdapter(SchedulerAdapter):
    """A scheduler class with diffusers' API on `torch.Tensor`s; `generator` is a
    `torch.Generator` on the sample's device (the array bridge `TorchBridge`)."""

    bridge = TorchBridge()


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
    """`--impl=torch`: `reference.torch_scheduler.scheduler.CMStochasticIterativeScheduler`."""
    import reference
    from reference.torch_scheduler.scheduler import CMStochasticIterativeScheduler

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
        description="reference.torch_scheduler.scheduler.CMStochasticIterativeScheduler",
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
