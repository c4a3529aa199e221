"""The adapter protocol: how the suite reaches an implementation.

An implementation under test is reached through an `Adapter`. The suite's tests
call only the adapter's methods below, never the implementation directly, so that
one suite serves numpy, torch and anything else:

- the array bridge (`asarray`, `to_numpy`, `describe`, `copy`, `same_values`): moves
  the suite's float64 numpy test data into the implementation's arrays of a given
  dtype and device, and its results back; an adapter sets `bridge` to one of
  `conformance.protocol.bridges` (numpy, torch) or implements these methods itself;
- the functional primitives (`schedule`, `sigma_to_t`, `boundary_scalings`,
  `edm_scalings`, `run_steps`, `add_noise`): what every implementation must offer;
- the stateful API (`scheduler`): a scheduler object with diffusers' API, for the
  clauses about its bookkeeping (index lookup, begin index, errors). Only when
  `capabilities.stateful`.

`Capabilities` says what the implementation claims: devices, dtypes, whether `step`
accepts injected noise (`noise=`), how it draws noise from a seeded generator, and
whether it has the stateful API. A test of something not claimed is skipped with a
reason; nothing is silently passed.

`SchedulerAdapter` implements the functional primitives on top of any scheduler class
with diffusers' API (the loop of diffusers' `ConsistencyModelPipeline`); an
implementation with only functional primitives subclasses `Adapter` directly; research
code with its own sampling loop is reached through `conformance.functional.FunctionalSampler`,
which declares the primitives it does not offer (`Adapter.unmet`): their clauses are
skipped as "not offered".
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from conformance.protocol.bridges import ArrayBridge, ArrayInfo
from conformance.protocol.deviations import Deviation

__all__ = ["ArrayInfo"]  # re-exported: it moved to conformance.protocol.bridges

DTYPES = ("float64", "float32", "float16", "bfloat16")
DEVICES = ("cpu", "cuda")

NoiseConvention = Literal["torch.randn", "numpy.standard_normal", "jax.random.normal"]
NOISE_CONVENTIONS = ("torch.randn", "numpy.standard_normal", "jax.random.normal")


@dataclass(frozen=True)
class Capabilities:
    """What an implementation claims. Every field is checked by some clause of SPEC.md.

    devices:        devices it runs on ("cpu", "cuda", "cuda:1", ...).
    dtypes:         sample dtypes it supports, from `DTYPES`.
    injected_noise: `step(..., noise=z)` uses the given standard-normal z.
    noise_convention: how `step(..., generator=g)` draws z, so that the suite can
                    draw the same numbers: "torch.randn" (diffusers' `randn_tensor`:
                    `torch.randn(shape, generator=g, dtype=sample dtype)` on the
                    generator's device), "numpy.standard_normal"
                    (`g.standard_normal(shape)` on a `numpy.random.Generator`),
                    "jax.random.normal" (`jax.random.normal(key_j, shape, dtype)`, key_j
                    derived from a PRNG key by the bridge's declared splitting), or
                    None (its own way: only the statistical layer can check it).
                    "torch.randn" includes `randn_tensor`'s list of generators, one per
                    batch element: one draw of shape (1, ...) from each, concatenated.
    stateful:       it has diffusers' stateful scheduler API (`scheduler()`).
    """

    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float32",)
    injected_noise: bool = False
    noise_convention: NoiseConvention | None = None
    stateful: bool = True

    def __post_init__(self) -> None:
        unknown = [d for d in self.dtypes if d not in DTYPES]
        if unknown:
            raise ValueError(f"`dtypes` must be drawn from {DTYPES}, got {unknown}")
        if self.noise_convention is not None and self.noise_convention not in NOISE_CONVENTIONS:
            raise ValueError(
                f"`noise_convention` must be None or one of {NOISE_CONVENTIONS}, "
                f"got {self.noise_convention!r}"
            )

    @property
    def generator_list(self) -> bool:
        """`step(..., generator=[g_0, g_1, ...])`, one generator per batch element, draws by
        the convention: part of "torch.randn" (diffusers' `randn_tensor`)."""
        return self.noise_convention == "torch.randn"

    def as_dict(self) -> dict[str, Any]:
        return {
            "devices": list(self.devices),
            "dtypes": list(self.dtypes),
            "injected_noise": self.injected_noise,
            "noise_convention": self.noise_convention,
            "stateful": self.stateful,
        }


@dataclass(frozen=True)
class Schedule:
    """`sigmas` (evaluation points then sigma_min) and `timesteps` (model times), as the
    implementation stores them (native arrays)."""

    sigmas: Any
    timesteps: Any
    #: The relative error with which each sigma is known, where it was read back from a
    #: model time given in a dtype below float64 (a functional sampler); None: exact.
    sigma_error: Any = None


@dataclass
class StepInputs:
    """One call of Algorithm 1's loop body at schedule position k: the raw network output
    F and the sample x (native arrays), and the injected noise z when there is one."""

    model_output: Any
    sample: Any
    noise: Any = None


@dataclass
class StepResult:
    """What the loop body produced at one position: `scale_model_input(x, t)` and
    `step(F, t, x).prev_sample` (native arrays; None where the call was not made).

    An implementation that runs its own loop (a functional sampler) chains its samples: it
    reports the sample it actually used at the position (`sample`, native; None: the one
    given), the sigma it used there (`sigma`, float64; None: not reported), the sigma it
    re-noised to (`sigma_next`: the next evaluation point, sigma_min after the last) and the
    number of noise draws it made between this evaluation and the next (`draws`; None:
    unknown). `sigma_error`, `sigma_next_error`: the relative error with which `sigma` and
    `sigma_next` are known (read back from a model time given in float32, say)."""

    scaled: Any
    prev_sample: Any
    sample: Any = None
    sigma: float | None = None
    sigma_next: float | None = None
    draws: int | None = None
    sigma_error: float = 0.0
    sigma_next_error: float = 0.0


@dataclass(frozen=True)
class TimestepSpec:
    """Either `num_inference_steps` or custom `timesteps` (indices), as for `set_timesteps`."""

    num_inference_steps: int | None = None
    timesteps: tuple[int, ...] | None = None

    def kwargs(self) -> dict[str, Any]:
        if self.timesteps is not None:
            return {"timesteps": list(self.timesteps)}
        return {"num_inference_steps": self.num_inference_steps}

    def indices(self, num_train_timesteps: int) -> list[int]:
        """The descending index list that `set_timesteps` uses (SPEC.md, SCHED-1 and SCHED-2)."""
        if self.timesteps is not None:
            return list(self.timesteps)
        n, N = self.num_inference_steps, num_train_timesteps
        return [k * (N // n) for k in range(n)][::-1]


def scheduler_points(config: Mapping[str, Any], spec: TimestepSpec) -> str:
    """Time points as a scheduler with diffusers' API is given them, for a message."""
    return f"set_timesteps({spec.kwargs()})"


@dataclass(frozen=True)
class Terms:
    """The words a message uses for the parts of an implementation: diffusers' API by default
    (`SCHEDULER_TERMS`); an adapter of another shape (a functional sampler) names what it
    has, so that a message never names a method the implementation does not have."""

    #: the call that runs the loop body at chosen positions
    run: str = "the loop body (scale_model_input, step)"
    #: what the model is given at a position, and the sample a position steps to
    model_input: str = "scale_model_input(...)"
    prev_sample: str = "step(...).prev_sample"
    #: one pass of the loop body
    position: str = "position"
    #: exact draws handed to the implementation (the "injected" noise layer)
    handed_noise: str = "injected noise"
    #: (config, spec) -> the time points as the implementation is given them
    points: Callable[[Mapping[str, Any], TimestepSpec], str] = scheduler_points


SCHEDULER_TERMS = Terms()


class Adapter(ABC):
    """Base class of every adapter. A subclass sets `name`, `version`, `capabilities` and
    `deviations` (the known deviations, declared in a file next to the adapter) and
    implements the abstract methods."""

    name: str = "unnamed"
    version: str = "unknown"
    capabilities: Capabilities = Capabilities()
    deviations: tuple[Deviation, ...] = ()
    #: One line for the report header: what was loaded, from where.
    description: str = ""
    #: The suite hands every draw through the implementation's own noise hook (a functional
    #: sampler): exact noise by another route than `noise=`.
    noise_through_hook: bool = False
    #: How messages name its parts (`Terms`).
    terms: Terms = SCHEDULER_TERMS

    # -- the array bridge --------------------------------------------------------------------

    #: The array bridge the methods below delegate to (`conformance.protocol.bridges`); an adapter
    #: without one implements `asarray`, `describe`, `to_numpy` and `copy` itself.
    bridge: ArrayBridge | None = None

    def _bridge(self) -> ArrayBridge:
        if self.bridge is None:
            raise NotImplementedError(
                f"{type(self).__name__} sets no `bridge` and does not implement the array "
                "methods (asarray, describe, to_numpy, copy)"
            )
        return self.bridge

    def asarray(self, values: np.ndarray, dtype: str, device: str) -> Any:
        """The implementation's array holding `values` (float64 numpy) rounded to `dtype`."""
        return self._bridge().asarray(values, dtype, device)

    def describe(self, array: Any) -> ArrayInfo | None:
        """Type, shape, dtype and device of an array of this framework; None if `array` is
        not one."""
        return self._bridge().describe(array)

    def to_numpy(self, array: Any) -> np.ndarray:
        """A float64 numpy copy of an array of this framework (exact: every dtype in `DTYPES`
        converts to float64 without rounding)."""
        return self._bridge().to_numpy(array)

    def copy(self, array: Any) -> Any:
        """An independent copy (to detect an implementation that writes into its inputs)."""
        return self._bridge().copy(array)

    def same_values(self, a: Any, b: Any) -> bool:
        """Bitwise equality of two arrays of this framework (NaN equal to NaN)."""
        if self.bridge is not None:
            return self.bridge.same_values(a, b)
        x, y = self.to_numpy(a), self.to_numpy(b)
        return x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=True))

    def device_available(self, device: str) -> tuple[bool, str]:
        """Whether `device` exists on this machine, and if not, why."""
        if self.bridge is not None:
            return self.bridge.device_available(device)
        return (device == "cpu", "" if device == "cpu" else f"device {device!r} not available")

    # -- noise -------------------------------------------------------------------------------

    def generator(self, seed: int, device: str) -> Any:
        """A seeded generator of the kind `step` takes."""
        if self.bridge is None:
            raise NotImplementedError(f"{self.name} declares no generator")
        return self.bridge.generator(seed, device)

    def generator_state(self, generator: Any) -> Any:
        """A snapshot of a generator's state (to check that nothing was drawn)."""
        if self.bridge is None:
            raise NotImplementedError(f"{self.name} declares no generator")
        return self.bridge.generator_state(generator)

    def generator_restartable(self) -> bool:
        """Whether a generator of the kind `step` takes can be put back into a saved state
        (a torch or numpy generator), so that two runs of a loop of its own share their draws
        before a position; a JAX key, a value split by the sampler, cannot."""
        if self.bridge is None:
            return False
        g = self.bridge.generator(0, "cpu")
        return hasattr(g, "set_state") or hasattr(g, "bit_generator")

    def draw_noise(self, generator: Any, shape: tuple[int, ...], dtype: str, device: str) -> Any:
        """One standard-normal draw from `generator` (for "torch.randn" also a list of
        generators, one per batch element), as one `step` draws it, by
        `capabilities.noise_convention`."""
        convention = self.capabilities.noise_convention
        if self.bridge is None or convention is None:
            raise NotImplementedError(f"{self.name} declares no noise convention")
        if convention != self.bridge.noise_convention:
            raise NotImplementedError(
                f"{self.name} declares noise convention {convention!r}, its bridge draws by "
                f"{self.bridge.noise_convention!r}"
            )
        return self.bridge.draw_noise(generator, shape, dtype, device)

    def reproduce_noise(
        self, seed: int, shape: tuple[int, ...], dtype: str, device: str, draws: int
    ) -> list[Any]:
        """The `draws` standard-normal arrays that successive `step` calls draw from
        `generator(seed, device)`, by `capabilities.noise_convention`: `draws` calls of
        `draw_noise` on one generator, so an adapter implements `draw_noise` alone."""
        generator = self.generator(seed, device)
        return [self.draw_noise(generator, shape, dtype, device) for _ in range(draws)]

    # -- functional primitives ---------------------------------------------------------------

    @abstractmethod
    def schedule(self, config: Mapping[str, Any], spec: TimestepSpec, device: str) -> Schedule:
        """`set_timesteps` for `config`: the stored sigmas and model times."""

    @abstractmethod
    def sigma_to_t(self, config: Mapping[str, Any], sigmas: np.ndarray) -> Any:
        """The model times of float64 sigmas (diffusers' `sigma_to_t`)."""

    @abstractmethod
    def boundary_scalings(self, config: Mapping[str, Any], sigma: Any) -> tuple[Any, Any]:
        """(c_skip, c_out) of CM Appendix C for a native array of sigmas."""

    @abstractmethod
    def edm_scalings(self, config: Mapping[str, Any], sigma: Any) -> tuple[Any, Any]:
        """(c_skip, c_out) of EDM (no boundary shift) for a native array of sigmas."""

    @abstractmethod
    def run_steps(
        self,
        config: Mapping[str, Any],
        spec: TimestepSpec,
        device: str,
        inputs: Sequence[StepInputs],
        *,
        seed: int | None = None,
    ) -> list[StepResult]:
        """Run the loop body at positions 0 .. len(inputs) - 1 of the schedule: each
        position's own F and x (not chained), the injected noise where given, else a
        generator seeded with `seed` (one generator for the whole run, as in a pipeline),
        else the implementation's own draws."""

    @abstractmethod
    def add_noise(
        self,
        config: Mapping[str, Any],
        spec: TimestepSpec,
        device: str,
        original_samples: Any,
        noise: Any,
        timesteps: Any,
    ) -> Any:
        """`add_noise(x0, z, t)` after `set_timesteps(spec)`; `timesteps` are model times."""

    def default_config(self) -> dict[str, Any]:
        """The config values an implementation without a constructor uses when the caller
        gives none (declared, and verified by the adapter: `conformance.functional`)."""
        raise NotImplementedError(f"{self.name} declares no defaults")

    def check_conventions(self, device: str, dtype: str) -> list[str]:
        """Verify the declared interface conventions on a recorded run (a functional
        sampler): what holds, or an AssertionError naming the convention, expected, seen."""
        raise NotImplementedError(f"{self.name} declares no interface conventions")

    # -- the stateful API --------------------------------------------------------------------

    def scheduler(self, **config: Any) -> Any:
        """A fresh scheduler object with diffusers' API."""
        raise NotImplementedError(f"{self.name} has no stateful scheduler API")

    def timestep_array(self, values: np.ndarray, device: str) -> Any:
        """Model times as the implementation's timestep argument (float64)."""
        return self.asarray(values, "float64", device)

    # -- what the report header says ---------------------------------------------------------

    def header_lines(self) -> list[str]:
        """Extra lines for the report header (declared conventions, primitives not offered);
        each is indented by the plugin."""
        return []

    def settings(
        self, config: Mapping[str, Any], spec: TimestepSpec | None = None
    ) -> dict[str, Any]:
        """The config this implementation actually runs when asked for `config`: the same,
        for a scheduler that takes every value; for one that fixes some (a functional
        sampler), its own values in their place, so that a test takes its truth there."""
        return dict(config)

    def unmet(self, need: str) -> str | None:
        """Why this adapter cannot serve a test marked `requires(need)` (a primitive it does
        not offer, say), or None. For a need of `NEEDS` the answer is final; for a field of
        `Capabilities`, None lets `unmet_requirement` decide from the claims. A scheduler
        adapter offers every primitive of `NEEDS`; it has defaults if it has a constructor."""
        if need == "defaults" and not self.capabilities.stateful:
            return f"{self.name} has no scheduler constructor whose defaults could be read"
        if need == "x_T_drawn":
            return f"{self.name} is given x_T: it draws no initial sample"
        if need == "conventions":
            return (
                f"{self.name} declares no interface conventions (a scheduler with diffusers' "
                "API: its conventions are the API's)"
            )
        return None


#: Needs a clause test may mark with `requires(...)` besides the `Capabilities` fields:
#: primitives and interfaces that an implementation without a scheduler class may not offer
#: (a functional sampler, `conformance.functional`). Every scheduler adapter offers them.
NEEDS = (
    "schedule",  # the implementation computes the schedule itself (not given a sigma list)
    "model_time",  # its network sees 250 log(sigma + 1e-44), observable by the suite
    "sigma_to_t",  # a sigma_to_t function
    "boundary_scalings",  # get_scalings_for_boundary_condition
    "edm_scalings",  # get_scalings
    "add_noise",  # add_noise
    "c_in",  # c_in applied where the suite sees it (scale_model_input)
    "denoise",  # c_skip, c_out applied where the suite sees them (step)
    "clip_off",  # clip_denoised = False can be asked for
    "clip_on",  # clip_denoised = True can be asked for
    "own_draws",  # the implementation draws its own noise (not handed by the suite)
    "step_arguments",  # step's model_output / noise arguments, to be validated
    "per_position_inputs",  # each position's own x (not a chained loop)
    "defaults",  # constructor defaults, or declared defaults of a functional sampler
    "conventions",  # declared interface conventions (a functional sampler)
    "x_T_drawn",  # the implementation draws x_T itself (a functional sampler that declares it)
)


def unmet_requirement(adapter: Adapter, need: str) -> str | None:
    """Why `adapter` cannot serve a test marked `requires(need)`, or None if it can."""
    reason = adapter.unmet(need)
    if reason or need in NEEDS:
        return reason
    caps = adapter.capabilities
    if need == "known_noise":
        if not (caps.injected_noise or caps.noise_convention or adapter.noise_through_hook):
            return (
                f"{adapter.name} neither accepts injected noise nor declares a noise "
                "convention: its draws are checked by the statistical layer only"
            )
        return None
    if not getattr(caps, need):
        return f"{adapter.name} does not claim {need}"
    return None


class SchedulerAdapter(Adapter):
    """The functional primitives of `Adapter`, through a scheduler class with diffusers' API.

    `run_steps` is the loop of diffusers' `ConsistencyModelPipeline`:
    `set_timesteps`, then for each t in `timesteps`: `scale_model_input(x, t)` and
    `step(F, t, x, generator=g)` (or `noise=z` when injected noise is claimed).
    """

    def __init__(
        self,
        scheduler_class: type,
        *,
        name: str,
        version: str,
        capabilities: Capabilities,
        deviations: Sequence[Deviation] = (),
        description: str = "",
        bridge: ArrayBridge | None = None,
    ) -> None:
        self.scheduler_class = scheduler_class
        if bridge is not None:  # else the subclass's (NumpyBridge, TorchBridge, ...)
            self.bridge = bridge
        self.name = name
        self.version = version
        self.capabilities = capabilities
        self.deviations = tuple(deviations)
        self.description = (
            description or f"{scheduler_class.__module__}.{scheduler_class.__qualname__}"
        )

    def scheduler(self, **config: Any) -> Any:
        return self.scheduler_class(**config)

    def _ready(self, config: Mapping[str, Any], spec: TimestepSpec, device: str) -> Any:
        scheduler = self.scheduler(**config)
        scheduler.set_timesteps(device=device, **spec.kwargs())
        return scheduler

    def schedule(self, config: Mapping[str, Any], spec: TimestepSpec, device: str) -> Schedule:
        scheduler = self._ready(config, spec, device)
        return Schedule(scheduler.sigmas, scheduler.timesteps)

    def sigma_to_t(self, config: Mapping[str, Any], sigmas: np.ndarray) -> Any:
        return self.scheduler(**config).sigma_to_t(sigmas)

    def boundary_scalings(self, config: Mapping[str, Any], sigma: Any) -> tuple[Any, Any]:
        return tuple(self.scheduler(**config).get_scalings_for_boundary_condition(sigma))

    def edm_scalings(self, config: Mapping[str, Any], sigma: Any) -> tuple[Any, Any]:
        return tuple(self.scheduler(**config).get_scalings(sigma))

    def run_steps(
        self,
        config: Mapping[str, Any],
        spec: TimestepSpec,
        device: str,
        inputs: Sequence[StepInputs],
        *,
        seed: int | None = None,
    ) -> list[StepResult]:
        scheduler = self._ready(config, spec, device)
        generator = None if seed is None else self.generator(seed, device)
        results = []
        for k, step_inputs in enumerate(inputs):
            t = scheduler.timesteps[k]
            scaled = scheduler.scale_model_input(step_inputs.sample, t)
            kwargs: dict[str, Any] = {}
            if step_inputs.noise is not None:
                kwargs["noise"] = step_inputs.noise
            elif generator is not None:
                kwargs["generator"] = generator
            output = scheduler.step(step_inputs.model_output, t, step_inputs.sample, **kwargs)
            results.append(StepResult(scaled, prev_sample_of(output)))
        return results

    def add_noise(
        self,
        config: Mapping[str, Any],
        spec: TimestepSpec,
        device: str,
        original_samples: Any,
        noise: Any,
        timesteps: Any,
    ) -> Any:
        scheduler = self._ready(config, spec, device)
        return scheduler.add_noise(original_samples, noise, timesteps)


def prev_sample_of(output: Any) -> Any:
    """`output.prev_sample`, as diffusers' `step` returns it (or `output[0]` for a tuple)."""
    if hasattr(output, "prev_sample"):
        return output.prev_sample
    if isinstance(output, tuple) and len(output) >= 1:
        return output[0]
    return output  # a bare array: the output contract check names what came back


def step_accepts_noise(scheduler_class: type) -> bool:
    """Whether `scheduler_class.step` has a `noise` parameter."""
    try:
        parameters = inspect.signature(scheduler_class.step).parameters
    except (TypeError, ValueError):
        return False
    return "noise" in parameters
