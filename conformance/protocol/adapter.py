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

`Capabilities` (a value type of `conformance.protocol.values`, with `TimestepSpec`,
`Schedule`, `StepInputs`, `StepResult`) says what the implementation claims: devices, dtypes,
whether `step` accepts injected noise (`noise=`), how it draws noise from a seeded generator,
and whether it has the stateful API. A test of something not claimed is skipped with a
reason; nothing is silently passed.

A scheduler class with diffusers' API is reached through
`conformance.implementations.scheduler.SchedulerAdapter` (the loop of diffusers'
`ConsistencyModelPipeline`); an implementation with only functional primitives subclasses
`Adapter` directly; research code with its own sampling loop is reached through
`conformance.functional.FunctionalSampler`, which declares the primitives it does not offer
(`Adapter.unmet`): their clauses are skipped as "not offered".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.protocol.bridges import ArrayBridge, ArrayInfo
from conformance.protocol.deviations import Deviation
from conformance.protocol.values import Capabilities, Schedule, StepInputs, StepResult, TimestepSpec


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
    #: It rejects inputs it cannot be given (a functional sampler that takes a step count,
    #: offered custom time points): its clause tests run without Hypothesis's
    #: `filter_too_much` health check (the tests that draw almost only such inputs skip).
    rejects_examples: bool = False
    #: Draws of the noise convention it takes from the caller's generator before its loop
    #: (1: a functional sampler that draws x_T from it), which are no step's draws.
    draws_before_loop: int = 0
    #: Its generator is a key (a JAX PRNG key): a value the sampler splits, with no state a
    #: draw could advance, so a draw it scales by 0 costs the caller nothing (as a hook's).
    generator_is_key: bool = False
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


def prev_sample_of(output: Any) -> Any:
    """`output.prev_sample`, as diffusers' `step` returns it (or `output[0]` for a tuple)."""
    if hasattr(output, "prev_sample"):
        return output.prev_sample
    if isinstance(output, tuple) and len(output) >= 1:
        return output[0]
    return output  # a bare array: the output contract check names what came back
