"""The mutants: correct implementations with one realistic bug each.

Each is a small subclass of `TorchBase` (the torch scheduler with hooks, `base.py`) or of
the numpy reference, overriding the one line that carries its bug; its docstring says the
bug. `MUTANTS` lists them with the SPEC.md clauses each must fail (`breaks`) and the sample
dtypes the CI check runs them on (`dtypes`: where the bug shows; the kill matrix runs every
claimed dtype). Where a bug is a known one of a real implementation, the docstring says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from reference.numpy_reference import formulas, validation
from reference.numpy_reference.bookkeeping import HostSchedule
from reference.torch_scheduler.scheduler import randn_like_diffusers
from tests.mutants.base import Array, NumpyBase, TorchBase


@dataclass(frozen=True)
class Mutant:
    """A planted bug and the clauses that must catch it (for a survivor: the clauses whose
    tests should catch it, and the gap that lets it through)."""

    name: str
    scheduler: type
    breaks: tuple[str, ...]
    dtypes: tuple[str, ...] = ("float64",)
    gap: str = ""

    @property
    def bug(self) -> str:
        return (self.scheduler.__doc__ or "").strip().splitlines()[0]


def _np_or_tensor(sigmas: Any) -> Any:
    return sigmas if isinstance(sigmas, torch.Tensor) else np.asarray(sigmas, dtype=np.float64)


# -- scalings (SCAL, STEP-1) -------------------------------------------------------------------


class EdmScalings(TorchBase):
    """EDM's scalings instead of the boundary ones: c_skip(eps) != 1, c_out(eps) != 0."""

    def boundary(self, sigma: Any) -> tuple[Any, Any]:
        return self.edm(sigma)


class CSkipSign(TorchBase):
    """c_skip = sd^2 / ((sigma + eps)^2 + sd^2): the shift with the wrong sign."""

    def boundary(self, sigma: Any) -> tuple[Any, Any]:
        _, c_out = super().boundary(sigma)
        sd, eps = self.sigma_data, self.sigma_min
        return sd**2 / ((sigma + eps) ** 2 + sd**2), c_out


class COutShiftedDenominator(TorchBase):
    """c_out = (sigma - eps) sd / sqrt((sigma - eps)^2 + sd^2): the shift also under the root."""

    def boundary(self, sigma: Any) -> tuple[Any, Any]:
        c_skip, _ = super().boundary(sigma)
        sd, eps = self.sigma_data, self.sigma_min
        return c_skip, (sigma - eps) * sd / ((sigma - eps) ** 2 + sd**2) ** 0.5


class COutUnshifted(TorchBase):
    """c_out = sigma sd / sqrt(sigma^2 + sd^2), no eps shift (PyPI `consistency`): f(x, eps) != x."""

    def boundary(self, sigma: Any) -> tuple[Any, Any]:
        c_skip, _ = super().boundary(sigma)
        sd = self.sigma_data
        return c_skip, sigma * sd / (sigma**2 + sd**2) ** 0.5


class SigmaDataSquared(TorchBase):
    """c_out = (sigma - eps) sd^2 / sqrt(sigma^2 + sd^2): sigma_data squared in the numerator."""

    def boundary(self, sigma: Any) -> tuple[Any, Any]:
        c_skip, _ = super().boundary(sigma)
        sd, eps = self.sigma_data, self.sigma_min
        return c_skip, (sigma - eps) * sd**2 / (sigma**2 + sd**2) ** 0.5


class COutTenthPercent(TorchBase):
    """c_out 0.1 % too large (a constant rounded once too often)."""

    def boundary(self, sigma: Any) -> tuple[Any, Any]:
        c_skip, c_out = super().boundary(sigma)
        return c_skip, c_out * 1.001


class EdmCOutNoSqrt(TorchBase):
    """EDM's c_out = sigma sd / (sigma^2 + sd^2), the square root forgotten (get_scalings)."""

    def edm(self, sigma: Any) -> tuple[Any, Any]:
        c_skip, _ = super().edm(sigma)
        sd = self.sigma_data
        return c_skip, sigma * sd / (sigma**2 + sd**2)


# -- the noise (STEP-3, STEP-4, NOISE) -----------------------------------------------------------


class NoiseSigmaNext(TorchBase):
    """Noise scale s sigma_next: sigma_min not removed (sqrt(tau^2 - eps^2) -> tau)."""

    def noise(self, sigma: Array, sigma_next: Array) -> Array:
        return self.s_noise * np.clip(sigma_next, self.sigma_min, self.sigma_max)


class NoiseCurrentSigma(TorchBase):
    """Noise scale s sqrt(sigma^2 - eps^2) at the current sigma instead of the next one."""

    def noise(self, sigma: Array, sigma_next: Array) -> Array:
        return self.s_noise * formulas.noise_scale(sigma, self.sigma_min)


class NoiseVariance(TorchBase):
    """Noise scaled by the variance s (tau^2 - eps^2) instead of its square root."""

    def noise(self, sigma: Array, sigma_next: Array) -> Array:
        tau = np.clip(sigma_next, self.sigma_min, self.sigma_max)
        return self.s_noise * (tau**2 - self.sigma_min**2)


class SNoiseIgnored(TorchBase):
    """s_noise ignored: the noise scale is sqrt(tau^2 - eps^2) whatever s_noise is."""

    def noise(self, sigma: Array, sigma_next: Array) -> Array:
        tau = np.clip(sigma_next, self.sigma_min, self.sigma_max)
        return formulas.noise_scale(tau, self.sigma_min)


class SNoiseSquared(TorchBase):
    """s_noise applied twice: the noise scale is s^2 sqrt(tau^2 - eps^2)."""

    def noise(self, sigma: Array, sigma_next: Array) -> Array:
        return self.s_noise * super().noise(sigma, sigma_next)


class GeneratorIgnored(TorchBase):
    """The generator is ignored: noise comes from torch's global RNG."""

    def _standard_normal(self, F: Any, x: Any, generator: Any, noise: Any) -> Any:
        return super()._standard_normal(F, x, None, noise)


class NoiseDrawnInFloat32(TorchBase):
    """Noise drawn in float32 whatever the sample dtype (other numbers than diffusers' draw)."""

    def _standard_normal(self, F: Any, x: Any, generator: Any, noise: Any) -> Any:
        return super()._standard_normal(F.to(torch.float32), x, generator, noise)


class InjectedNoiseIgnored(TorchBase):
    """`noise=` accepted and ignored: the step draws its own."""

    def _standard_normal(self, F: Any, x: Any, generator: Any, noise: Any) -> Any:
        return super()._standard_normal(F, x, generator, None)


class UniformNoise(TorchBase):
    """Noise from torch.rand (uniform on [0, 1)) instead of torch.randn."""

    def _standard_normal(self, F: Any, x: Any, generator: Any, noise: Any) -> Any:
        if noise is not None or self._host.n == 1:
            return super()._standard_normal(F, x, generator, noise)
        return torch.rand(tuple(x.shape), generator=generator, dtype=F.dtype)


class OneStepDraws(TorchBase):
    """One-step sampling draws noise (scaled by 0, but the generator advances)."""

    def _standard_normal(self, F: Any, x: Any, generator: Any, noise: Any) -> Any:
        if self._host.n == 1 and noise is None:
            return randn_like_diffusers(tuple(x.shape), generator, x.device, F.dtype)
        return super()._standard_normal(F, x, generator, noise)


# -- the clamp (STEP-1, STEP-2) ----------------------------------------------------------------


class ClampIgnored(TorchBase):
    """The clamp never applied: `clip_denoised` is stored in the config but not honoured."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clip_denoised = False


class ClampAlways(TorchBase):
    """The clamp always applied, even with clip_denoised = False."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clip_denoised = True


class ClampAfterNoise(TorchBase):
    """The clamp applied to prev_sample, after the noise is added, instead of to denoised."""

    def step(self, *args: Any, **kwargs: Any) -> Any:
        clip, self.clip_denoised = self.clip_denoised, False
        try:
            out = super().step(*args, **kwargs)
        finally:
            self.clip_denoised = clip
        if clip:
            out[0].clamp_(-1.0, 1.0)
        return out


# -- the schedule (SCHED, TIME) -----------------------------------------------------------------


class RampOverN(TorchBase):
    """The ramp divided by N instead of N - 1: sigma_min never reached."""

    def _sigmas_at(self, ramp_indices: ArrayLike) -> Array:
        ramp = np.asarray(ramp_indices, dtype=np.float64) / self.num_train_timesteps
        return formulas.karras_sigma(ramp, self.sigma_min, self.sigma_max, self.rho)


class CustomNotReversed(TorchBase):
    """Custom timesteps not reversed: the ramp walks the list from its start (sigmas ascend)."""

    def ramp_indices(self, indices: Any, custom: bool) -> Any:
        return indices if custom else super().ramp_indices(indices, custom)


class TrueDivisionSpacing(TorchBase):
    """The default spacing with true division: arange(n) * (N / n), fractional ramps."""

    def inference_indices(self, n: int) -> Any:
        N = self.num_train_timesteps
        return (np.arange(n) * (N / n))[::-1]


class RhoIgnored(TorchBase):
    """rho ignored: the schedule always uses rho = 7."""

    def _sigmas_at(self, ramp_indices: ArrayLike) -> Array:
        N = self.num_train_timesteps
        return formulas.karras_sigma_at(ramp_indices, N, self.sigma_min, self.sigma_max, 7.0)


class ScheduleFloat16(TorchBase):
    """The schedule rounded through float16 (a half-precision buffer)."""

    def _sigmas_at(self, ramp_indices: ArrayLike) -> Array:
        return super()._sigmas_at(ramp_indices).astype(np.float16).astype(np.float64)


class ScheduleFloat32(TorchBase):
    """The schedule stored in float32 (diffusers 0.42.1): float32 accuracy on float64 samples."""

    def _sigmas_at(self, ramp_indices: ArrayLike) -> Array:
        return super()._sigmas_at(ramp_indices).astype(np.float32).astype(np.float64)


class AppendedZero(TorchBase):
    """The schedule ends with 0 instead of sigma_min (k-diffusion's `get_sigmas_karras`)."""

    def host_schedule(self, indices: Any, custom: bool = False) -> HostSchedule:
        host = super().host_schedule(indices, custom)
        if indices is None:  # the training schedule has no appended end
            return host
        return HostSchedule.of(np.append(host.sigmas[:-1], 0.0), host.timesteps, self.sigma_min)


class TimestepsFloat32(TorchBase):
    """`timesteps` kept in float32 (the model's dtype) instead of float64."""

    def _use_schedule(self, indices: Any, device: Any, custom: bool) -> None:
        super()._use_schedule(indices, device, custom)
        self.timesteps = self.timesteps.to(torch.float32)


class ModelTimeOffset(TorchBase):
    """Model time 250 ln(sigma + 1e-4): a wrong offset (1e-4 for 1e-44)."""

    def sigma_to_t(self, sigmas: Any) -> Any:
        return super().sigma_to_t(_np_or_tensor(sigmas) + 1e-4)


class ModelTimeConstant(TorchBase):
    """Model time 1000 ln(sigma): the factor 0.25 dropped."""

    def sigma_to_t(self, sigmas: Any) -> Any:
        return 4 * super().sigma_to_t(sigmas)


# -- the model input (CIN) ------------------------------------------------------------------------


class CInNoSqrt(TorchBase):
    """scale_model_input divides by sigma^2 + sd^2, without the square root."""

    def c_in(self, sigma: Array) -> Array:
        return 1.0 / (sigma**2 + self.sigma_data**2)


class CInUnitSigmaData(TorchBase):
    """scale_model_input with sigma_data = 1: x / sqrt(sigma^2 + 1)."""

    def c_in(self, sigma: Array) -> Array:
        return formulas.c_in(sigma, 1.0)


# -- configuration and bookkeeping (CFG-1, INDEX, STEP-6, STEP-7, SCHED-4) --------------------------


class InitNoiseVariance(TorchBase):
    """init_noise_sigma = sigma_max^2, the variance of x_T instead of its standard deviation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.init_noise_sigma = self.sigma_max**2


class LookupInFloat32(TorchBase):
    """index_for_timestep casts the timestep to float32 (the sample's dtype) before comparing."""

    def index_for_timestep(self, timestep: Any, schedule_timesteps: Any = None) -> int:
        if isinstance(timestep, torch.Tensor):
            timestep = timestep.to(torch.float32)
        return super().index_for_timestep(timestep, schedule_timesteps)


class DuplicatesFirst(NumpyBase):
    """index_for_timestep takes the first of two equal timesteps (diffusers takes the second)."""

    def index_for_timestep(self, timestep: ArrayLike, schedule_timesteps: Any = None) -> int:
        super().index_for_timestep(timestep, schedule_timesteps)  # refuses a missing timestep
        schedule = self.timesteps if schedule_timesteps is None else schedule_timesteps
        return int(np.argmax(np.asarray(schedule) == np.asarray(timestep, dtype=np.float64)))


class LookupUnguarded(NumpyBase):
    """A timestep not in the schedule raises IndexError from inside (diffusers 0.42.1)."""

    def index_for_timestep(self, timestep: ArrayLike, schedule_timesteps: Any = None) -> int:
        schedule = self.timesteps if schedule_timesteps is None else schedule_timesteps
        (positions,) = np.nonzero(np.asarray(schedule) == np.asarray(timestep, dtype=np.float64))
        return int(positions[1] if len(positions) > 1 else positions[0])


class BeginIndexIgnored(NumpyBase):
    """set_begin_index checks its argument and forgets it."""

    def set_begin_index(self, begin_index: int = 0) -> None:
        validation.check_int("begin_index", begin_index, 0, len(self.timesteps) - 1)


class StepIndexStuck(TorchBase):
    """step does not advance the step index: every step after the first reuses its sigma."""

    def step(self, *args: Any, **kwargs: Any) -> Any:
        out = super().step(*args, **kwargs)
        self._step_index -= 1
        return out


class PastEndUnguarded(TorchBase):
    """No check for stepping past the end: an IndexError from the table (diffusers 0.42.1)."""

    def _current_index(self, timestep: Any) -> int:
        return self._first_index(timestep) if self._step_index is None else self._step_index


class StaleStepIndex(TorchBase):
    """set_timesteps keeps the step index of the previous pass."""

    def set_timesteps(self, *args: Any, **kwargs: Any) -> None:
        kept = getattr(self, "_step_index", None)
        super().set_timesteps(*args, **kwargs)
        self._step_index = kept


# -- add_noise (ADD) --------------------------------------------------------------------------------


class AddNoiseVariance(TorchBase):
    """add_noise scales the noise by sigma^2 instead of sigma."""

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        sigma = super().add_noise(
            torch.zeros_like(original_samples), torch.ones_like(noise), timesteps
        )
        return original_samples + noise * sigma**2


class AddNoiseOneSigma(TorchBase):
    """add_noise uses the first batch element's sigma for the whole batch."""

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        first = timesteps[:1] if getattr(timesteps, "ndim", 0) else timesteps
        times = first.expand(original_samples.shape[0]) if original_samples.ndim else first
        return super().add_noise(original_samples, noise, times)


# -- the output contract (STEP-8, STEP-9) -----------------------------------------------------------


class OutputFloat32(TorchBase):
    """prev_sample promoted to float32 whatever the sample dtype."""

    def step(self, *args: Any, **kwargs: Any) -> Any:
        out = super().step(*args, **kwargs)
        prev = out[0].to(torch.float32)
        return type(out)(prev) if hasattr(out, "prev_sample") else (prev,)


class InputModified(TorchBase):
    """step writes its result into the caller's `sample` (to save a buffer)."""

    def step(self, model_output: Any, timestep: Any, sample: Any, *args: Any, **kwargs: Any) -> Any:
        out = super().step(model_output, timestep, sample, *args, **kwargs)
        sample.copy_(out[0])
        return out


# -- validation (CFG-2, SCHED-3) ---------------------------------------------------------------------


class ConfigCoerced(TorchBase):
    """num_train_timesteps coerced with int(): 2.5 and "40" accepted silently."""

    def __init__(self, num_train_timesteps: Any = 40, **config: Any) -> None:
        super().__init__(int(num_train_timesteps), **config)


class TimestepsTruncated(NumpyBase):
    """Custom timesteps converted with int(): 22.7 silently becomes 22 (diffusers 0.42.1)."""

    def set_timesteps(
        self, num_inference_steps: Any = None, device: Any = None, timesteps: Any = None
    ) -> None:
        if timesteps is not None:
            timesteps = [int(t) for t in timesteps]
        super().set_timesteps(num_inference_steps, device, timesteps)


# -- first found as survivors; the suite catches them since (ADD-2, NOISE-2, INDEX-3) -----------


class AddNoiseAfterStepUsesBegin(TorchBase):
    """add_noise after a step uses sigma at begin_index, not at the current step index."""

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        kept, self._step_index = self._step_index, None
        try:
            return super().add_noise(original_samples, noise, timesteps)
        finally:
            self._step_index = kept


class GeneratorListFirst(TorchBase):
    """A list of generators (one per batch element): the first one draws for the whole batch."""

    def _standard_normal(self, F: Any, x: Any, generator: Any, noise: Any) -> Any:
        if isinstance(generator, (list, tuple)):
            generator = generator[0]
        return super()._standard_normal(F, x, generator, noise)


class LastStepDrawsNothing(TorchBase):
    """No draw after the last evaluation (its scale is 0): the generator ends one draw behind."""

    def _standard_normal(self, F: Any, x: Any, generator: Any, noise: Any) -> Any:
        i = 0 if self._step_index is None else self._step_index
        if noise is None and i == self._host.n - 1:
            return torch.zeros_like(x)
        return super()._standard_normal(F, x, generator, noise)


class LookupWithTolerance(TorchBase):
    """index_for_timestep matches within a relative 1e-6: a float32-rounded time is accepted."""

    def index_for_timestep(self, timestep: Any, schedule_timesteps: Any = None) -> int:
        try:
            return super().index_for_timestep(timestep, schedule_timesteps)
        except ValueError:
            value = float(torch.as_tensor(timestep, dtype=torch.float64))
            close = np.isclose(self._host.timesteps, value, rtol=1e-6, atol=0.0)
            if schedule_timesteps is not None or not close.any():
                raise
            return int(np.argmax(close))


# -- bad input: once survivors, now caught by INDEX-5, STEP-11 and NOISE-4 ------------------------


class BeginIndexUnchecked(TorchBase):
    """set_begin_index stores any value: 99, -1 or 1.5 accepted, the failure comes later."""

    def set_begin_index(self, begin_index: Any = 0) -> None:
        self._begin_index = begin_index


class ModelOutputBroadcast(TorchBase):
    """step broadcasts a model_output of another shape (one batch element, say) to the sample's."""

    def step(self, model_output: Any, timestep: Any, sample: Any, *args: Any, **kwargs: Any) -> Any:
        return super().step(model_output.expand_as(sample), timestep, sample, *args, **kwargs)


class NoiseBroadcast(TorchBase):
    """step broadcasts an injected noise of another shape to the sample's."""

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        generator: Any = None,
        return_dict: bool = True,
        noise: Any = None,
    ) -> Any:
        if noise is not None:
            noise = noise.expand_as(sample)
        return super().step(model_output, timestep, sample, generator, return_dict, noise)


F64, F32, F16 = "float64", "float32", "float16"

#: Each mutant's exact landing (SPEC.md, "Verdicts"): its own clause, and the golden
#: counterpart that sees the same quantity on OpenAI's trajectories (GOLD-1 for the schedule,
#: GOLD-2 for the scalings and model times, GOLD-3 for the model input); a departure of the
#: step, which GOLD-3 and GOLD-4 see too, is the step clauses' alone (they defer to it: one
#: bug, one failure). A schedule error also fails TIME-1 (the times of a wrong schedule are
#: wrong). Where a bug breaks several stated behaviours, each is named (a float32 timestep
#: list breaks the lookups that index_for_timestep and add_noise make; a stuck step index
#: makes every later step use the first sigma, and its c_in).
MUTANTS: tuple[Mutant, ...] = (
    Mutant("edm_scalings", EdmScalings, ("SCAL-1", "SCAL-2", "STEP-1", "GOLD-2")),
    Mutant("c_skip_sign", CSkipSign, ("SCAL-1", "SCAL-2", "STEP-1", "GOLD-2")),
    Mutant(
        "c_out_shifted_denominator",
        COutShiftedDenominator,
        ("SCAL-1", "STEP-1", "GOLD-2"),
    ),
    Mutant("c_out_unshifted", COutUnshifted, ("SCAL-1", "SCAL-2", "STEP-1", "GOLD-2")),
    Mutant("sigma_data_squared", SigmaDataSquared, ("SCAL-1", "STEP-1", "GOLD-2")),
    Mutant(
        "c_out_tenth_percent",
        COutTenthPercent,
        ("SCAL-1", "STEP-1", "GOLD-2"),
        (F64, F32),
    ),
    Mutant("edm_c_out_no_sqrt", EdmCOutNoSqrt, ("SCAL-3", "GOLD-2")),
    Mutant("noise_sigma_next", NoiseSigmaNext, ("STEP-3", "STEP-4")),
    Mutant("noise_current_sigma", NoiseCurrentSigma, ("STEP-3", "STEP-4")),
    Mutant("noise_variance", NoiseVariance, ("STEP-3",)),
    Mutant("s_noise_ignored", SNoiseIgnored, ("STEP-3",)),
    Mutant("s_noise_squared", SNoiseSquared, ("STEP-3",)),
    Mutant("generator_ignored", GeneratorIgnored, ("NOISE-2", "STEP-10")),
    Mutant("noise_drawn_in_float32", NoiseDrawnInFloat32, ("NOISE-2",)),
    Mutant(
        "injected_noise_ignored",
        InjectedNoiseIgnored,
        ("STEP-3", "NOISE-1", "NOISE-4"),
    ),
    Mutant("uniform_noise", UniformNoise, ("NOISE-2", "NOISE-3")),
    Mutant("last_step_draws_nothing", LastStepDrawsNothing, ("NOISE-2",)),
    Mutant("generator_list_first", GeneratorListFirst, ("NOISE-2",)),
    Mutant("one_step_draws", OneStepDraws, ("STEP-5",)),
    Mutant("clamp_ignored", ClampIgnored, ("STEP-2",)),
    Mutant("clamp_always", ClampAlways, ("STEP-1",)),
    Mutant("clamp_after_noise", ClampAfterNoise, ("STEP-3",)),
    Mutant("ramp_over_n", RampOverN, ("SCHED-1", "SCHED-2", "TIME-1", "GOLD-1")),
    Mutant("custom_not_reversed", CustomNotReversed, ("SCHED-2", "TIME-1", "GOLD-1")),
    Mutant("true_division_spacing", TrueDivisionSpacing, ("SCHED-1",)),
    Mutant("rho_ignored", RhoIgnored, ("SCHED-1", "SCHED-2", "TIME-1")),
    Mutant("schedule_float16", ScheduleFloat16, ("SCHED-1", "SCHED-2", "TIME-1", "GOLD-1"), (F32,)),
    Mutant("schedule_float32", ScheduleFloat32, ("SCHED-1", "SCHED-2", "TIME-1", "GOLD-1")),
    Mutant("appended_zero", AppendedZero, ("SCHED-1", "SCHED-2")),
    Mutant("timesteps_float32", TimestepsFloat32, ("TIME-1", "INDEX-1", "ADD-1", "ADD-2")),
    Mutant("model_time_offset", ModelTimeOffset, ("TIME-1", "TIME-2", "GOLD-2")),
    Mutant("model_time_constant", ModelTimeConstant, ("TIME-1", "TIME-2", "GOLD-2")),
    Mutant("c_in_no_sqrt", CInNoSqrt, ("CIN-1", "GOLD-3")),
    Mutant("c_in_unit_sigma_data", CInUnitSigmaData, ("CIN-1", "GOLD-3")),
    Mutant("init_noise_variance", InitNoiseVariance, ("CFG-1",)),
    Mutant("lookup_in_float32", LookupInFloat32, ("INDEX-1", "INDEX-2")),
    Mutant("duplicates_first", DuplicatesFirst, ("INDEX-2",)),
    Mutant("lookup_unguarded", LookupUnguarded, ("INDEX-3",)),
    Mutant("lookup_with_tolerance", LookupWithTolerance, ("INDEX-3",)),
    Mutant("begin_index_ignored", BeginIndexIgnored, ("INDEX-4", "ADD-2")),
    Mutant(
        "step_index_stuck",
        StepIndexStuck,
        (
            "STEP-6",
            "STEP-1",
            "STEP-3",
            "STEP-4",
            "STEP-7",
            "CIN-1",
            "INDEX-4",
            "ADD-2",
            "GOLD-3",
        ),
    ),
    Mutant("past_end_unguarded", PastEndUnguarded, ("STEP-7",)),
    Mutant("stale_step_index", StaleStepIndex, ("SCHED-4",)),
    Mutant("add_noise_variance", AddNoiseVariance, ("ADD-1",)),
    Mutant("add_noise_one_sigma", AddNoiseOneSigma, ("ADD-1",)),
    Mutant("add_noise_after_step_uses_begin", AddNoiseAfterStepUsesBegin, ("ADD-2",)),
    # On float16 samples the promotion loses nothing: a dtype departure alone (on float64 the
    # cast to float32 is also an accuracy loss, which every value clause sees).
    Mutant("output_float32", OutputFloat32, ("STEP-9",), (F16,)),
    Mutant("input_modified", InputModified, ("STEP-8",)),
    Mutant("config_coerced", ConfigCoerced, ("CFG-2",)),
    Mutant("timesteps_truncated", TimestepsTruncated, ("SCHED-3",)),
    Mutant("begin_index_unchecked", BeginIndexUnchecked, ("INDEX-5",)),
    Mutant("model_output_broadcast", ModelOutputBroadcast, ("STEP-11",)),
    Mutant("noise_broadcast", NoiseBroadcast, ("NOISE-4",)),
)

#: Mutants the suite lets through: each names the clauses whose tests should catch it and the
#: gap. tests/test_mutants.py runs them as strict xfails: when the suite learns to catch one,
#: the test fails and the mutant moves to MUTANTS.
SURVIVORS: tuple[Mutant, ...] = ()
