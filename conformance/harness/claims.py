"""Checking an adapter's claims before any test runs.

Each capability an adapter declares is probed once at start-up; a claim found false stops
the run (a usage error naming the claim and what was found), instead of failing dozens of
tests with the same TypeError while the clause that would find the real bug never runs.

- `injected_noise`: the scheduler class's `step` has a `noise` parameter (or `**kwargs`);
- `stateful`: the scheduler class has the stateful API's methods (or `scheduler()` makes one);
- devices and dtypes: `asarray` makes an array of each dtype on each device of the run,
  and `describe` says so;
- `noise_convention`: one step from a zero sample with a seeded generator draws the numbers
  the convention gives (`reproduce_noise`), up to the step's noise scale.

A probe that does not apply is skipped: an adapter without a scheduler class (a functional
sampler, say) has no `step` signature to read. Such an adapter adds its own probes by a
method `probe_claims(devices, dtypes) -> list[str]` (one line per false claim). A probe that
raises or hangs proves nothing about the claim (the clauses will report what the
implementation does) and is passed over.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from conformance.harness import timeout
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.protocol.adapter import Adapter
from conformance.protocol.values import StepInputs, TimestepSpec

#: The stateful API's methods the suite calls (besides `step`, `scale_model_input`,
#: `set_timesteps`, which every scheduler class has).
STATEFUL_METHODS = ("index_for_timestep", "set_begin_index", "add_noise")
#: Seconds one probe may take (a hanging implementation is the clauses' business).
PROBE_TIMEOUT = 10.0
#: Below this correlation with the convention's draw, the step drew other numbers: the same
#: numbers scaled give 1 (to rounding); an unrelated draw of 32 elements about 0 +/- 0.2.
MIN_CORRELATION = 0.9
PROBE_SHAPE = (2, 4, 4)


def check(adapter: Adapter, devices: Sequence[str], dtypes: Sequence[str]) -> list[str]:
    """One line per false claim of `adapter` for a run on `devices` (available ones) x `dtypes`
    (empty: every claim holds, or could not be refuted)."""
    problems: list[str] = []
    scheduler_class = getattr(adapter, "scheduler_class", None)
    caps = adapter.capabilities
    if caps.injected_noise and scheduler_class is not None:
        problems += _injected_noise(scheduler_class)
    if caps.stateful:
        problems += _stateful(adapter, scheduler_class)
    problems += _arrays(adapter, devices, dtypes)
    if caps.noise_convention and devices and dtypes and not problems:
        problems += _noise_convention(adapter, devices[0], _probe_dtype(dtypes))
    own = getattr(adapter, "probe_claims", None)
    if callable(own):
        problems += list(own(list(devices), list(dtypes)))
    return problems


#: What an array's framework needs, by the top-level module of its type.
ADAPTER_FOR = {
    "numpy": "conformance.implementations.numpy_adapter.NumpySchedulerAdapter "
    '(README, "A scheduler on numpy arrays")',
    "torch": "conformance.implementations.torch_adapter.TorchSchedulerAdapter",
}


def framework(adapter: Adapter, device: str, dtype: str) -> str | None:
    """Whether the scheduler class works on the arrays of its adapter's framework: its
    schedule after `set_timesteps` must be arrays the adapter's bridge knows. A numpy class
    given as a bare class (taken to work on torch tensors) would otherwise fail every test
    with "expected an array of the implementation's framework". None if it does, or if the
    probe proves nothing (no scheduler class, or the call raised)."""
    scheduler_class = getattr(adapter, "scheduler_class", None)
    if scheduler_class is None:
        return None
    message = f"probing the arrays of {adapter.name} took over {PROBE_TIMEOUT:g} s"
    try:
        with timeout.limit(PROBE_TIMEOUT, message):
            made = adapter.schedule(DEFAULT_CONFIG, TimestepSpec(timesteps=(22, 0)), device)
    except (Exception, timeout.ImplementationHang):
        return None
    for name in ("sigmas", "timesteps"):
        value = getattr(made, name)
        if adapter.describe(value) is not None:
            continue
        kind = type(value)
        found = f"{kind.__module__}.{kind.__qualname__}"
        bridge = type(adapter._bridge()).__name__
        wanted = ADAPTER_FOR.get(kind.__module__.split(".")[0])
        fix = (
            f"wrap it in {wanted}"
            if wanted
            else "pass bridge= an ArrayBridge of its framework (README, the adapter protocol)"
        )
        return (
            f"{scheduler_class.__qualname__}.set_timesteps made `{name}` a {found}, but its "
            f"adapter ({type(adapter).__name__}, bridge {bridge}) works on other arrays"
            + (
                " (a class given to --impl as it is gets torch's adapter)"
                if type(adapter).__name__ == "TorchSchedulerAdapter"
                else ""
            )
            + f": {fix}"
        )
    return None


def _accepts(function: Callable[..., Any], name: str) -> bool | None:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None  # no signature to read: nothing proven
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _injected_noise(scheduler_class: type) -> list[str]:
    step = getattr(scheduler_class, "step", None)
    if step is None or _accepts(step, "noise") is not False:
        return []
    return [
        f"injected_noise=True, but {scheduler_class.__qualname__}.step({_parameters(step)}) "
        "has no `noise` parameter (claim injected_noise=False: "
        "the draws are then checked by the noise convention, or statistically)"
    ]


def _parameters(function: Callable[..., Any]) -> str:
    return ", ".join(inspect.signature(function).parameters)


def _stateful(adapter: Adapter, scheduler_class: type | None) -> list[str]:
    if scheduler_class is not None:
        missing = [m for m in STATEFUL_METHODS if not callable(getattr(scheduler_class, m, None))]
        if missing:
            return [
                f"stateful=True, but {scheduler_class.__qualname__} has no "
                f"{', '.join(missing)} (claim stateful=False: the clauses about the "
                "scheduler's bookkeeping are then skipped)"
            ]
        return []
    try:
        adapter.scheduler(**DEFAULT_CONFIG)
    except NotImplementedError as exc:
        return [f"stateful=True, but {type(adapter).__name__}.scheduler() raises: {exc}"]
    except Exception:
        return []  # it exists and fails: the clauses say how
    return []


def _arrays(adapter: Adapter, devices: Sequence[str], dtypes: Sequence[str]) -> list[str]:
    problems = []
    for device in devices:
        for dtype in dtypes:
            what = f"asarray(..., {dtype!r}, {device!r})"
            try:
                info = adapter.describe(adapter.asarray(np.zeros(2), dtype, device))
            except Exception as exc:
                problems.append(
                    f"dtype {dtype} on {device}: {what} raised {type(exc).__name__}: {exc}"
                )
                continue
            if info is None:
                problems.append(
                    f"dtype {dtype} on {device}: describe() does not know what {what} returned"
                )
            elif info.dtype != dtype:
                problems.append(f"dtype {dtype} on {device}: {what} returned {info.dtype}")
    return problems


def _probe_dtype(dtypes: Sequence[str]) -> str:
    for dtype in ("float32", "float64"):
        if dtype in dtypes:
            return dtype
    return dtypes[0]


def _noise_convention(adapter: Adapter, device: str, dtype: str) -> list[str]:
    """One step at position 0 from x = 0 with F = 0: the denoised sample is 0, so the step
    returns (noise scale) * z, with z drawn from `generator(seed)`; z must be the draw the
    convention reproduces."""
    convention = adapter.capabilities.noise_convention
    seed = 20240
    zero = np.zeros(PROBE_SHAPE)
    message = f"probing noise_convention={convention!r} took over {PROBE_TIMEOUT:g} s"
    try:
        with timeout.limit(PROBE_TIMEOUT, message):
            inputs = [
                StepInputs(
                    adapter.asarray(zero, dtype, device), adapter.asarray(zero, dtype, device)
                )
            ]
            spec = TimestepSpec(timesteps=(22, 0))
            if adapter.rejects_examples or adapter.draws_before_loop:  # a step count: 2 steps
                spec = TimestepSpec(num_inference_steps=2)
            if adapter.draws_before_loop:
                drawn, expected = _past_x_T(adapter, spec, inputs, seed, device, dtype)
            else:
                result = adapter.run_steps(DEFAULT_CONFIG, spec, device, inputs, seed=seed)
                drawn = adapter.to_numpy(result[0].prev_sample).ravel()
                expected = adapter.to_numpy(
                    adapter.reproduce_noise(seed, PROBE_SHAPE, dtype, device, 1)[0]
                ).ravel()
    # Whatever stops the probe (a run the sampler skips, as one evaluating other than n points
    # for n steps) leaves the claim to the clauses: a skip here would end pytest itself.
    except (Exception, timeout.ImplementationHang, pytest.skip.Exception):
        return []
    if drawn.shape != expected.shape or not np.all(np.isfinite(drawn)) or not drawn.any():
        return []
    correlation = float(
        np.dot(drawn, expected) / (np.linalg.norm(drawn) * np.linalg.norm(expected))
    )
    if correlation >= MIN_CORRELATION:
        return []
    return [
        f"noise_convention={convention!r}, but one step with generator(seed={seed}) on "
        f"{device}/{dtype} drew other numbers than {adapter.name}'s reproduce_noise gives by "
        f"that convention (correlation {correlation:.2f}; 1 expected): claim the convention the "
        "implementation draws by, or noise_convention=None"
    ]


def _past_x_T(
    adapter: Adapter, spec: TimestepSpec, inputs: list, seed: int, device: str, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """A sampler that draws x_T from the generator first steps from its own x_T, not from
    0: two runs that draw x_T alike (seeded `seed`) and are restarted at evaluation 0 from
    `seed` and `seed + 1` differ only by (noise scale) (z_1 - z_2), the steps' first draws."""
    prev, z = [], []
    for restart in (seed, seed + 1):
        result = adapter.run_steps(
            DEFAULT_CONFIG, spec, device, inputs, seed=restart, switch=(seed, 0)
        )
        prev.append(adapter.to_numpy(result[0].prev_sample).ravel())
        first = adapter.reproduce_noise(restart, PROBE_SHAPE, dtype, device, 1)[0]
        z.append(adapter.to_numpy(first).ravel())
    return prev[0] - prev[1], z[0] - z[1]
