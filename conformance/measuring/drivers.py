"""Running the loop body of Algorithm 1 at chosen schedule positions, with known inputs.

Each driver builds each position's inputs in the implementation's arrays (dtype, device),
keeps their exact float64 values for the oracle, and chooses the noise layer (SPEC.md,
"Noise in three layers"):

- `run`:                 known draws: "injected" (the suite draws z and passes
                         `step(..., noise=z)`) where claimed, else "reproduced" (a seeded
                         generator, the same z drawn by the declared convention);
- `run_with_own_draws`:  "own": the implementation draws as it likes; z is unknown;
- `run_ignoring_noise`:  its own draws, for a test that does not look at the noise (no layer
                         recorded);
- `run_without_noise`:   injected zeros where injected noise is claimed, else its own draws
                         (with s_noise = 0 the noise term is then 0 whatever it does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from conformance import truth
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import SCHEDULER_TERMS, Adapter, Terms
from conformance.protocol.values import StepInputs, TimestepSpec

Array = np.ndarray


@dataclass
class Sample:
    """An input in the implementation's array type and its exact float64 values."""

    native: Any
    exact: Array


def sample(impl: Adapter, values: Array, dtype: str, device: str) -> Sample:
    # A copy: an adapter may share memory with the array it is given (torch.from_numpy), and
    # an implementation that writes into its inputs (STEP-8) must not change the suite's data.
    native = impl.asarray(np.array(values, dtype=np.float64), dtype, device)
    return Sample(native, impl.to_numpy(native))


def normal(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> Array:
    """Standard-normal test data (the suite's own draws, numpy PCG64)."""
    return scale * np.random.default_rng(seed).standard_normal(shape)


@dataclass
class StepRun:
    """What the loop body did at positions 0 .. K - 1.

    `x` holds the samples the implementation actually used: the ones given, or, for an
    implementation that runs its own loop (a functional sampler), the given x at position 0
    and its own chained samples after it (read from the recording). `sigmas` holds the
    float64 sigmas the implementation itself used at the evaluation points, then sigma_min
    (from its own schedule, or from the recording of a functional sampler); None where
    they could not be read."""

    F: list[Sample]
    x: list[Sample]
    z: list[Array | None]  # the exact z each step used, None where unknown
    scaled: list[Any]  # native scale_model_input outputs
    prev: list[Any]  # native prev_sample outputs
    layer: str
    #: The float64 sigmas the implementation itself used (its own schedule: the evaluation
    #: points, then sigma_min; or a functional sampler's recorded ones), so that a step's truth
    #: is computed at them and an error of the schedule fails the schedule's clauses only.
    #: None where they are not known.
    sigmas: Array | None = None
    draws: list[int | None] | None = None  # noise draws after each evaluation, if recorded
    #: The relative error with which each of `sigmas` is known (read back from a model time
    #: given below float64; 0: exact), where `sigmas` was recorded.
    readback: Array | None = None
    #: How messages name the implementation's parts (`Adapter.terms`).
    terms: Terms = SCHEDULER_TERMS


def noise_layer(impl: Adapter) -> str | None:
    """The exact noise layer this implementation supports, if any."""
    caps = impl.capabilities
    if caps.injected_noise or impl.noise_through_hook:
        return "injected"
    if caps.noise_convention is not None:
        return "reproduced"
    return None


class Driver:
    """A driver of the loop body with one choice of noise layer (the module docstring):
    `driver(impl, measure, config, spec, device, dtype, inputs, seed=...)` runs positions
    0 .. len(inputs) - 1 with the given (F, x) float64 values.

    `same_draws_as`, `until`: draws at positions below `until` as a run with seed
    `same_draws_as` has them, so that two runs of a loop of its own (a functional sampler,
    whose x_k follows its earlier draws) reach position `until` with the same sample:
    injected, or, from a functional sampler's own generator, the generator seeded
    `same_draws_as` and restarted from `seed` when evaluation `until` begins."""

    def __init__(self, layer_of: Callable[[Adapter], str | None], records: bool, doc: str):
        self.layer_of, self.records, self.__doc__ = layer_of, records, doc

    def __call__(
        self,
        impl: Adapter,
        measure: Measure,
        config: Mapping[str, Any],
        spec: TimestepSpec,
        device: str,
        dtype: str,
        inputs: Sequence[tuple[Array, Array]],
        *,
        seed: int,
        same_draws_as: int | None = None,
        until: int = 0,
    ) -> StepRun:
        layer = self.layer_of(impl)
        if layer is None:
            pytest.skip(
                f"{impl.name} neither accepts injected noise nor declares a noise convention"
            )
        if self.records:
            measure.uses_noise_layer(layer)
        N = int(config["num_train_timesteps"])
        n = len(spec.indices(N))
        F = [sample(impl, f, dtype, device) for f, _ in inputs]
        x = [sample(impl, v, dtype, device) for _, v in inputs]
        step_inputs = [StepInputs(f.native, v.native) for f, v in zip(F, x, strict=True)]
        z: list[Array | None] = [None] * len(inputs)
        run_seed = None
        if layer == "zero":
            for k, step_input in enumerate(step_inputs):
                step_input.noise = sample(impl, np.zeros(x[k].exact.shape), dtype, device).native
                z[k] = np.zeros(x[k].exact.shape)
        elif layer == "injected":
            for k, step_input in enumerate(step_inputs):
                base = same_draws_as if same_draws_as is not None and k < until else seed
                drawn = sample(impl, normal(base + 7919 * (k + 1), x[k].exact.shape), dtype, device)
                step_input.noise = drawn.native
                z[k] = drawn.exact if n > 1 else np.zeros_like(drawn.exact)
        elif layer == "reproduced":
            run_seed = seed
            if n > 1:
                shapes = {v.exact.shape for v in x}
                if len(shapes) != 1:
                    raise ValueError("reproduced noise needs one sample shape for every position")
                switch = restart(impl, same_draws_as, until)
                first = seed if switch is None else switch[0]
                draws = impl.reproduce_noise(first, x[0].exact.shape, dtype, device, len(inputs))
                if switch is not None:  # restarted from `seed` at position switch[1]
                    at = switch[1]  # `until`, or 0 where only x_T's draw is shared (a key)
                    later = impl.reproduce_noise(seed, x[0].exact.shape, dtype, device, len(inputs))
                    draws = [*draws[:at], *later[: len(inputs) - at]]
                z = [impl.to_numpy(d) for d in draws]
            else:
                z = [np.zeros_like(v.exact) for v in x]  # one-step sampling draws nothing
        switch = restart(impl, same_draws_as, until) if layer == "reproduced" else None
        results = measure.call(
            impl.terms.run,
            impl.run_steps,
            config,
            spec,
            device,
            step_inputs,
            seed=run_seed,
            **({} if switch is None else {"switch": switch}),
        )
        if not isinstance(results, list) or len(results) != len(inputs):
            measure.fail("run_steps", f"returned {results!r}, expected one result per position")
        for k, result in enumerate(results):
            if result.sample is not None:  # a chained loop: the sample it actually used
                x[k] = Sample(result.sample, impl.to_numpy(result.sample))
        return StepRun(
            F,
            x,
            z,
            [r.scaled for r in results],
            [r.prev_sample for r in results],
            layer,
            sigmas=used_sigmas(impl, config, spec, device, results),
            draws=[r.draws for r in results],
            readback=np.array(
                [*(getattr(r, "sigma_error", 0.0) for r in results), results[-1].sigma_next_error]
            )
            if results
            else None,
            terms=impl.terms,
        )


run = Driver(
    noise_layer,
    True,
    "Known draws: injected, else reproduced (skipped where neither is claimed).",
)
run_with_own_draws = Driver(
    lambda impl: "own", True, "The implementation's own draws (z unknown; the layer recorded)."
)
run_ignoring_noise = Driver(
    lambda impl: "own",
    False,
    "The implementation's own draws, for a test that does not look at the noise (no layer "
    "recorded).",
)
run_without_noise = Driver(
    lambda impl: "zero" if impl.capabilities.injected_noise else "own",
    False,
    "Injected zeros where injected noise is claimed, else the implementation's own draws (no "
    "layer recorded): with s_noise = 0 the noise term is then 0 whatever the implementation "
    "does with s_noise or its draws.",
)


def restart(impl: Adapter, same_draws_as: int | None, until: int) -> tuple[int, int] | None:
    """(same_draws_as, until) for a functional sampler's own generator to share its draws
    before position `until` with another run (`run`), None where there is nothing to share
    or the stateful path takes each position's own x."""
    if impl.capabilities.stateful or same_draws_as is None or until <= 0:
        return None
    if not impl.generator_restartable():  # two plain seeds: x_k differs, truth taken at each;
        # an x_T drawn before the loop is shared all the same (a key's draw substituted)
        return (same_draws_as, 0) if impl.draws_before_loop else None
    return same_draws_as, until


def used_sigmas(
    impl: Adapter,
    config: Mapping[str, Any],
    spec: TimestepSpec,
    device: str,
    results: Sequence[Any],
) -> Array | None:
    """The float64 sigmas the implementation used: from a functional sampler's recording,
    those of the K positions run and the next one (sigma_min after the last evaluation);
    otherwise its own schedule (`own_sigmas`)."""
    recorded = [r.sigma for r in results]
    if recorded and all(s is not None for s in recorded) and results[-1].sigma_next is not None:
        return np.array([*recorded, results[-1].sigma_next], dtype=np.float64)
    return own_sigmas(impl, config, spec, device)


def own_sigmas(
    impl: Adapter, config: Mapping[str, Any], spec: TimestepSpec, device: str
) -> Array | None:
    """The sigmas `impl.schedule` stores for this config (float64: evaluation points, then
    sigma_min), or None when they cannot be read (a schedule that fails is its own clause's
    finding, not this run's)."""
    N = int(config["num_train_timesteps"])
    try:
        stored = impl.to_numpy(impl.schedule(config, spec, device).sigmas)
    except Exception:  # noqa: BLE001 (the schedule's clauses report it)
        return None
    stored = np.asarray(stored, dtype=np.float64).reshape(-1)
    if stored.shape != (len(spec.indices(N)) + 1,) or not np.all(np.isfinite(stored)):
        return None
    return stored


def sigmas_or_exact(sigmas: Array | None, exact: truth.ExactSchedule) -> Array:
    """The sigmas a clause takes its truth at: those the implementation used where known,
    else the suite's exact ones (a schedule that cannot be read is the schedule clauses'
    finding, not the caller's)."""
    return exact.sigmas if sigmas is None else sigmas


def schedule_sigmas(
    impl: Adapter,
    config: Mapping[str, Any],
    spec: TimestepSpec,
    device: str,
    exact: truth.ExactSchedule,
) -> Array:
    """The implementation's stored sigmas (`own_sigmas`), else the exact ones."""
    return sigmas_or_exact(own_sigmas(impl, config, spec, device), exact)


def prev_output(
    measure: Measure, run: StepRun, k: int, dtype: str | None, device: str | None
) -> Array:
    """The k-th `prev_sample`, checked to be an array of the sample's shape, and of `dtype`
    and `device` where given (None: not checked here)."""
    return measure.output(
        run.prev[k],
        what=f"{run.terms.prev_sample} at {run.terms.position} {k}",
        shape=run.x[k].exact.shape,
        dtype=dtype,
        device=device,
    )
