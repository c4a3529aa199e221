"""`CMStochasticIterativeScheduler` in float64 numpy: the reference.

The public API is the one of diffusers' class of the same name (diffusers
0.42.1, `schedulers/scheduling_consistency_models.py`), so that a reader can
hold the two side by side; the arithmetic is in `reference.numpy_reference.formulas`, one
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

from reference.numpy_reference import formulas, validation
from reference.numpy_reference.bookkeeping import (
    HostSchedule,
    SchedulerBookkeeping,
    SchedulerConfig,
)
from reference.numpy_reference.step_output import CMStochasticIterativeSchedulerOutput

__all__ = [
    "CMStochasticIterativeScheduler",
    "CMStochasticIterativeSchedulerOutput",
    "SchedulerConfig",
]


class CMStochasticIterativeScheduler(SchedulerBookkeeping):
    """Multistep consistency sampling (CM Algorithm 1), in diffusers' scheduler API.

    Typical loop, as `ConsistencyModelPipeline` runs it:

        scheduler.set_timesteps(timesteps=[22, 0])          # or num_inference_steps=n
        x = sigma_max * rng.standard_normal(shape)         # x_T, Algorithm 1 line 1
        for t in scheduler.timesteps:
            F = network(scheduler.scale_model_input(x, t), t)
            x = scheduler.step(F, t, x, generator=rng).prev_sample

    The configuration, the schedule's index lists, the step and begin index and the
    lookups are `reference.numpy_reference.bookkeeping`'s; this class holds the arrays and
    the arithmetic.
    """

    # -- schedule ---------------------------------------------------------------------------

    def _use_schedule(self, indices: tuple | None, device: object, custom: bool) -> None:
        # `device` exists for API parity with diffusers.
        if device is not None and str(device) != "cpu":
            raise ValueError(
                f"`device` must be None or 'cpu' for the numpy scheduler, got {device!r}"
            )
        self._host: HostSchedule = self.host_schedule(indices, custom)
        self.timesteps = self._host.timesteps.copy()
        self.sigmas = self._host.sigmas.copy()

    # -- host values ------------------------------------------------------------------------

    def _host_timestep(self, timestep: ArrayLike) -> float:
        value = _as_float_array("timestep", timestep)
        if value.ndim != 0:
            raise ValueError(f"`timestep` must be a scalar, got an array of shape {value.shape}")
        return float(value)

    def _host_timesteps(self, timesteps: ArrayLike) -> list[float]:
        t = np.atleast_1d(_as_float_array("timesteps", timesteps))
        if t.ndim != 1:
            raise ValueError(f"`timesteps` must be 0-dim or 1-D, got shape {t.shape}")
        return t.tolist()

    def _sigma(self, timestep: ArrayLike) -> tuple[int, float]:
        """The index of the step being made and its sigma. diffusers ignores `timestep` once
        stepping has begun; a different one is a caller's mistake that would otherwise go
        unnoticed, so it must be the schedule's next one."""
        i = self._current_index(timestep)
        expected = self._host.timesteps[i]
        value = _as_float_array("timestep", timestep)
        if value.ndim != 0 or value != expected:
            raise ValueError(
                f"`timestep` must be the schedule's next one, timesteps[{i}] = "
                f"{float(expected)!r} (step {i + 1} of {self._host.n}), got {timestep!r}"
            )
        return i, self._host.sigmas[i]

    # -- Algorithm 1 ------------------------------------------------------------------------

    def scale_model_input(self, sample: ArrayLike, timestep: ArrayLike) -> NDArray[np.float64]:
        """c_in(sigma) x: the network's input, x / sqrt(sigma^2 + sigma_data^2)."""
        x = _as_float_array("sample", sample)
        i, sigma = self._sigma(timestep)
        self._step_index = i
        self.is_scale_input_called = True
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
        x  = x0 + s_noise z sqrt(tau^2 - eps^2)            (Algorithm 1 line 5; `formulas.tau`)

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
        i, sigma = self._sigma(timestep)
        tau = formulas.tau(self._host.sigmas_next[i], self.sigma_min, self.sigma_max)

        c_skip, c_out = self.get_scalings_for_boundary_condition(sigma)
        x0 = formulas.clamp(formulas.consistency_function(F, x, c_skip, c_out), self.clip_denoised)
        z = self._standard_normal(x.shape, generator, noise)
        prev_sample = formulas.renoise(x0, z, self.s_noise, tau, self.sigma_min)

        self._step_index = i + 1
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
        if self._host.n == 1:
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
        validation.check_shape("noise", z.shape, "original_samples", x0.shape)
        indices = self._add_noise_indices(timesteps, x0.shape[0] if x0.ndim else None)
        sigma = self._host.sigmas[indices].reshape((-1,) + (1,) * (x0.ndim - 1))
        return x0 + z * sigma


def _as_float_array(name: str, value: ArrayLike) -> NDArray[np.float64]:
    """A float64 copy-free view of a real array; refuses complex, object and non-numeric input."""
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        raise TypeError(f"`{name}` must be a real numeric array ({exc})") from exc
    if array.dtype == np.bool_ or array.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)
