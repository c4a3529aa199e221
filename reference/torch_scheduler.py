"""`CMStochasticIterativeScheduler` in torch, for GPUs: a drop-in for diffusers' class.

The public API is diffusers' (0.42.1, `schedulers/scheduling_consistency_models.py`)
and the semantics are those of the float64 numpy reference
(`reference.numpy_scheduler`); this module does not import diffusers (see
`reference.diffusers_scheduler` for the `SchedulerMixin`/`ConfigMixin` wrapper that
`ConsistencyModelPipeline` and `save_pretrained`/`from_pretrained` need).

What it adds for GPU users:

- The schedule is computed once, in float64 on the host, by `reference.formulas`
  (the same functions as the reference). `set_timesteps` turns it into a table of
  per-step scalars (sigma, c_in, c_skip, c_out, s_noise * sqrt(sigma_next^2 - eps^2))
  and `step` uses that table on the sample's device, in float64 for float64 samples
  and in float32 for every other dtype; the arithmetic on the sample stays in the
  sample's dtype (the scalars enter it as float32 operands) and the output keeps
  the sample's dtype and device. What `set_timesteps` builds is kept per scheduler and
  reused when the same schedule is asked for again (a pipeline asks on every call).
- No host-device synchronisation in `step` or `scale_model_input` after
  `set_timesteps`: the step index is a Python int, the first lookup reads a host copy
  of the schedule (an element of `scheduler.timesteps` is recognised by its storage
  offset, without reading it), no `.item()`, `.tolist()` or `nonzero()` on the device.
- `step(..., noise=z)` takes an injected standard-normal draw; `generator` is a
  `torch.Generator` or one per batch element and draws exactly as diffusers'
  `randn_tensor` does.
- Per-sample timesteps: a 1-D tensor of model times, one per batch element, puts each
  element at its own sigma and its own next sigma; such a call neither reads nor
  advances the step index of the ordinary loop.
- `torch.compile(scheduler.step, fullgraph=True)` traces without a graph break, and
  the update is four in-place elementwise kernels (one when compiled) instead of
  diffusers' eight.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from reference import formulas, validation
from reference.numpy_scheduler import SchedulerConfig
from reference.step_output import CMStochasticIterativeSchedulerOutput

# Columns of the per-step table built by `set_timesteps` (one row per evaluation n).
SIGMA, C_IN, C_SKIP, C_OUT, NOISE_SCALE = range(5)
# How many schedules (index list, device, config) a scheduler keeps for `set_timesteps`.
KEPT_SCHEDULES = 8

Generator = torch.Generator | Sequence[torch.Generator] | None
_CPU = torch.device("cpu")


class _Schedule(NamedTuple):
    """What `set_timesteps` builds for one index list on one device, kept for reuse."""

    timesteps_host: NDArray[np.float64]
    sigmas_host: NDArray[np.float64]
    table_host: NDArray[np.float64]
    timesteps: torch.Tensor
    sigmas: torch.Tensor
    tables: dict[tuple[torch.device, torch.dtype], torch.Tensor]
    scalars: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, list]]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the per-step scalars for samples of `dtype`: float64 for float64,
    float32 for everything narrower (float32, float16, bfloat16)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def step_table(
    sigmas: NDArray[np.float64],
    sigma_min: float,
    sigma_max: float,
    sigma_data: float,
    s_noise: float,
) -> NDArray[np.float64]:
    """Per-step scalars in float64, one row per evaluation n = 0 .. len(sigmas) - 2.

    sigma_n, c_in(sigma_n) (EDM Table 1), c_skip and c_out of CM Appendix C (eq. 43),
    and s_noise * sqrt(tau_n^2 - eps^2) with tau_n = clip(sigma_{n+1}, sigma_min,
    sigma_max) (Algorithm 1 line 5): exactly 0 when sigma_{n+1} = eps.
    """
    sigma, sigma_next = sigmas[:-1], np.clip(sigmas[1:], sigma_min, sigma_max)
    c_skip, c_out = formulas.boundary_scalings(sigma, sigma_min, sigma_data)
    table = np.empty((len(sigma), 5))
    table[:, SIGMA] = sigma
    table[:, C_IN] = formulas.c_in(sigma, sigma_data)
    table[:, C_SKIP] = c_skip
    table[:, C_OUT] = c_out
    table[:, NOISE_SCALE] = s_noise * formulas.noise_scale(sigma_next, sigma_min)
    return table


def rows_for_times(
    timestep: torch.Tensor, schedule: torch.Tensor, table: torch.Tensor
) -> torch.Tensor:
    """The table rows of a batch of model times, found on their device without a
    host-device synchronisation: shape [batch, 5]; the rows of a time that is not in
    `schedule` are NaN (raising would need the host to read the comparison)."""
    match = timestep.to(schedule.dtype).reshape(-1, 1) == schedule.reshape(1, -1)
    rows = table[match.to(torch.int32).argmax(dim=1)]
    return torch.where(match.any(dim=1, keepdim=True), rows, torch.full_like(rows, torch.nan))


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


def randn_like_diffusers(
    shape: tuple[int, ...],
    generator: Generator,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """A standard-normal draw made exactly as diffusers' `randn_tensor` makes it
    (diffusers 0.42.1, `utils/torch_utils.py`): on the generator's device when that is
    the CPU (then moved), one draw of shape (1, ...) per generator when given a list."""
    if generator is None:  # the global RNG of `device`
        return torch.randn(shape, device=device, dtype=dtype)
    rand_device = device
    first = generator[0] if isinstance(generator, (list, tuple)) else generator
    if first.device.type != device.type:
        if first.device.type != "cpu":
            raise ValueError(
                f"`generator` lives on {first.device}, it cannot draw noise for a sample "
                f"on {device}; use a generator on {device.type} or on the CPU"
            )
        rand_device = _CPU
    if isinstance(generator, (list, tuple)) and len(generator) == 1:
        generator = generator[0]
    if isinstance(generator, (list, tuple)):
        one = (1,) + tuple(shape[1:])
        parts = [torch.randn(one, generator=g, device=rand_device, dtype=dtype) for g in generator]
        z = torch.cat(parts, dim=0)
    else:
        z = torch.randn(shape, generator=generator, device=rand_device, dtype=dtype)
    # A CPU draw for a device sample: an asynchronous copy, no host-device synchronisation.
    return z.to(device, non_blocking=True)


class CMStochasticIterativeScheduler:
    """Multistep consistency sampling (CM Algorithm 1) in torch, in diffusers' scheduler API.

    Typical loop, as `ConsistencyModelPipeline` runs it:

        scheduler.set_timesteps(timesteps=[22, 0], device="cuda")  # or num_inference_steps=n
        x = scheduler.init_noise_sigma * torch.randn(shape, device="cuda")   # x_T, line 1
        for t in scheduler.timesteps:
            F = unet(scheduler.scale_model_input(x, t), t).sample
            x = scheduler.step(F, t, x, generator=g).prev_sample
    """

    order = 1

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
        validation.check_config(
            num_train_timesteps, sigma_min, sigma_max, sigma_data, s_noise, rho, clip_denoised
        )
        self.num_train_timesteps = int(num_train_timesteps)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.sigma_data = float(sigma_data)
        self.s_noise = float(s_noise)
        self.rho = float(rho)
        self.clip_denoised = bool(clip_denoised)
        self._config = SchedulerConfig(
            num_train_timesteps=self.num_train_timesteps,
            sigma_min=self.sigma_min,
            sigma_max=self.sigma_max,
            sigma_data=self.sigma_data,
            s_noise=self.s_noise,
            rho=self.rho,
            clip_denoised=self.clip_denoised,
        )
        # Standard deviation of the initial noise x_T ~ N(0, T^2 I) (Algorithm 1, line 1).
        self.init_noise_sigma = self.sigma_max
        # Before `set_timesteps`: the whole N-point training grid, as diffusers has it (no
        # sigma_min appended to `sigmas`; its last point is sigma_min, the next sigma of its
        # last step).
        grid = self._sigmas_at(np.arange(self.num_train_timesteps))
        self._schedules: dict[tuple, _Schedule] = {}
        self._set_schedule(grid, np.concatenate([grid, [self.sigma_min]]), _CPU)
        self._sigmas_host = grid
        self.sigmas = self.sigmas[:-1].clone()
        self.num_inference_steps: int | None = None
        self.custom_timesteps = False
        self.is_scale_input_called = False

    @property
    def config(self) -> SchedulerConfig:
        """The constructor arguments (`config.rho` or `config["rho"]`)."""
        return self._config

    # -- schedule ---------------------------------------------------------------------------

    def _convert_to_karras(self, ramp: ArrayLike) -> NDArray[np.float64]:
        """Karras sigmas at ramp values in [0, 1] (diffusers' method of the same name)."""
        return formulas.karras_sigma(ramp, self.sigma_min, self.sigma_max, self.rho)

    def _sigmas_at(self, ramp_indices: ArrayLike) -> NDArray[np.float64]:
        """Karras sigmas at the ramps i / (N - 1), as the reference computes them."""
        return formulas.karras_sigma_at(
            ramp_indices, self.num_train_timesteps, self.sigma_min, self.sigma_max, self.rho
        )

    def sigma_to_t(self, sigmas: ArrayLike | torch.Tensor) -> NDArray[np.float64] | torch.Tensor:
        """Model times t = 250 log(sigma + 1e-44): float64 numpy for numbers and arrays,
        a float64 tensor (float32 on MPS, which has no float64) for a tensor."""
        if isinstance(sigmas, torch.Tensor):
            wide = torch.float32 if sigmas.device.type == "mps" else torch.float64
            return 1000 * 0.25 * torch.log(sigmas.to(wide) + 1e-44)
        return formulas.sigma_to_t(sigmas)

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        timesteps: Sequence[int] | NDArray[np.integer] | torch.Tensor | None = None,
    ) -> None:
        """Choose the time points tau_1 > ... > tau_n of Algorithm 1 and put the schedule
        on `device` (default: the CPU; a step on another device copies it there once).

        Either `num_inference_steps=n` (indices `arange(n) * (N // n)`, reversed) or
        `timesteps`, strictly descending integer indices in [0, N - 1]; the ramp is the
        reversed index list divided by N - 1, and `sigma_min` is appended as the last
        sigma (DESIGN.md, "The scheduler's semantics").

        The schedule built for an index list, a device and the config is kept (the last
        `KEPT_SCHEDULES` of them) and reused when asked for again; `timesteps` and `sigmas`
        are fresh copies on every call, so that editing them cannot reach what is kept.
        """
        validation.check_set_timesteps_args(num_inference_steps, timesteps)
        device = _as_device(device)
        N = self.num_train_timesteps
        if timesteps is not None:
            indices = tuple(validation.check_custom_timesteps(timesteps, N))
        else:
            n = validation.check_num_inference_steps(num_inference_steps, N)
            spacing = N // n  # arange(n) * (N // n), reversed
            indices = tuple(range((n - 1) * spacing, -1, -spacing))
        self.custom_timesteps = timesteps is not None
        self.num_inference_steps = len(indices)
        config = (N, self.sigma_min, self.sigma_max, self.sigma_data, self.s_noise, self.rho)
        key = (indices, device, config)
        kept = self._schedules.get(key)
        if kept is None:
            # diffusers reverses the index list and divides by N - 1 to get the ramp.
            sigmas = self._sigmas_at(np.array(indices[::-1], dtype=np.int64))
            self._set_schedule(sigmas, np.concatenate([sigmas, [self.sigma_min]]), device)
            kept = self._keep_schedule(key)
        self._use_schedule(kept)

    def _set_schedule(
        self, sigmas: NDArray[np.float64], sigmas_ended: NDArray[np.float64], device: torch.device
    ) -> None:
        # Host copies: the truth for index lookups and for the device tables.
        self._timesteps_host = formulas.sigma_to_t(sigmas)
        self._sigmas_host = sigmas_ended
        self._table_host = step_table(
            sigmas_ended, self.sigma_min, self.sigma_max, self.sigma_data, self.s_noise
        )
        wide = torch.float32 if device.type == "mps" else torch.float64
        self.timesteps = torch.from_numpy(self._timesteps_host.copy()).to(device, wide)
        self.sigmas = torch.from_numpy(self._sigmas_host.copy()).to(device, wide)
        self._tables: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}
        if device.type != "mps":
            self._device_table(device, torch.float64)
        self._device_table(device, torch.float32)
        # Views of the tables' rows as 0-dim tensors, made as `_scalars_at` needs them.
        self._scalars: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, list]] = {}
        self._n = len(self._timesteps_host)  # a Python int: no guard on an array under compile
        self._step_index: int | None = None
        self._begin_index: int | None = None

    def _keep_schedule(self, key: tuple) -> _Schedule:
        """Keep what `_set_schedule` just built under `key`, forgetting the oldest kept."""
        for array in (self._timesteps_host, self._sigmas_host, self._table_host):
            array.setflags(write=False)  # kept and shared: the host truth must not change
        kept = _Schedule(
            self._timesteps_host,
            self._sigmas_host,
            self._table_host,
            self.timesteps,
            self.sigmas,
            self._tables,
            self._scalars,
        )
        if len(self._schedules) >= KEPT_SCHEDULES:
            del self._schedules[next(iter(self._schedules))]
        self._schedules[key] = kept
        return kept

    def _use_schedule(self, kept: _Schedule) -> None:
        """Make a kept schedule the current one: its tables shared, `timesteps` and `sigmas`
        copied (on their device, asynchronously), the step index forgotten."""
        self._timesteps_host, self._sigmas_host, self._table_host = kept[:3]
        self._tables, self._scalars = kept.tables, kept.scalars
        self.timesteps, self.sigmas = kept.timesteps.clone(), kept.sigmas.clone()
        self._n = len(self._timesteps_host)
        self._step_index = None
        self._begin_index = None

    def _device_table(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The per-step table on `device` in `dtype`, copied there once (asynchronously)."""
        key = (device, dtype)
        table = self._tables.get(key)
        if table is None:
            host = torch.tensor(self._table_host, dtype=dtype)  # a copy: the host truth stays
            table = host.to(device, non_blocking=True)
            self._tables[key] = table
        return table

    def _scalars_at(self, i: int, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Row i of the table, (sigma, c_in, c_skip, c_out, noise scale), as 0-dim tensors on
        x's device in the compute dtype.

        Eager, the row's views are made on its first use and kept with the table they view
        (and with the schedule, when `set_timesteps` reuses it): reading them again is a
        list lookup instead of four indexing calls. Under torch.compile the row is indexed
        in the graph, so that the step index can stay a symbolic int (a list lookup would
        specialise on it: one graph per step)."""
        device, dtype = x.device, compute_dtype(x.dtype)
        if torch.compiler.is_compiling():
            return self._device_table(device, dtype)[i].unbind()
        key = (device, dtype)
        made = self._scalars.get(key)
        if made is None or made[0] is not self._tables.get(key):  # none yet, or a new table
            table = self._device_table(device, dtype)
            made = self._scalars[key] = (table, [None] * len(table))
        table, rows = made
        row = rows[i]
        if row is None:
            row = rows[i] = table[i].unbind()
        return row

    # -- step bookkeeping -------------------------------------------------------------------

    @property
    def step_index(self) -> int | None:
        """Index of the next step into `timesteps`; None until the first step or scaling."""
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        """Where the first step starts when set by `set_begin_index`; None otherwise."""
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start the first step at `begin_index` without looking the timestep up."""
        self._begin_index = validation.check_int("begin_index", begin_index, 0, self._n - 1)

    def index_for_timestep(
        self,
        timestep: float | torch.Tensor,
        schedule_timesteps: torch.Tensor | ArrayLike | None = None,
    ) -> int:
        """Position of `timestep` in the schedule; the second one if it occurs more than once
        (diffusers' rule, so that starting mid-schedule does not skip a sigma).

        Compares on the host: a device tensor is read (one synchronisation); the loop
        avoids this by passing elements of `scheduler.timesteps`, found by storage offset.
        """
        value = _host_timestep(timestep)
        if schedule_timesteps is None:
            schedule = self._timesteps_host
        elif isinstance(schedule_timesteps, torch.Tensor):
            schedule = schedule_timesteps.detach().cpu().double().numpy()
        else:
            schedule = np.asarray(schedule_timesteps, dtype=np.float64)
        (positions,) = np.nonzero(schedule == value)
        if len(positions) == 0:
            raise ValueError(
                f"`timestep` {value!r} is not in the schedule; allowed are the values of "
                f"`timesteps`: {schedule.tolist()}"
            )
        return int(positions[1] if len(positions) > 1 else positions[0])

    def _schedule_position(self, timestep: torch.Tensor) -> int | None:
        """The index of `timestep` if it is an element (a view) of `self.timesteps`, read from
        its storage offset: host metadata only, no synchronisation."""
        schedule = self.timesteps
        if (
            timestep.dim() != 0
            or timestep.dtype != schedule.dtype
            or timestep.device != schedule.device
            or timestep.untyped_storage().data_ptr() != schedule.untyped_storage().data_ptr()
        ):
            return None
        offset = timestep.storage_offset() - schedule.storage_offset()
        index, rest = divmod(offset, schedule.stride(0))
        return index if rest == 0 and 0 <= index < len(schedule) else None

    def _first_index(self, timestep: float | torch.Tensor) -> int:
        """Where the first step starts: `begin_index`, else the position of `timestep`."""
        if self._begin_index is not None:
            return self._begin_index
        if torch.compiler.is_compiling():
            raise ValueError(
                "a compiled `step` needs the step index: call `scale_model_input` (as the "
                "pipeline does) or `set_begin_index` before the first compiled call"
            )
        index = None
        if isinstance(timestep, torch.Tensor):
            index = self._schedule_position(timestep)
        return self.index_for_timestep(timestep) if index is None else index

    def _init_step_index(self, timestep: float | torch.Tensor) -> None:
        self._step_index = self._first_index(timestep)

    def _current_index(self, timestep: float | torch.Tensor) -> int:
        """The host index of the scalar-timestep step being made. Nothing is stored here:
        the caller stores it once its own checks have passed, so a failed call changes
        nothing."""
        i = self._first_index(timestep) if self._step_index is None else self._step_index
        n = self._n
        if i >= n:
            raise ValueError(
                f"the schedule has {n} timesteps and all were stepped; "
                "call `set_timesteps(...)` again to sample anew"
            )
        return i

    def _per_sample_rows(self, timestep: torch.Tensor | ArrayLike, x: torch.Tensor) -> torch.Tensor:
        """Per-step table rows for a batch of model times, shape [batch, 5], on x's device
        in the compute dtype. A timestep tensor on the host is looked up strictly (a time not
        in the schedule raises); one on the device (or any tensor under torch.compile) is
        matched where it lives, without a synchronisation, and a time not in the schedule
        turns its rows into NaN."""
        batch = x.shape[0] if x.dim() > 0 else None
        length = timestep.shape[0] if isinstance(timestep, torch.Tensor) else len(timestep)
        if batch != length:
            raise ValueError(
                f"a 1-D `timestep` must hold one model time per batch element "
                f"({batch} for a sample of shape {tuple(x.shape)}), got {length}"
            )
        dtype = compute_dtype(x.dtype)
        on_device = isinstance(timestep, torch.Tensor) and timestep.device.type != "cpu"
        if on_device or (isinstance(timestep, torch.Tensor) and torch.compiler.is_compiling()):
            _check_float_timestep(timestep)
            schedule = self.timesteps.to(timestep.device, non_blocking=True)
            rows = rows_for_times(timestep, schedule, self._device_table(timestep.device, dtype))
            return rows.to(x.device, non_blocking=True)
        indices = [self.index_for_timestep(t) for t in _host_timesteps(timestep)]
        rows = torch.from_numpy(self._table_host[indices]).to(dtype)
        return rows.to(x.device, non_blocking=True)

    # -- Algorithm 1 ------------------------------------------------------------------------

    def scale_model_input(
        self, sample: torch.Tensor, timestep: float | torch.Tensor
    ) -> torch.Tensor:
        """c_in(sigma) x: the network's input, x / sqrt(sigma^2 + sigma_data^2) (EDM Table 1).
        A 1-D `timestep` scales each batch element by its own c_in."""
        x = _check_sample("sample", sample)
        per_sample = _check_timestep_kind(timestep)
        self.is_scale_input_called = True
        if per_sample:
            c_in = _per_sample(self._per_sample_rows(timestep, x)[:, C_IN], x)
            return torch.mul(x, c_in).to(x.dtype)
        i = self._current_index(timestep)
        c_in = self._scalars_at(i, x)[C_IN]
        self._step_index = i
        return torch.mul(x, c_in)

    def get_scalings(self, sigma: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """EDM's (c_skip, c_out) (EDM Table 1), without the boundary shift."""
        sigma = _as_sigma(sigma)
        sd = self.sigma_data
        c_skip = torch.full_like(sigma, sd**2) / (sigma**2 + sd**2)  # a true quotient, see below
        c_out = sigma * sd / torch.sqrt(sigma**2 + sd**2)
        return c_skip, c_out

    def get_scalings_for_boundary_condition(
        self, sigma: float | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(c_skip, c_out) of CM Appendix C (eq. 43), exact at sigma = sigma_min."""
        sigma = _as_sigma(sigma)
        sd, eps = self.sigma_data, self.sigma_min
        # `sd**2 / tensor` is `tensor.reciprocal() * sd**2` in torch: two roundings, and
        # c_skip(eps) = 1 - 2^-53 for some sigma_data (15 % of them in [0.01, 2]); dividing
        # tensors rounds once, and sd^2 / sd^2 is exactly 1.
        c_skip = torch.full_like(sigma, sd**2) / ((sigma - eps) ** 2 + sd**2)
        c_out = (sigma - eps) * sd / torch.sqrt(sigma**2 + sd**2)
        return c_skip, c_out

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
        F = _check_sample("model_output", model_output)
        x = _check_sample("sample", sample)
        if F.shape != x.shape or F.device != x.device:
            raise ValueError(
                "`model_output` and `sample` must have the same shape and device, got "
                f"{tuple(F.shape)} on {F.device} and {tuple(x.shape)} on {x.device}"
            )
        per_sample = _check_timestep_kind(timestep)
        if noise is not None and generator is not None:
            raise ValueError("pass either `noise` or `generator` to `step`, not both")
        if per_sample:
            rows = self._per_sample_rows(timestep, x)
            c_skip, c_out, scale = (
                _per_sample(rows[:, k], x) for k in (C_SKIP, C_OUT, NOISE_SCALE)
            )
            i = None
        else:
            i = self._current_index(timestep)
            _, _, c_skip, c_out, scale = self._scalars_at(i, x)
        z = self._standard_normal(F, x, generator, noise)
        prev_sample = consistency_update(F, x, c_skip, c_out, self.clip_denoised, z, scale)
        if prev_sample.dtype != x.dtype:  # per-sample scalars are [batch, 1, ...]: they promote
            prev_sample = prev_sample.to(x.dtype)
        if i is not None:
            self._step_index = i + 1
        if not return_dict:
            return (prev_sample,)
        return CMStochasticIterativeSchedulerOutput(prev_sample=prev_sample)

    def _standard_normal(
        self,
        F: torch.Tensor,
        x: torch.Tensor,
        generator: Generator,
        noise: torch.Tensor | None,
    ) -> torch.Tensor | None:
        if self._n == 1:
            if noise is not None:
                _check_noise(noise, x)
            return None  # one-step sampling: nothing to re-noise, nothing drawn
        if noise is not None:
            return _check_noise(noise, x)
        if generator is not None:
            _check_generator(generator, x)
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
        x0 = _check_sample("original_samples", original_samples)
        z = _check_noise(noise, x0, name="noise")
        t = _host_timesteps(timesteps)
        if x0.dim() > 0 and len(t) not in (1, x0.shape[0]):
            raise ValueError(
                f"`timesteps` must hold one model time per batch element ({x0.shape[0]}) or "
                f"one for the whole batch, got {len(t)}"
            )
        if self._begin_index is None:
            indices = [self.index_for_timestep(ti) for ti in t]
        elif self._step_index is not None:
            indices = [self._step_index] * len(t)  # called after the first step (inpainting)
        else:
            indices = [self._begin_index] * len(t)  # called before it (img2img)
        sigma = torch.from_numpy(self._sigmas_host[indices]).to(compute_dtype(x0.dtype))
        sigma = _per_sample(sigma.to(x0.device, non_blocking=True), x0)
        return torch.addcmul(x0, z, sigma).to(x0.dtype)

    def __len__(self) -> int:
        return self.num_train_timesteps


# -- argument checks (host-side, on metadata only) -------------------------------------------


def _check_sample(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"`{name}` must have a floating dtype, got {value.dtype}")
    return value


def _check_noise(noise: object, x: torch.Tensor, name: str = "noise") -> torch.Tensor:
    z = _check_sample(name, noise)
    if z.shape != x.shape or z.device != x.device:
        raise ValueError(
            f"`{name}` must have the sample's shape {tuple(x.shape)} and device {x.device}, "
            f"got {tuple(z.shape)} on {z.device}"
        )
    return z


def _check_generator(generator: object, x: torch.Tensor) -> None:
    if isinstance(generator, (list, tuple)):
        if x.dim() == 0 or len(generator) != x.shape[0]:
            raise ValueError(
                f"a list of generators must hold one per batch element "
                f"({x.shape[0] if x.dim() else 'no batch axis'}), got {len(generator)}"
            )
        bad = [type(g).__name__ for g in generator if not isinstance(g, torch.Generator)]
        if bad:
            raise TypeError(f"`generator` list must hold torch.Generator objects, got {bad}")
    elif not isinstance(generator, torch.Generator):
        raise TypeError(
            "`generator` must be a torch.Generator, a list of them or None, "
            f"got {type(generator).__name__}"
        )


def _check_timestep_kind(timestep: object) -> bool:
    """Model times are floats; an integer is almost always an index passed by mistake.
    Returns whether `timestep` holds one model time per batch element (`_is_per_sample`)."""
    if isinstance(timestep, torch.Tensor):
        _check_float_timestep(timestep)
        dim = timestep.dim()
        if dim > 1:
            raise ValueError(
                "`timestep` must be a scalar or a 1-D tensor (one model time per batch "
                f"element), got shape {tuple(timestep.shape)}"
            )
        return dim == 1
    if isinstance(timestep, (bool, np.bool_, numbers.Integral)) or (
        isinstance(timestep, np.ndarray) and timestep.dtype.kind not in "f"
    ):
        raise TypeError(
            f"`timestep` must be a model time (a float from `scheduler.timesteps`), got "
            f"{timestep!r}; integer indices go to `set_timesteps(timesteps=...)`"
        )
    elif not isinstance(timestep, (numbers.Real, np.ndarray, list, tuple)):
        raise TypeError(
            f"`timestep` must be a float, a tensor or a 1-D sequence of floats, got "
            f"{type(timestep).__name__}"
        )
    return _is_per_sample(timestep)


def _check_float_timestep(timestep: torch.Tensor) -> None:
    if not timestep.is_floating_point():
        raise TypeError(
            f"`timestep` must be a model time (a float from `scheduler.timesteps`), got a "
            f"tensor of dtype {timestep.dtype}; integer indices go to "
            "`set_timesteps(timesteps=...)`"
        )


def _is_per_sample(timestep: object) -> bool:
    if isinstance(timestep, torch.Tensor | np.ndarray):
        return timestep.ndim == 1
    return isinstance(timestep, (list, tuple))


def _host_timestep(timestep: object) -> float:
    """One model time as a Python float (reading a device tensor synchronises)."""
    if isinstance(timestep, torch.Tensor):
        if timestep.numel() != 1 or timestep.dim() > 1:
            raise ValueError(
                f"`timestep` must be a scalar, got a tensor of shape {tuple(timestep.shape)}"
            )
        return float(timestep.detach().reshape(()).cpu().double())
    value = np.asarray(timestep)
    if value.ndim != 0:
        raise ValueError(f"`timestep` must be a scalar, got an array of shape {value.shape}")
    if value.dtype == np.bool_ or value.dtype.kind not in "fiu":
        raise TypeError(f"`timestep` must be a real number, got {timestep!r}")
    return float(value)


def _host_timesteps(timesteps: object) -> list[float]:
    """A 1-D batch of model times as Python floats."""
    if isinstance(timesteps, torch.Tensor):
        values = timesteps.detach().cpu().double().reshape(-1).numpy()
    else:
        values = np.atleast_1d(np.asarray(timesteps))
        if values.dtype == np.bool_ or values.dtype.kind not in "fiu":
            raise TypeError(f"`timesteps` must be real numbers, got {timesteps!r}")
        if values.ndim != 1:
            raise ValueError(f"`timesteps` must be 1-D, got shape {values.shape}")
    return [float(v) for v in values]


def _as_device(device: str | torch.device | None) -> torch.device:
    """A torch.device with its index filled in for CUDA ("cuda" is the current device), so
    that it compares equal to the `device` of a tensor living there."""
    if device is None:
        return _CPU
    if isinstance(device, torch.device) and (device.type != "cuda" or device.index is not None):
        return device
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"`device` must be None, a torch.device or a device string, got {device!r}"
        ) from exc
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[batch] values shaped [batch, 1, ..., 1] to broadcast against x."""
    return values.reshape((-1,) + (1,) * (x.dim() - 1))


def _as_sigma(sigma: float | torch.Tensor) -> torch.Tensor:
    """sigma as a tensor in at least float32 (float64 for Python numbers)."""
    if isinstance(sigma, torch.Tensor):
        if not sigma.is_floating_point():
            sigma = sigma.to(torch.float64)
        return sigma.to(compute_dtype(sigma.dtype)) if sigma.dtype != torch.float64 else sigma
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real | np.ndarray):
        raise TypeError(f"`sigma` must be a real number or a tensor, got {sigma!r}")
    return torch.as_tensor(np.asarray(sigma, dtype=np.float64))
