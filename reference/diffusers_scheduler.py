"""The torch scheduler as a diffusers scheduler: `ConsistencyModelPipeline` takes it, and
`save_pretrained` / `from_pretrained` read and write the same `scheduler_config.json`
as diffusers' own `CMStochasticIterativeScheduler` (same class name, same keys).

    from diffusers import ConsistencyModelPipeline
    from reference.diffusers_scheduler import CMStochasticIterativeScheduler

    pipe = ConsistencyModelPipeline.from_pretrained(path)
    pipe.scheduler = CMStochasticIterativeScheduler.from_config(pipe.scheduler.config)

The numerics live in `reference.torch_scheduler`, which does not import diffusers.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_consistency_models import (
    CMStochasticIterativeSchedulerOutput,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from reference import torch_scheduler


class CMStochasticIterativeScheduler(
    SchedulerMixin, ConfigMixin, torch_scheduler.CMStochasticIterativeScheduler
):
    """`reference.torch_scheduler.CMStochasticIterativeScheduler` with diffusers' config
    machinery; `config` is diffusers' frozen dict, and `step` returns diffusers' own
    `CMStochasticIterativeSchedulerOutput`."""

    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 40,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        sigma_data: float = 0.5,
        s_noise: float = 1.0,
        rho: float = 7.0,
        clip_denoised: bool = True,
    ) -> None:
        torch_scheduler.CMStochasticIterativeScheduler.__init__(
            self, num_train_timesteps, sigma_min, sigma_max, sigma_data, s_noise, rho, clip_denoised
        )

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: torch_scheduler.Generator = None,
        return_dict: bool = True,
        noise: torch.Tensor | None = None,
    ) -> CMStochasticIterativeSchedulerOutput | tuple[torch.Tensor]:
        """`reference.torch_scheduler.CMStochasticIterativeScheduler.step`, its output in
        diffusers' class."""
        out = super().step(model_output, timestep, sample, generator, False, noise)
        return CMStochasticIterativeSchedulerOutput(*out) if return_dict else out
