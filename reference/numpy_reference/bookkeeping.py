"""The scheduler's bookkeeping: everything of diffusers' `CMStochasticIterativeScheduler` API
that is not array arithmetic, shared by the numpy reference, the torch scheduler and the
diffusers-facing class.

- the configuration: defaults, validation (`reference.numpy_reference.validation`), attributes,
  `config`;
- the index lists of both timestep conventions (`num_inference_steps=n` and custom
  `timesteps`) and the float64 schedule they give, computed on the host by
  `reference.numpy_reference.formulas` (`HostSchedule`);
- the step index and the begin index, and where the next step is;
- the host-side lookup of a model time in the schedule, and the index rule of `add_noise`;
- the error texts.

A backend (`numpy_scheduler`, `torch_scheduler`) subclasses `SchedulerBookkeeping`, turns
its array arguments into host values (`_host_timestep`, `_host_timesteps`,
`_host_schedule_timesteps`), puts a `HostSchedule` into its own arrays (`_use_schedule`),
and does the arithmetic of `scale_model_input`, `step` and `add_noise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference.numpy_reference import formulas, validation

Array = NDArray[np.float64]

#: The constructor's defaults (diffusers 0.42.1, OpenAI's `KarrasDenoiser` and sampler).
DEFAULTS: dict[str, Any] = dict(
    num_train_timesteps=40,
    sigma_min=0.002,
    sigma_max=80.0,
    sigma_data=0.5,
    s_noise=1.0,
    rho=7.0,
    clip_denoised=True,
)


class SchedulerConfig(dict):
    """The constructor arguments, readable as `config["rho"]` and as `config.rho` (like diffusers')."""

    def __getattr__(self, name: str) -> object:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class HostSchedule:
    """A schedule in float64 on the host, what a backend turns into its arrays.

    `timesteps` are the model times of the evaluation points; `sigmas` are the evaluation
    points, then sigma_min after `set_timesteps` (Algorithm 1's last re-noising goes there),
    or, for the training schedule that `__init__` sets, the N points of the grid alone (as
    diffusers holds them; the last is sigma_min itself). `sigmas_next[n]` is where step n
    re-noises to, before the clip to [sigma_min, sigma_max]: sigma_min after the last point.
    """

    timesteps: Array
    sigmas: Array
    sigmas_next: Array
    n: int  # the number of steps, one per evaluation point

    @classmethod
    def of(cls, sigmas: Array, timesteps: Array, sigma_min: float) -> HostSchedule:
        """From the exposed sigmas (ended by sigma_min or not) and the evaluations' times."""
        ended = sigmas if len(sigmas) > len(timesteps) else np.append(sigmas, sigma_min)
        for array in (sigmas, timesteps, ended):
            array.setflags(write=False)  # shared by every copy handed out: the host truth
        return cls(timesteps, sigmas, ended[1 : len(timesteps) + 1], len(timesteps))


# -- error texts ---------------------------------------------------------------------------------


def not_in_schedule(value: float, schedule: Array) -> ValueError:
    return ValueError(
        f"`timestep` {value!r} is not in the schedule; allowed are the values of "
        f"`timesteps`: {np.asarray(schedule).tolist()}"
    )


def all_stepped(n: int) -> ValueError:
    return ValueError(
        f"the schedule has {n} timesteps and all were stepped; "
        "call `set_timesteps(...)` again to sample anew"
    )


def timesteps_per_batch(batch: int, got: object) -> ValueError:
    return ValueError(
        f"`timesteps` must hold one model time per batch element ({batch}) or one for the "
        f"whole batch, got {got}"
    )


# -- the host-side lookup ------------------------------------------------------------------------


def lookup(value: float, schedule: Array) -> int:
    """Position of the model time `value` in `schedule`; the second one if it occurs more than
    once (diffusers' rule, so that starting mid-schedule does not skip a sigma)."""
    (positions,) = np.nonzero(schedule == value)
    if len(positions) == 0:
        raise not_in_schedule(value, schedule)
    return int(positions[1] if len(positions) > 1 else positions[0])


class SchedulerBookkeeping:
    """The configuration, the schedule's index lists, the step and begin index and the lookups
    of diffusers' scheduler API; the array backends subclass it (module docstring)."""

    order = 1

    def __init__(
        self,
        num_train_timesteps: int = DEFAULTS["num_train_timesteps"],
        sigma_min: float = DEFAULTS["sigma_min"],
        sigma_max: float = DEFAULTS["sigma_max"],
        sigma_data: float = DEFAULTS["sigma_data"],
        s_noise: float = DEFAULTS["s_noise"],
        rho: float = DEFAULTS["rho"],
        clip_denoised: bool = DEFAULTS["clip_denoised"],
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
        self.num_inference_steps: int | None = None
        self.custom_timesteps = False
        self.is_scale_input_called = False
        self._init_backend()
        # Before `set_timesteps`: the whole N-point training grid, as diffusers has it.
        self._install(None, None)

    @property
    def config(self) -> SchedulerConfig:
        """The constructor arguments (`config.rho` or `config["rho"]`)."""
        return self._config

    def __len__(self) -> int:
        return self.num_train_timesteps

    # -- the schedule ----------------------------------------------------------------------------

    def inference_indices(self, n: int) -> tuple[int, ...]:
        """`set_timesteps(num_inference_steps=n)`: `arange(n) * (N // n)`, reversed."""
        spacing = self.num_train_timesteps // n
        return tuple(range((n - 1) * spacing, -1, -spacing))

    def ramp_indices(self, indices: ArrayLike, custom: bool) -> NDArray[np.int64]:
        """The descending index list reversed (diffusers): the ramp i / (N - 1) ascends, index 0
        is sigma_max."""
        return np.asarray(indices)[::-1]

    def _sigmas_at(self, ramp_indices: ArrayLike) -> Array:
        """Karras sigmas at the ramps i / (N - 1), the weights rounded from the integers."""
        return formulas.karras_sigma_at(
            ramp_indices, self.num_train_timesteps, self.sigma_min, self.sigma_max, self.rho
        )

    def sigma_to_t(self, sigmas: ArrayLike) -> Array:
        """Model times t = 250 log(sigma + 1e-44), float64."""
        return formulas.sigma_to_t(sigmas)

    def host_schedule(self, indices: tuple | None, custom: bool = False) -> HostSchedule:
        """The float64 schedule of a descending index list; None: the training schedule, the
        N points of the grid without sigma_min appended."""
        if indices is None:
            sigmas = self._sigmas_at(np.arange(self.num_train_timesteps))
            return HostSchedule.of(sigmas, self.sigma_to_t(sigmas), self.sigma_min)
        points = self._sigmas_at(self.ramp_indices(indices, custom))
        sigmas = np.concatenate([points, [self.sigma_min]])
        return HostSchedule.of(sigmas, np.asarray(self.sigma_to_t(points)), self.sigma_min)

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: Any = None,
        timesteps: ArrayLike | None = None,
    ) -> None:
        """Choose the time points tau_1 > ... > tau_n of Algorithm 1.

        Either `num_inference_steps=n` (indices `arange(n) * (N // n)`, reversed) or
        `timesteps`, strictly descending integer indices in [0, N - 1]. As in diffusers,
        the ramp is the reversed index list divided by N - 1: index 0 is sigma_max and
        the list is walked from its end, so `timesteps=[22, 0]` with N = 40 gives sigmas
        [sigma_max, sigma(22/39)]; `sigma_min` is appended as the final sigma. `device` is
        where the backend keeps the schedule (the numpy scheduler: None or "cpu").
        """
        validation.check_set_timesteps_args(num_inference_steps, timesteps)
        N = self.num_train_timesteps
        custom = timesteps is not None
        if custom:
            indices = tuple(validation.check_custom_timesteps(timesteps, N))
        else:
            indices = self.inference_indices(
                validation.check_num_inference_steps(num_inference_steps, N)
            )
        self._install(indices, device, custom)
        self.custom_timesteps = custom
        self.num_inference_steps = len(indices)

    def _install(self, indices: tuple | None, device: Any, custom: bool = False) -> None:
        """Make the schedule of `indices` (None: the training schedule) the current one."""
        self._use_schedule(indices, device, custom)
        self._step_index: int | None = None
        self._begin_index: int | None = None

    def _init_backend(self) -> None:
        """The backend's state beyond the bookkeeping, made before the first schedule."""

    def _use_schedule(self, indices: tuple | None, device: Any, custom: bool) -> None:
        """The backend's: build (or reuse) the schedule's arrays and set `self._host`."""
        raise NotImplementedError

    # -- the step index --------------------------------------------------------------------------

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
        self._begin_index = validation.check_int("begin_index", begin_index, 0, self._host.n - 1)

    def _first_index(self, timestep: Any) -> int:
        """Where the first step starts: `begin_index`, else the position of `timestep`."""
        if self._begin_index is not None:
            return self._begin_index
        return self.index_for_timestep(timestep)

    def _current_index(self, timestep: Any) -> int:
        """The index of the step being made (or scaled for). Nothing is stored here: the caller
        stores it once its own checks have passed, so a failed call changes nothing."""
        i = self._first_index(timestep) if self._step_index is None else self._step_index
        if i >= self._host.n:
            raise all_stepped(self._host.n)
        return i

    # -- lookups ---------------------------------------------------------------------------------

    def index_for_timestep(self, timestep: Any, schedule_timesteps: Any = None) -> int:
        """Position of `timestep` in the schedule; the second one if it occurs more than once
        (diffusers' rule, so that starting mid-schedule does not skip a sigma). Compared on
        the host (a device tensor is read)."""
        value = self._host_timestep(timestep)
        if schedule_timesteps is None:
            return lookup(value, self._host.timesteps)
        return lookup(value, self._host_schedule_timesteps(schedule_timesteps))

    def _add_noise_indices(self, timesteps: Any, batch: int | None) -> list[int]:
        """The schedule positions whose sigmas `add_noise` uses, one per batch element or one
        for the whole batch: the positions of `timesteps` (training, or a pipeline that set
        no begin index); the step index after the first step (inpainting); the begin index
        before it (img2img)."""
        times = self._host_timesteps(timesteps)
        if batch is not None and len(times) not in (1, batch):
            raise timesteps_per_batch(batch, len(times))
        if self._begin_index is None:
            return [self.index_for_timestep(t) for t in times]
        if self._step_index is not None:
            return [self._step_index] * len(times)
        return [self._begin_index] * len(times)

    def _host_timestep(self, timestep: Any) -> float:
        """The backend's: one model time as a Python float."""
        raise NotImplementedError

    def _host_timesteps(self, timesteps: Any) -> list[float]:
        """The backend's: a 0-dim or 1-D batch of model times as Python floats."""
        raise NotImplementedError

    def _host_schedule_timesteps(self, schedule_timesteps: Any) -> Array:
        """The backend's: a schedule passed to `index_for_timestep` as a float64 array."""
        return np.asarray(schedule_timesteps, dtype=np.float64)
