"""Adapter for diffusers' `CMStochasticIterativeScheduler` and for subclasses of it.

diffusers draws its noise with `randn_tensor(shape, generator, device, dtype)`, which the
suite reproduces ("torch.randn"); its `step` takes no `noise=`. Its known deviations are
declared in `diffusers_deviations.py`, next to this file, with the figures measured; a
subclass inherits them (each shows in the report as declared or as not observed).
"""

from __future__ import annotations

import sys

from conformance.implementations.diffusers_deviations import DEVIATIONS
from conformance.implementations.scheduler import step_accepts_noise
from conformance.implementations.torch_adapter import TorchSchedulerAdapter, distribution_version
from conformance.protocol.values import Capabilities


def is_diffusers_scheduler(cls: type) -> bool:
    """Whether `cls` is diffusers' `CMStochasticIterativeScheduler` or a subclass of it (no
    import of diffusers: a subclass of its class has imported it already)."""
    module = sys.modules.get("diffusers")
    base = getattr(module, "CMStochasticIterativeScheduler", None) if module else None
    return isinstance(cls, type) and base is not None and issubclass(cls, base)


def subclass_adapter(scheduler_class: type, name: str) -> TorchSchedulerAdapter:
    """diffusers' class or a subclass of it: its claims, its noise convention, its deviations."""
    import diffusers

    inherited = scheduler_class is not diffusers.CMStochasticIterativeScheduler
    return TorchSchedulerAdapter(
        scheduler_class,
        name=name,
        version=(
            f"{distribution_version(scheduler_class)} (diffusers {diffusers.__version__})"
            if inherited
            else diffusers.__version__
        ),
        capabilities=Capabilities(
            devices=("cpu", "cuda"),
            dtypes=("float64", "float32", "float16", "bfloat16"),
            injected_noise=step_accepts_noise(scheduler_class),
            noise_convention="torch.randn",
            stateful=True,
        ),
        deviations=DEVIATIONS,
        description=(
            f"{scheduler_class.__module__}.{scheduler_class.__qualname__}"
            + (", a subclass of diffusers' class (its deviations inherited)" if inherited else "")
        ),
    )


def diffusers_adapter() -> TorchSchedulerAdapter:
    """`--impl=diffusers`: `diffusers.CMStochasticIterativeScheduler`."""
    from diffusers import CMStochasticIterativeScheduler

    return subclass_adapter(CMStochasticIterativeScheduler, "diffusers")
