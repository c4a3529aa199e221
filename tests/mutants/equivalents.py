"""Equivalent variants: correct implementations written differently. They must pass.

They guard against a suite so tight that correct code fails: each computes the same
quantities as the reference by another route, with its own rounding errors (the tolerances
of SPEC.md must admit them), or draws its noise by another call that gives the same numbers.
`EQUIVALENTS` lists them with the clauses each exercises (the CI check runs those clauses on
every dtype the variant claims; the kill matrix runs the whole suite). The two bases, unchanged,
come first: they are the zoo's controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from reference.torch_scheduler import checks as torch_checks
from reference.torch_scheduler import scheduler as torch_scheduler
from reference.torch_scheduler.scheduler import SIGMA, compute_dtype
from tests.mutants.base import Array, NumpyBase, TorchBase


@dataclass(frozen=True)
class Variant:
    """A correct implementation and the clauses it exercises."""

    name: str
    scheduler: type
    clauses: tuple[str, ...]

    @property
    def what(self) -> str:
        return (self.scheduler.__doc__ or "").strip().splitlines()[0]


class DivideByNorm(TorchBase):
    """scale_model_input divides by sqrt(sigma^2 + sd^2) instead of multiplying by c_in."""

    def scale_model_input(self, sample: torch.Tensor, timestep: Any) -> torch.Tensor:
        x = torch_checks.check_sample("sample", sample)
        if torch_checks.check_timestep_kind(timestep):  # per-sample timesteps
            return super().scale_model_input(sample, timestep)
        i = self._current_index(timestep)
        sigma = self._schedule.table(x.device, compute_dtype(x.dtype))[i, SIGMA]
        self._step_index = i
        self.is_scale_input_called = True
        return x / torch.sqrt(sigma * sigma + self.sigma_data**2)


class AlgebraicScalings(TorchBase):
    """c_skip = 1 / (1 + ((sigma - eps) / sd)^2), c_out = (sigma - eps) / sqrt(1 + (sigma / sd)^2)."""

    def boundary(self, sigma: Any) -> tuple[Any, Any]:
        sd, eps = self.sigma_data, self.sigma_min
        d = sigma - eps
        return 1 / (1 + (d / sd) ** 2), d / (1 + (sigma / sd) ** 2) ** 0.5


class LogSchedule(TorchBase):
    """The schedule through logarithms: sigma = exp(rho log(w_max e^(ln T / rho) + w_min e^(ln eps / rho)))."""

    def _sigmas_at(self, ramp_indices: ArrayLike) -> Array:
        i = np.asarray(ramp_indices, dtype=np.float64)
        last = self.num_train_timesteps - 1
        root_max = np.exp(np.log(self.sigma_max) / self.rho)
        root_min = np.exp(np.log(self.sigma_min) / self.rho)
        beta = (last - i) / last * root_max + i / last * root_min
        return np.exp(self.rho * np.log(beta))


class Float64Update(TorchBase):
    """The update in float64 (float64 scalars) for every sample dtype, rounded once at the end."""

    def step(
        self,
        model_output: torch.Tensor,
        timestep: Any,
        sample: torch.Tensor,
        generator: Any = None,
        return_dict: bool = True,
        noise: torch.Tensor | None = None,
    ) -> Any:
        if noise is None:  # drawn as the parent draws: in the sample's dtype, then widened
            noise = self._standard_normal(model_output, sample, generator, None)
        out = super().step(
            model_output.to(torch.float64),
            timestep,
            sample.to(torch.float64),
            return_dict=False,
            noise=None if noise is None else noise.to(torch.float64),
        )
        prev = out[0].to(sample.dtype)
        return (
            (prev,)
            if not return_dict
            else torch_scheduler.CMStochasticIterativeSchedulerOutput(prev)
        )


class NormalNoise(TorchBase):
    """Noise drawn by torch.normal(0, 1, size, generator=g): the same numbers as torch.randn."""

    def _standard_normal(self, F: Any, x: Any, generator: Any, noise: Any) -> Any:
        if noise is not None or self._host.n == 1 or generator is None:
            return super()._standard_normal(F, x, generator, noise)
        if isinstance(generator, (list, tuple)):
            return super()._standard_normal(F, x, generator, noise)
        z = torch.normal(0.0, 1.0, size=tuple(x.shape), generator=generator, dtype=F.dtype)
        return z.to(x.device)


class UnfactoredNoise(TorchBase):
    """Noise scale s sqrt(tau^2 - eps^2) evaluated as written (the reference factors it)."""

    def noise(self, sigma: Array, sigma_next: Array) -> Array:
        tau = np.clip(sigma_next, self.sigma_min, self.sigma_max)
        return self.s_noise * np.sqrt(tau**2 - self.sigma_min**2)


class ModelTimeNoOffset(TorchBase):
    """Model time 250 ln(sigma), without the + 1e-44 (a no-op for every allowed sigma)."""

    def sigma_to_t(self, sigmas: Any) -> Any:
        if isinstance(sigmas, torch.Tensor):
            return 250 * torch.log(sigmas.to(torch.float64))
        return 250 * np.log(np.asarray(sigmas, dtype=np.float64))


class DiffusersStyleNumpy(NumpyBase):
    """Schedule and scalings written as diffusers writes them (naive Karras form, plain quotients)."""

    def _sigmas_at(self, ramp_indices: ArrayLike) -> Array:
        ramp = np.asarray(ramp_indices, dtype=np.float64) / (self.num_train_timesteps - 1)
        min_inv_rho = self.sigma_min ** (1 / self.rho)
        max_inv_rho = self.sigma_max ** (1 / self.rho)
        return (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** self.rho

    def get_scalings_for_boundary_condition(self, sigma: ArrayLike) -> tuple[Array, Array]:
        sigma = np.asarray(sigma, dtype=np.float64)
        sd, eps = self.sigma_data, self.sigma_min
        c_skip = sd**2 / ((sigma - eps) ** 2 + sd**2)
        c_out = (sigma - eps) * sd / (sigma**2 + sd**2) ** 0.5
        return c_skip, c_out


STEP = ("STEP-1", "STEP-2", "STEP-3", "STEP-4")

EQUIVALENTS: tuple[Variant, ...] = (
    Variant("torch_base", TorchBase, ("SCHED-1", "TIME-1", "CIN-1", "SCAL-1", *STEP, "NOISE-2")),
    Variant("numpy_base", NumpyBase, ("SCHED-1", "SCAL-1", "STEP-1", "STEP-3")),
    Variant("divide_by_norm", DivideByNorm, ("CIN-1", "GOLD-3")),
    Variant("algebraic_scalings", AlgebraicScalings, ("SCAL-1", "SCAL-2", "STEP-1", "GOLD-2")),
    Variant("log_schedule", LogSchedule, ("SCHED-1", "SCHED-2", "TIME-1", "CIN-1", "GOLD-1")),
    Variant("float64_update", Float64Update, (*STEP, "STEP-9", "NOISE-2", "GOLD-3")),
    Variant("normal_noise", NormalNoise, ("NOISE-2", "NOISE-3", "STEP-5", "STEP-10")),
    Variant("unfactored_noise", UnfactoredNoise, ("STEP-3", "STEP-4", "NOISE-1")),
    Variant("model_time_no_offset", ModelTimeNoOffset, ("TIME-1", "TIME-2", "GOLD-2")),
    Variant(
        "diffusers_style_numpy",
        DiffusersStyleNumpy,
        ("SCHED-1", "SCHED-2", "SCAL-1", "SCAL-2", "STEP-1", "GOLD-1"),
    ),
)
