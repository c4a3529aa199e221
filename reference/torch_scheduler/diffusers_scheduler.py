"""The torch scheduler as a diffusers scheduler: `ConsistencyModelPipeline` takes it, and
`save_pretrained` / `from_pretrained` read and write the same `scheduler_config.json`
as diffusers' own `CMStochasticIterativeScheduler` (same class name, same keys).

    from diffusers import ConsistencyModelPipeline
    from reference.torch_scheduler.diffusers_scheduler import CMStochasticIterativeScheduler

    pipe = ConsistencyModelPipeline.from_pretrained(path)
    pipe.scheduler = CMStochasticIterativeScheduler.from_config(pipe.scheduler.config)

The numerics live in `reference.torch_scheduler.scheduler`, which does not import diffusers.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_consistency_models import (
    CMStochasticIterativeSchedulerOutput,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from reference.torch_scheduler import scheduler


class CMStochasticIterativeScheduler(
    SchedulerMixin, ConfigMixin, scheduler.CMStochasticIterativeScheduler
):
    """`reference.torch_scheduler.scheduler.CMStochasticIterativeScheduler` with diffusers' config
    machinery; `config` is diffusers' frozen dict, and `step` returns diffusers' own
    `CMStochasticIterativeSchedulerOutput`."""

    # diffusers' config machinery records the constructor's arguments from its signature.
    __init__ = register_to_config(scheduler.CMStochasticIterativeScheduler.__init__)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: scheduler.Generator = None,
        return_dict: bool = True,
        noise: torch.Tensor | None = None,
    ) -> CMStochasticIterativeSchedulerOutput | tuple[torch.Tensor]:
        """`reference.torch_scheduler.scheduler.CMStochasticIterativeScheduler.step`, its output in
        diffusers' class."""
        out = super().step(model_output, timestep, sample, generator, False, noise)
        return CMStochasticIterativeSchedulerOutput(*out) if return_dict else out
