"""`CMStochasticIterativeScheduler` in float64 numpy: the reference.

The public API is the one of diffusers' class of the same name (diffusers
0.42.1, `schedulers/scheduling_consistency_models.py`), so that a reader can
hold the two side by side; the arithmetic is in `reference.formulas`, one
function per equation of the paper. Two things differ on purpose:

- everything is float64, the schedule too (diffusers keeps `sigmas` in
  float32, so its float64 runs are only float32-accurate);
- the noise added after the last evaluation has scale exactly 0,
  sqrt(sigma_min^2 - sigma_min^2), and bad arguments raise `ValueError` or
  `TypeError` naming the argument instead of failing deep inside.

No torch import: samples are numpy arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference import formulas, validation
from reference.step_output import CMStochasticIterativeSchedulerOutput


class SchedulerConfig(dict):
    """The constructor arguments, readable as `config["rho"]` and as `config.rho` (like diffusers')."""

    def __getattr__(self, name: str) -> object:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class CMStochasticIterativeScheduler:
    """Multistep consistency sampling (CM Algorithm 1), in diffusers' scheduler API.

    Typical loop, as `ConsistencyModelPipeline` runs it:

        scheduler.set_timesteps(timesteps=[22, 0])          # or num_inference_steps=n
        x = sigma_max * rng.standard_normal(shape)         # x_T, Algorithm 1 line 1
        for t in scheduler.timesteps:
            F = network(scheduler.scale_model_input(x, t), t)
            x = scheduler.step(F, t, x, generator=rng).prev_sample
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
        self.config = SchedulerConfig(
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
        # Before `set_timesteps`: the whole N-point training grid, as diffusers has it.
        self.sigmas = self._sigmas_at(np.arange(self.num_train_timesteps))
        self.timesteps = self.sigma_to_t(self.sigmas)
        self.num_inference_steps: int | None = None
        self.custom_timesteps = False
        self._step_index: int | None = None
        self._begin_index: int | None = None

    # -- schedule ---------------------------------------------------------------------------

    def _convert_to_karras(self, ramp: ArrayLike) -> NDArray[np.float64]:
        """Karras sigmas at ramp values in [0, 1] (diffusers' method of the same name)."""
        return formulas.karras_sigma(ramp, self.sigma_min, self.sigma_max, self.rho)

    def _sigmas_at(self, ramp_indices: ArrayLike) -> NDArray[np.float64]:
        """Karras sigmas at the ramps i / (N - 1), the weights rounded from the integers."""
        return formulas.karras_sigma_at(
            ramp_indices, self.num_train_timesteps, self.sigma_min, self.sigma_max, self.rho
        )

    def sigma_to_t(self, sigmas: ArrayLike) -> NDArray[np.float64]:
        """Model times t = 250 log(sigma + 1e-44), float64."""
        return formulas.sigma_to_t(sigmas)

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: object = None,
        timesteps: ArrayLike | None = None,
    ) -> None:
        """Choose the time points tau_1 > ... > tau_{n} of Algorithm 1.

        Either `num_inference_steps=n` (indices `arange(n) * (N // n)`, reversed) or
        `timesteps`, strictly descending integer indices in [0, N - 1]. As in diffusers,
        the ramp is the reversed index list divided by N - 1: index 0 is sigma_max and
        the list is walked from its end, so `timesteps=[22, 0]` with N = 40 gives sigmas
        [sigma_max, sigma(22/39)]; `sigma_min` is appended as the final sigma.
        `device` exists for API parity with diffusers and must be None or "cpu".
        """
        validation.check_set_timesteps_args(num_inference_steps, timesteps)
        if device is not None and str(device) != "cpu":
            raise ValueError(
                f"`device` must be None or 'cpu' for the numpy scheduler, got {device!r}"
            )
        N = self.num_train_timesteps
        if timesteps is not None:
            indices = np.array(validation.check_custom_timesteps(timesteps, N), dtype=np.int64)
            self.num_inference_steps = len(indices)
            self.custom_timesteps = True
        else:
            n = validation.check_num_inference_steps(num_inference_steps, N)
            indices = (np.arange(n, dtype=np.int64) * (N // n))[::-1]
            self.num_inference_steps = n
            self.custom_timesteps = False
        # diffusers reverses the index list and divides by N - 1 to get the ramp.
        sigmas = self._sigmas_at(indices[::-1])
        self.timesteps = self.sigma_to_t(sigmas)
        self.sigmas = np.concatenate([sigmas, [self.sigma_min]])
        self._step_index = None
        self._begin_index = None

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
        n = len(self.timesteps)
        self._begin_index = validation.check_int("begin_index", begin_index, 0, n - 1)

    def index_for_timestep(
        self, timestep: ArrayLike, schedule_timesteps: ArrayLike | None = None
    ) -> int:
        """Position of `timestep` in the schedule; the second one if it occurs more than once
        (diffusers' rule, so that starting mid-schedule does not skip a sigma)."""
        schedule = self.timesteps if schedule_timesteps is None else np.asarray(schedule_timesteps)
        value = _as_float_array("timestep", timestep)
        if value.ndim != 0:
            raise ValueError(f"`timestep` must be a scalar, got an array of shape {value.shape}")
        (positions,) = np.nonzero(schedule == value)
        if len(positions) == 0:
            raise ValueError(
                f"`timestep` {float(value)!r} is not in the schedule; allowed are the values of "
                f"`timesteps`: {np.asarray(schedule).tolist()}"
            )
        return int(positions[1] if len(positions) > 1 else positions[0])

    def _init_step_index(self, timestep: ArrayLike) -> None:
        if self._begin_index is None:
            self._step_index = self.index_for_timestep(timestep)
        else:
            self._step_index = self._begin_index

    def _current_sigma(self, timestep: ArrayLike) -> float:
        if self._step_index is None:
            self._init_step_index(timestep)
        n = len(self.timesteps)
        if self._step_index >= n:
            raise ValueError(
                f"the schedule has {n} timesteps and all were stepped; "
                "call `set_timesteps(...)` again to sample anew"
            )
        # diffusers ignores `timestep` once stepping has begun; a different one is a caller's
        # mistake that would otherwise go unnoticed.
        expected = self.timesteps[self._step_index]
        value = _as_float_array("timestep", timestep)
        if value.ndim != 0 or value != expected:
            raise ValueError(
                f"`timestep` must be the schedule's next one, timesteps[{self._step_index}] = "
                f"{float(expected)!r} (step {self._step_index + 1} of {n}), got {timestep!r}"
            )
        return self.sigmas[self._step_index]

    # -- Algorithm 1 ------------------------------------------------------------------------

    def scale_model_input(self, sample: ArrayLike, timestep: ArrayLike) -> NDArray[np.float64]:
        """c_in(sigma) x: the network's input, x / sqrt(sigma^2 + sigma_data^2)."""
        x = _as_float_array("sample", sample)
        sigma = self._current_sigma(timestep)
        return x * formulas.c_in(sigma, self.sigma_data)

    def get_scalings(self, sigma: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """EDM's (c_skip, c_out), without the boundary shift."""
        return formulas.edm_scalings(sigma, self.sigma_data)

    def get_scalings_for_boundary_condition(
        self, sigma: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(c_skip, c_out) of CM Appendix C, exact at sigma = sigma_min."""
        return formulas.boundary_scalings(sigma, self.sigma_min, self.sigma_data)

    def step(
        self,
        model_output: ArrayLike,
        timestep: ArrayLike,
        sample: ArrayLike,
        generator: np.random.Generator | None = None,
        return_dict: bool = True,
        noise: ArrayLike | None = None,
    ) -> CMStochasticIterativeSchedulerOutput | tuple[NDArray[np.float64]]:
        """One pass of Algorithm 1's loop: evaluate f at sigma, then re-noise to the next sigma.

        x0 = clamp(c_skip x + c_out F)                     (eq. 5; Algorithm 1 line 2 / 6)
        x  = x0 + s_noise z sqrt(sigma_next^2 - eps^2)     (Algorithm 1 line 5)

        `noise` injects z (a standard-normal array of the sample's shape); otherwise
        `generator` (a `numpy.random.Generator`, a fresh one if None) draws it. With a
        single timestep (one-step sampling) no noise is drawn.
        """
        F = _as_float_array("model_output", model_output)
        x = _as_float_array("sample", sample)
        if F.shape != x.shape:
            raise ValueError(
                f"`model_output` and `sample` must have the same shape, got {F.shape} and {x.shape}"
            )
        sigma = self._current_sigma(timestep)
        # The next sigma; after the training schedule's last point (no sigma_min appended:
        # that point is sigma_min itself), sigma_min, as diffusers takes `sigmas[-1]` there.
        i_next = self._step_index + 1
        sigma_next = self.sigmas[i_next] if i_next < len(self.sigmas) else self.sigma_min
        sigma_next = np.clip(sigma_next, self.sigma_min, self.sigma_max)

        c_skip, c_out = self.get_scalings_for_boundary_condition(sigma)
        x0 = formulas.clamp(formulas.consistency_function(F, x, c_skip, c_out), self.clip_denoised)
        z = self._standard_normal(x.shape, generator, noise)
        prev_sample = formulas.renoise(x0, z, self.s_noise, sigma_next, self.sigma_min)

        self._step_index += 1
        if not return_dict:
            return (prev_sample,)
        return CMStochasticIterativeSchedulerOutput(prev_sample=prev_sample)

    def _standard_normal(
        self, shape: tuple[int, ...], generator: np.random.Generator | None, noise: ArrayLike | None
    ) -> NDArray[np.float64]:
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(
                "`generator` must be a numpy.random.Generator or None, got "
                f"{type(generator).__name__}"
            )
        if len(self.timesteps) == 1:
            return np.zeros(shape)  # one-step sampling: nothing to re-noise
        if noise is not None:
            z = _as_float_array("noise", noise)
            if z.shape != shape:
                raise ValueError(f"`noise` must have the sample's shape {shape}, got {z.shape}")
            return z
        if generator is None:
            generator = np.random.default_rng()
        return generator.standard_normal(shape)

    def add_noise(
        self, original_samples: ArrayLike, noise: ArrayLike, timesteps: ArrayLike
    ) -> NDArray[np.float64]:
        """x0 + noise * sigma(t), one model time t per batch element (the first axis), or
        one (0-dim or one element) for the whole batch, as diffusers broadcasts it."""
        x0 = _as_float_array("original_samples", original_samples)
        z = _as_float_array("noise", noise)
        if z.shape != x0.shape:
            raise ValueError(
                f"`noise` must have the shape of `original_samples` {x0.shape}, got {z.shape}"
            )
        t = np.atleast_1d(np.asarray(timesteps, dtype=np.float64))
        if t.ndim != 1 or (x0.ndim > 0 and len(t) not in (1, x0.shape[0])):
            raise ValueError(
                f"`timesteps` must hold one model time per batch element ({x0.shape[:1]}) or "
                f"one for the whole batch, got shape {t.shape}"
            )
        if self._begin_index is None:
            indices = [self.index_for_timestep(ti) for ti in t]
        elif self._step_index is not None:
            indices = [self._step_index] * len(t)  # called after the first step (inpainting)
        else:
            indices = [self._begin_index] * len(t)  # called before it (img2img)
        sigma = self.sigmas[indices].reshape((-1,) + (1,) * (x0.ndim - 1))
        return x0 + z * sigma

    def __len__(self) -> int:
        return self.num_train_timesteps


def _as_float_array(name: str, value: ArrayLike) -> NDArray[np.float64]:
    """A float64 copy-free view of a real array; refuses complex, object and non-numeric input."""
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        raise TypeError(f"`{name}` must be a real numeric array ({exc})") from exc
    if array.dtype == np.bool_ or array.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)
