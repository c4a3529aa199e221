"""`CMStochasticIterativeScheduler` in torch, for GPUs: a drop-in for diffusers' class.

The public API is diffusers' (0.42.1, `schedulers/scheduling_consistency_models.py`)
and the semantics are those of the float64 numpy reference
(`reference.numpy_reference.scheduler`); this module does not import diffusers (see
`reference.torch_scheduler.diffusers_scheduler` for the `SchedulerMixin`/`ConfigMixin` wrapper that
`ConsistencyModelPipeline` and `save_pretrained`/`from_pretrained` need).

What it adds for GPU users:

- The schedule is computed once, in float64 on the host, by `reference.numpy_reference.formulas`
  (the same functions as the reference). `set_timesteps` turns it into a table of
  per-step scalars (sigma, c_in, c_skip, c_out, s_noise * sqrt(sigma_next^2 - eps^2))
  and `step` uses that table on the sample's device, in float64 for float64 samples
  and in float32 for every other dtype; the arithmetic on the sample stays in the
  sample's dtype (the scalars enter it as float32 operands) and the output keeps
  the sample's dtype and device. What `set_timesteps` builds is kept per scheduler and
  reused when the same schedule is asked for again (a pipeline asks on every call):
  `reference.torch_scheduler.schedule`.
- No host-device synchronisation in `step` or `scale_model_input` after
  `set_timesteps`: the step index is a Python int, the first lookup reads a host copy
  of the schedule (an element of `scheduler.timesteps` is recognised by its storage
  offset, without reading it: `reference.torch_scheduler.lookup`), no `.item()`, `.tolist()` or
  `nonzero()` on the device.
- `step(..., noise=z)` takes an injected standard-normal draw; `generator` is a
  `torch.Generator` or one per batch element and draws exactly as diffusers'
  `randn_tensor` does.
- Per-sample timesteps: a 1-D tensor of model times, one per batch element, puts each
  element at its own sigma and its own next sigma; such a call neither reads nor
  advances the step index of the ordinary loop.
- `torch.compile(scheduler.step, fullgraph=True)` traces without a graph break, and
  the update is four in-place elementwise kernels (one when compiled) instead of
  diffusers' eight.

The configuration, the index lists, the step and begin index and the host-side lookups are
`reference.numpy_reference.bookkeeping`'s, shared with the numpy reference; the argument checks
are in `reference.torch_scheduler.checks`, the noise draw in `reference.torch_scheduler.noise`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from reference.numpy_reference import formulas
from reference.numpy_reference.bookkeeping import Array, HostSchedule, SchedulerBookkeeping
from reference.numpy_reference.step_output import CMStochasticIterativeSchedulerOutput
from reference.torch_scheduler import checks, lookup
from reference.torch_scheduler.noise import Generator, randn_like_diffusers
from reference.torch_scheduler.schedule import (
    C_IN,
    C_OUT,
    C_SKIP,
    KEPT_SCHEDULES,
    NOISE_SCALE,
    SIGMA,
    KeptSchedules,
    Schedule,
    compute_dtype,
    step_table,
)

__all__ = [
    "C_IN",
    "C_OUT",
    "C_SKIP",
    "KEPT_SCHEDULES",
    "NOISE_SCALE",
    "SIGMA",
    "CMStochasticIterativeScheduler",
    "CMStochasticIterativeSchedulerOutput",
    "Generator",
    "compute_dtype",
    "consistency_update",
    "randn_like_diffusers",
    "step_table",
]


def consistency_update(
    F: torch.Tensor,
    x: torch.Tensor,
    c_skip: torch.Tensor,
    c_out: torch.Tensor,
    clip_denoised: bool,
    z: torch.Tensor | None = None,
    noise_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """x0 = clamp(c_skip x + c_out F)  (CM eq. 5, Algorithm 1 lines 2 and 6), then
    x0 + noise_scale z  (line 5, noise_scale = s_noise sqrt(tau_n^2 - eps^2)).

    One new tensor and in-place kernels on it: mul, addcmul_, clamp_, addcmul_ (one
    fused kernel under torch.compile). The scalars are 0-dim tensors on x's device, or
    per-sample tensors broadcastable to x; the caller's tensors are never written.
    """
    x0 = torch.mul(x, c_skip)
    x0.addcmul_(F, c_out)
    if clip_denoised:
        x0.clamp_(-1.0, 1.0)
    if z is not None:
        x0.addcmul_(z, noise_scale)
    return x0


class CMStochasticIterativeScheduler(SchedulerBookkeeping):
    """Multistep consistency sampling (CM Algorithm 1) in torch, in diffusers' scheduler API.

    Typical loop, as `ConsistencyModelPipeline` runs it:

        scheduler.set_timesteps(timesteps=[22, 0], device="cuda")  # or num_inference_steps=n
        x = scheduler.init_noise_sigma * torch.randn(shape, device="cuda")   # x_T, line 1
        for t in scheduler.timesteps:
            F = unet(scheduler.scale_model_input(x, t), t).sample
            x = scheduler.step(F, t, x, generator=g).prev_sample
    """

    # -- Algorithm 1 --------------------------------------------------------------------------

    def scale_model_input(
        self, sample: torch.Tensor, timestep: float | torch.Tensor
    ) -> torch.Tensor:
        """c_in(sigma) x: the network's input, x / sqrt(sigma^2 + sigma_data^2) (EDM Table 1).
        A 1-D `timestep` scales each batch element by its own c_in."""
        x = checks.check_sample("sample", sample)
        per_sample = checks.check_timestep_kind(timestep)
        self.is_scale_input_called = True
        if per_sample:
            c_in = _per_sample(self._per_sample_rows(timestep, x)[:, C_IN], x)
            return torch.mul(x, c_in).to(x.dtype)
        i = self._current_index(timestep)
        c_in = self._schedule.scalars(i, x.device, compute_dtype(x.dtype))[C_IN]
        self._step_index = i
        return torch.mul(x, c_in)

    def get_scalings(self, sigma: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """EDM's (c_skip, c_out) (EDM Table 1), without the boundary shift, by
        `reference.numpy_reference.formulas` in float64 (a device tensor is read)."""
        sigma = checks.as_sigma(sigma)
        values = formulas.edm_scalings(checks.host_array(sigma), self.sigma_data)
        return _like(values, sigma)

    def get_scalings_for_boundary_condition(
        self, sigma: float | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(c_skip, c_out) of CM Appendix C (eq. 43), exact at sigma = sigma_min, by
        `reference.numpy_reference.formulas` in float64 (a device tensor is read)."""
        sigma = checks.as_sigma(sigma)
        eps, sd = self.sigma_min, self.sigma_data
        return _like(formulas.boundary_scalings(checks.host_array(sigma), eps, sd), sigma)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: Generator = None,
        return_dict: bool = True,
        noise: torch.Tensor | None = None,
    ) -> CMStochasticIterativeSchedulerOutput | tuple[torch.Tensor]:
        """One pass of Algorithm 1's loop: evaluate f at sigma, then re-noise to the next sigma.

        x0   = clamp(c_skip x + c_out F)                   (eq. 5; Algorithm 1 lines 2, 6)
        prev = x0 + s_noise z sqrt(sigma_next^2 - eps^2)   (Algorithm 1 line 5)

        `noise` injects z (a standard-normal tensor of the sample's shape, on its device);
        otherwise `generator` draws it as diffusers does (in `model_output`'s dtype). With a
        single timestep (one-step sampling) no noise is drawn. The scale is exactly 0 on
        the last step, where z is still drawn so that a generator advances as diffusers'.
        A 1-D `timestep` (one model time per batch element) steps each element from its
        own sigma and leaves the step index alone.
        """
        F = checks.check_sample("model_output", model_output)
        x = checks.check_sample("sample", sample)
        checks.check_model_output(F, x)
        per_sample = checks.check_timestep_kind(timestep)
        checks.check_noise_source(noise, generator)
        if per_sample:
            rows = self._per_sample_rows(timestep, x)
            c_skip, c_out, scale = (
                _per_sample(rows[:, k], x) for k in (C_SKIP, C_OUT, NOISE_SCALE)
            )
            i = None
        else:
            i = self._current_index(timestep)
            _, _, c_skip, c_out, scale = self._schedule.scalars(i, x.device, compute_dtype(x.dtype))
        z = self._standard_normal(F, x, generator, noise)
        prev_sample = consistency_update(F, x, c_skip, c_out, self.clip_denoised, z, scale)
        if prev_sample.dtype != x.dtype:  # per-sample scalars are [batch, 1, ...]: they promote
            prev_sample = prev_sample.to(x.dtype)
        if i is not None:
            self._step_index = i + 1
        if not return_dict:
            return (prev_sample,)
        return CMStochasticIterativeSchedulerOutput(prev_sample)

    def _standard_normal(
        self,
        F: torch.Tensor,
        x: torch.Tensor,
        generator: Generator,
        noise: torch.Tensor | None,
    ) -> torch.Tensor | None:
        """z of Algorithm 1 line 4: injected, or drawn as diffusers draws it; None for
        one-step sampling (nothing to re-noise, nothing drawn)."""
        if self._host.n == 1:
            if noise is not None:
                checks.check_noise(noise, x)
            return None
        if noise is not None:
            return checks.check_noise(noise, x)
        if generator is not None:
            checks.check_generator(generator, x)
        return randn_like_diffusers(tuple(x.shape), generator, x.device, F.dtype)

    def add_noise(
        self,
        original_samples: torch.Tensor,
        noise: torch.Tensor,
        timesteps: torch.Tensor | ArrayLike,
    ) -> torch.Tensor:
        """x0 + noise * sigma(t), one model time t per batch element (the first axis), or
        one (0-dim or one element) for the whole batch, as diffusers broadcasts it.

        The lookup is on the host, as in the reference (a device `timesteps` is read).
        """
        x0 = checks.check_sample("original_samples", original_samples)
        z = checks.check_noise(noise, x0, name="noise")
        indices = self._add_noise_indices(timesteps, x0.shape[0] if x0.dim() > 0 else None)
        sigma = torch.from_numpy(self._host.sigmas[indices]).to(compute_dtype(x0.dtype))
        sigma = _per_sample(sigma.to(x0.device, non_blocking=True), x0)
        return torch.addcmul(x0, z, sigma).to(x0.dtype)

    # -- the schedule ------------------------------------------------------------------------

    def _init_backend(self) -> None:
        self._kept = KeptSchedules()  # what `set_timesteps` built, for reuse

    def _use_schedule(self, indices: Any, device: Any, custom: bool) -> None:
        """Put the schedule of `indices` on `device` (`set_timesteps(..., device=...)`; default:
        the CPU; a step on another device copies it there once).

        The schedule built for an index list, a device and the config is kept (the last
        `KEPT_SCHEDULES` of them) and reused when asked for again (a pipeline asks on every
        call); `timesteps` and `sigmas` are fresh copies on every call, so that editing them
        cannot reach what is kept."""
        device = checks.as_device(device)
        if indices is not None and not isinstance(indices, tuple):
            indices = tuple(np.asarray(indices).tolist())  # an index list a subclass made
        config = (
            self.num_train_timesteps,
            self.sigma_min,
            self.sigma_max,
            self.sigma_data,
            self.s_noise,
            self.rho,
        )
        key = (indices, custom, device, config)
        schedule = self._kept.get(key)
        if schedule is None:
            host = self.host_schedule(indices, custom)
            schedule = self._kept.keep(key, Schedule(host, self._step_table(host), device))
        self._schedule = schedule
        self._host: HostSchedule = schedule.host
        self.timesteps = schedule.timesteps.clone()
        self.sigmas = schedule.sigmas.clone()

    def _step_table(self, host: HostSchedule) -> Array:
        """The per-step scalars of `host` (`reference.torch_scheduler.schedule.step_table`)."""
        sigma = host.sigmas[: host.n]
        return step_table(
            sigma, host.sigmas_next, self.sigma_min, self.sigma_max, self.sigma_data, self.s_noise
        )

    def sigma_to_t(self, sigmas: ArrayLike | torch.Tensor) -> NDArray[np.float64] | torch.Tensor:
        """Model times t = 250 log(sigma + 1e-44): float64 numpy for numbers and arrays,
        a float64 tensor (float32 on MPS, which has no float64) for a tensor."""
        if isinstance(sigmas, torch.Tensor):
            wide = torch.float32 if sigmas.device.type == "mps" else torch.float64
            return 1000 * 0.25 * torch.log(sigmas.to(wide) + 1e-44)
        return formulas.sigma_to_t(sigmas)

    # -- where the next step is ---------------------------------------------------------------

    def _first_index(self, timestep: float | torch.Tensor) -> int:
        """`begin_index`, else the position of `timestep`: an element of `timesteps` by its
        storage offset (no synchronisation), anything else by value on the host."""
        if self._begin_index is not None:
            return self._begin_index
        if torch.compiler.is_compiling():
            raise ValueError(
                "a compiled `step` needs the step index: call `scale_model_input` (as the "
                "pipeline does) or `set_begin_index` before the first compiled call"
            )
        if isinstance(timestep, torch.Tensor):
            index = lookup.schedule_position(timestep, self.timesteps)
            if index is not None:
                return index
        return self.index_for_timestep(timestep)

    def _host_timestep(self, timestep: object) -> float:
        return checks.host_timestep(timestep)

    def _host_timesteps(self, timesteps: object) -> list[float]:
        return checks.host_timesteps(timesteps)

    def _host_schedule_timesteps(self, schedule_timesteps: object) -> Array:
        return checks.host_array(schedule_timesteps)

    def _per_sample_rows(self, timestep: torch.Tensor | ArrayLike, x: torch.Tensor) -> torch.Tensor:
        """Table rows for a batch of model times, shape [batch, 5], on x's device in the
        compute dtype. A timestep tensor on the host is looked up strictly (a time not in
        the schedule raises); one on a device (or any tensor under torch.compile) is
        matched where it lives, and a time not in the schedule turns its rows into NaN."""
        checks.check_per_sample_length(timestep, x)
        dtype = compute_dtype(x.dtype)
        if lookup.matched_on_device(timestep):
            device = timestep.device
            schedule = self.timesteps.to(device, non_blocking=True)
            table = self._schedule.table(device, dtype)
            rows = lookup.rows_for_times(timestep, schedule, table)
        else:
            indices = [self.index_for_timestep(t) for t in self._host_timesteps(timestep)]
            rows = self._schedule.host_rows(indices, dtype)
        return rows.to(x.device, non_blocking=True)


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[batch] values shaped [batch, 1, ..., 1] to broadcast against x."""
    return values.reshape((-1,) + (1,) * (x.dim() - 1))


def _like(values: tuple, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """float64 host results as tensors of sigma's dtype on its device."""
    return tuple(
        torch.as_tensor(np.asarray(v)).to(sigma.device, sigma.dtype, non_blocking=True)
        for v in values
    )
