"""`SchedulerAdapter`: the functional primitives of the adapter protocol
(`conformance.protocol.adapter.Adapter`) implemented on top of any scheduler class with
diffusers' API, the base of the built-in adapters (numpy, torch, diffusers) and of a user's
adapter around a scheduler class.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from conformance.protocol.adapter import Adapter, prev_sample_of
from conformance.protocol.bridges import ArrayBridge
from conformance.protocol.deviations import Deviation
from conformance.protocol.values import Capabilities, Schedule, StepInputs, StepResult, TimestepSpec


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


def step_accepts_noise(scheduler_class: type) -> bool:
    """Whether `scheduler_class.step` has a `noise` parameter."""
    try:
        parameters = inspect.signature(scheduler_class.step).parameters
    except (TypeError, ValueError):
        return False
    return "noise" in parameters
