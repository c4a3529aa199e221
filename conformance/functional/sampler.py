"""The functional-sampler entry of the adapter protocol: research code with its own loop.

Most implementations of Algorithm 1 are a function with a loop over time points, a model
callable and a noise source, not a scheduler class. `FunctionalSampler` reaches one: the
suite calls

    sample(model, x_T, points, noise, **parameters) -> the final sample

with a *scripted* model (`conformance.functional.scripted`: it records every call and returns outputs
the suite chooses), the initial sample, the time points in the sampler's own convention,
its noise hook, and the config values the sampler takes as parameters (renamed to its
own names). From the recording the suite reconstructs every step: the model input, the
time the model saw, the sigma the sampler used, the sample it stepped from and the one it
stepped to, and the draws it took. Nothing the sampler does is written by the adapter.

Declared conventions (interface, not Algorithm 1; each verified against the recording by
CONV-1, listed in the report header):

- `callable`: "network", a raw network `F(x_in, t)` (the sampler applies c_in, c_skip,
  c_out and the clamp), or "denoiser", `D(x, sigma)` returning the denoised sample (the
  sampler only loops and re-noises; the suite's denoiser applies the boundary scalings and
  the clamp, with the oracle);
- `time_points`: "timesteps" (diffusers' descending indices into an N-point grid, sigma_min
  appended by the sampler), "ts" (OpenAI's ascending indices into a `steps`-point grid, the
  end point N - 1 included), or "sigmas" (an explicit list: the evaluation sigmas then
  sigma_min; the caller computes them, so the sampler offers no schedule of its own), or
  one ending in 0.0 ("sigmas_zero", k-diffusion's) or without an end point
  ("sigmas_only"), sigma_min then a parameter (or fixed); or "steps" (a denoiser sampler
  takes the number of steps n and computes its own grid, read from the recording and held to
  SCHED-1 and GOLD-1; custom time points other than SCHED-1's indices are not expressible:
  those examples are rejected, and a test that draws only them is skipped with the reason);
- `model_time` (network): the map t(sigma) the network sees, a `TimeMap`
  (default 250 log(sigma + 1e-44)), or a `TimeEmbedding` for a time that is a vector (a
  sinusoidal embedding the sampler computes from sigma): sigma is read back through its
  declared inverse, and CONV-1 checks its forward against what the network saw;
- `c_in` (network): whether the sampler applies c_in (False: inside the network);
- `noise`: "randn_like" (an object with `randn_like(x)`), "function" (`noise(x)`),
  "draws" (a list of one draw per step), "generator" (a seeded generator of the bridge's
  framework, drawn by its convention, e.g. `torch.randn(shape, generator=g, dtype)`, or a
  JAX PRNG key split as the `JaxBridge` declares; a generator's state is recorded at every
  network call, which counts the draws between calls, and it can be restarted from another
  seed when an evaluation begins, so that two runs share their draws before it:
  `run_steps(switch=...)`), or "global" (the framework's global random state,
  `torch.randn_like(x)`: routed to the suite's draws during the call,
  `conformance.functional.global_noise`);
- `parameters`: config name -> the sampler's keyword (`{"sigma_min": "t_min", ...}`);
  config values it does not take are `fixed` (default: the spec's defaults; every test
  runs at them and takes its truth there: `settings`); `s_noise`
  not taken is folded into the draws the hook hands (s z), `sigma_data` and
  `clip_denoised` of a denoiser live in the suite's denoiser;
- `defaults`: the values its parameters take when the caller gives none (checked by CFG-1
  against the spec's defaults, and against a run of the sampler with no parameters); every
  mapped parameter has one, unless it is `required` (no default: always passed, not
  checked by CFG-1);
- `x_T`: "given" (the suite hands x_T), "drawn" (the sampler draws x_T = sigma_max z from
  its noise hook, whatever its first time point: diffusers' init_noise_sigma) or
  "drawn_at_first_point" (x_T = sigma_1 z, sigma_1 its first evaluated sigma: Kinyugo's,
  ECT's); a drawing sampler is handed zeros shaped like x_T and z as the first draw. On
  a grid that starts at sigma_max both are Algorithm 1's x_T = T z (XT-1); on one that
  starts below it, the declared scale is a convention (CONV-1).

Primitives a functional sampler does not offer (a stateful scheduler, `add_noise`,
`sigma_to_t`, the scalings as functions, a schedule function for "sigmas") are declared by
`unmet`, so their clauses are skipped as "not offered".
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import reject
from hypothesis.control import currently_in_test_context

from conformance import truth
from conformance.functional import global_noise
from conformance.functional.scripted import (
    DrawList,
    NoiseSource,
    RandnLike,
    Recording,
    ScriptedCallable,
)
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring import bounds
from conformance.protocol.adapter import (
    Adapter,
    Capabilities,
    Schedule,
    StepInputs,
    StepResult,
    Terms,
    TimestepSpec,
)
from conformance.protocol.bridges import KEY_SPLITS, ArrayBridge
from conformance.protocol.deviations import Deviation

CallableKind = Literal["network", "denoiser"]
TimePoints = Literal["timesteps", "ts", "sigmas", "sigmas_zero", "sigmas_only", "steps"]
NoiseHook = Literal["randn_like", "function", "draws", "generator", "global"]

TIME_POINTS = {
    "timesteps": "diffusers' descending indices into an N-point grid (sigma_min appended by "
    "the sampler)",
    "ts": "OpenAI's ascending indices into a steps-point grid, the end point steps - 1 included",
    "sigmas": "an explicit list of sigmas, the evaluation points then sigma_min",
    "sigmas_zero": "an explicit list of sigmas, the evaluation points then 0.0 (sigma_min a "
    "parameter or fixed)",
    "sigmas_only": "an explicit list of the evaluation sigmas alone (sigma_min a parameter or "
    "fixed)",
    "steps": "the number of steps n: the sampler computes its own grid (SCHED-1's indices)",
}
NOISE_HOOKS = {
    "randn_like": "an object with randn_like(x)",
    "function": "a function noise(x)",
    "draws": "a list of draws, one per step",
    "generator": "a seeded generator, drawn by the bridge's convention",
    "global": "the framework's global random state, routed to the suite's draws",
}
X_T = {
    "given": "given by the caller",
    "drawn": "drawn by the sampler at sigma_max, x_T = sigma_max z whatever its first point",
    "drawn_at_first_point": "drawn by the sampler at its first time point, x_T = sigma_1 z",
}
#: The time-point conventions that hand the sampler its sigmas (no schedule of its own).
SIGMA_LISTS = ("sigmas", "sigmas_zero", "sigmas_only")
#: Examples of custom time points rejected in a row for time_points="steps" before the test
#: is skipped with the reason (below hypothesis' filter_too_much health check, 50).
REJECTS_BEFORE_SKIP = 20
#: Config values that decide the schedule (the others are free in a schedule-only run).
SCHEDULE_KEYS = ("num_train_timesteps", "sigma_min", "sigma_max", "rho")


@dataclass(frozen=True)
class TimeMap:
    """The model time t(sigma) a network sees, and its inverse (numeric if not given)."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray], np.ndarray] | None = None

    def sigma(self, t: np.ndarray) -> np.ndarray:
        """The sigma whose model time is t (bisection on log sigma when no inverse is given:
        t(sigma) must be increasing)."""
        t = np.asarray(t, dtype=np.float64)
        if self.backward is not None:
            return np.asarray(self.backward(t), dtype=np.float64)
        lo, hi = np.full(t.shape, math.log(1e-12)), np.full(t.shape, math.log(1e12))
        for _ in range(200):
            mid = (lo + hi) / 2
            below = np.asarray(self.forward(np.exp(mid)), dtype=np.float64) < t
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return np.exp((lo + hi) / 2)


#: 250 ln(sigma + 1e-44): diffusers' and OpenAI's PyTorch code (the spec's TIME-1).
EDM_TIME = TimeMap(
    "250 log(sigma + 1e-44)", lambda s: 250.0 * np.log(s + 1e-44), lambda t: np.exp(t / 250.0)
)
#: ln(sigma) / 4: OpenAI's JAX CIFAR-10 code.
QUARTER_LOG = TimeMap("0.25 log(sigma)", lambda s: 0.25 * np.log(s), lambda t: np.exp(4.0 * t))
#: 1000 * 0.25 ln(sigma).
THOUSAND_QUARTER_LOG = TimeMap(
    "1000 * 0.25 log(sigma)", lambda s: 1000 * 0.25 * np.log(s), lambda t: np.exp(t / 250.0)
)
#: sigma itself.
RAW_SIGMA = TimeMap("sigma", lambda s: np.asarray(s, np.float64), lambda t: t)


@dataclass(frozen=True)
class TimeEmbedding:
    """A model time that is a vector: `forward(sigma)` gives the `width` values the network
    sees (e.g. a sinusoidal embedding the sampler computes from sigma), `backward(e)` reads
    sigma back from one. The suite reads the sigma of each call through `backward`, and
    CONV-1 checks that `forward` of it is what the network saw (so the declaration, not
    adapter code, is under test)."""

    name: str
    forward: Callable[[float], np.ndarray]
    backward: Callable[[np.ndarray], float]
    width: int

    def rows(self, seen: np.ndarray) -> np.ndarray:
        """The recorded time values as (batch, width) rows (ConventionError if they are not a
        whole number of embeddings)."""
        if seen.size == 0 or seen.size % self.width:
            raise ConventionError(
                f"model time t = {self.name}: expected embeddings of width {self.width}, "
                f"seen {seen.size} values"
            )
        return seen.reshape(-1, self.width)

    def sigma(self, seen: np.ndarray) -> float:
        """The sigma read back from the first embedding of a call."""
        return float(self.backward(self.rows(seen)[0]))

    def tolerance(self, dtype: str) -> float:
        """Absolute agreement of forward(sigma read back) with the embedding seen: components
        of a sinusoidal embedding lie in [-1, 1], computed from arguments up to ~1e3 in the
        call's dtype, so each is off by up to ~1e3 u; 1e4 u covers it (6e-4 in float32, 2e-12
        in float64). A wrong frequency or time scale moves components by O(1)."""
        return 1e4 * bounds.U.get(dtype, bounds.U["float64"])


def _check_defaults(
    parameters: Mapping[str, str], defaults: Mapping[str, Any] | None, required: Sequence[str]
) -> None:
    """A declaration of parameters the suite can hold to CFG-1: `required` (no default in the
    sampler's signature) are mapped parameters; with `defaults`, every other mapped parameter
    has one (ValueError naming what is missing)."""
    stray = [k for k in required if k not in parameters]
    if stray:
        raise ValueError(f"`required` names {stray}, which `parameters` does not map")
    if defaults is None:
        return
    missing = [k for k in parameters if k not in defaults and k not in required]
    if missing:
        raise ValueError(
            f"`defaults` gives no default for the mapped parameter(s) {missing}: declare the "
            "sampler's default, or list the parameter in `required` if it has none"
        )
    unknown = [k for k in defaults if k not in parameters]
    if unknown:
        raise ValueError(f"`defaults` names {unknown}, which `parameters` does not map")
    clash = [k for k in required if k in defaults]
    if clash:
        raise ValueError(f"{clash} declared both `required` and with `defaults`")


#: The spec's domain of each config value (SPEC.md, CFG-2): (test, what is allowed).
DOMAIN: dict[str, tuple[Callable[[Any], bool], str]] = {
    "num_train_timesteps": (lambda v: _integer(v) and v >= 2, "an integer >= 2"),
    "sigma_min": (lambda v: _real(v) and v > 0, "a finite number > 0"),
    "sigma_max": (lambda v: _real(v) and v > 0, "a finite number > 0"),
    "sigma_data": (lambda v: _real(v) and v > 0, "a finite number > 0"),
    "rho": (lambda v: _real(v) and v > 0, "a finite number > 0"),
    "s_noise": (lambda v: _real(v) and v >= 0, "a finite number >= 0"),
    "clip_denoised": (lambda v: isinstance(v, (bool, np.bool_)), "a bool"),
}


def _integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _real(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
    )


def _check_domain(argument: str, values: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Each value the declaration's `argument` (`fixed` or `defaults`) gives lies in the
    spec's domain (CFG-2), and so does the config they make (sigma_min < sigma_max):
    ValueError naming the argument, the value and what is allowed, at declaration, not a
    failure deep inside a clause."""
    for key, value in values.items():
        holds, allowed = DOMAIN[key]
        if not holds(value):
            raise ValueError(
                f"`{argument}` gives {key} = {value!r}: the spec's {key} is {allowed} "
                "(SPEC.md, CFG-2)"
            )
    if not float(config["sigma_min"]) < float(config["sigma_max"]):
        raise ValueError(
            f"`{argument}` gives sigma_min = {config['sigma_min']!r} and sigma_max = "
            f"{config['sigma_max']!r}: sigma_min must be < sigma_max (SPEC.md, CFG-2)"
        )


class ConventionError(AssertionError):
    """A declared convention that the recording contradicts (CONV-1), or a recording the
    declared conventions cannot read; the message names the convention, expected and seen."""


@dataclass
class Run:
    """One run of the sampler: its recording and what it returned; for noise="generator",
    the generator's state when handed over (`start`), at each call (`states`, before a
    restart), after a restart at call `restart_at` (`restarted`) and at the end (`end`)."""

    recording: Recording
    final: Any
    points: Any
    start: Any = None
    states: list[Any] | None = None
    restart_at: int | None = None
    restarted: Any = None
    end: Any = None
    #: Draws that escaped noise="global"'s routing (sentences), and the data of the key of
    #: each `jax.random.normal` call when keys were watched (None: not watched).
    escapes: list[str] = field(default_factory=list)
    keys: list[np.ndarray] | None = None


class FunctionalSampler(Adapter):
    """An adapter for a sampler function with its own loop (module docstring)."""

    def __init__(
        self,
        sample: Callable[..., Any],
        *,
        name: str,
        callable: CallableKind,  # noqa: A002 (the issue's word for it)
        time_points: TimePoints,
        noise: NoiseHook,
        bridge: ArrayBridge,
        dtypes: Sequence[str] = ("float32",),
        devices: Sequence[str] = ("cpu",),
        model_time: TimeMap | TimeEmbedding = EDM_TIME,
        c_in: bool = True,
        parameters: Mapping[str, str] | None = None,
        fixed: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        required: Sequence[str] = (),
        x_T: Literal["given", "drawn", "drawn_at_first_point"] = "given",
        version: str = "unknown",
        description: str = "",
        deviations: Sequence[Deviation] = (),
    ) -> None:
        for argument, value, allowed in (
            ("callable", callable, ("network", "denoiser")),
            ("time_points", time_points, tuple(TIME_POINTS)),
            ("noise", noise, tuple(NOISE_HOOKS)),
        ):
            if value not in allowed:
                raise ValueError(f"`{argument}` must be one of {allowed}, got {value!r}")
        if time_points == "steps" and callable != "denoiser":
            raise ValueError(
                "`time_points` 'steps' is supported for callable='denoiser' only: a network's "
                "sigma is read through one-step runs at chosen time points, which a sampler "
                "taking a step count cannot be given"
            )
        self.parameters = dict(parameters or {})
        unknown = [k for k in self.parameters if k not in DEFAULT_CONFIG]
        unknown += [k for k in (fixed or {}) if k not in DEFAULT_CONFIG]
        if unknown:
            raise ValueError(
                f"`parameters`/`fixed` name {unknown}, not config values {list(DEFAULT_CONFIG)}"
            )
        if noise == "generator" and "s_noise" not in self.parameters:
            raise ValueError(
                "`parameters` must map s_noise for noise='generator': the suite cannot scale "
                "draws the sampler takes from its own generator"
            )
        if noise == "global" and not bridge.global_random:
            raise ValueError(
                f"`noise` 'global': {type(bridge).__name__} has no global random state to "
                "route (a JAX sampler draws from a key: noise='generator')"
            )
        self.required = tuple(required)
        if x_T not in X_T:
            raise ValueError(f"`x_T` must be one of {tuple(X_T)}, got {x_T!r}")
        if x_T != "given" and noise == "generator":
            raise ValueError(
                f"`x_T` {x_T!r} with noise='generator': declare a noise hook (randn_like, "
                "function, draws or global) from which the sampler draws x_T"
            )
        self.x_T = x_T
        self.x_T_drawn = x_T != "given"
        _check_defaults(self.parameters, defaults, self.required)
        _check_domain("fixed", fixed or {}, {**DEFAULT_CONFIG, **(fixed or {})})
        if defaults is not None:
            config = {**DEFAULT_CONFIG, **(fixed or {}), **defaults}
            _check_domain("defaults", defaults, config)
        if not isinstance(model_time, (TimeMap, TimeEmbedding)):
            raise TypeError(
                "`model_time` must be a TimeMap or a TimeEmbedding, got "
                f"{type(model_time).__name__}"
            )
        self.sample_fn = sample
        self.name = name
        self.version = version
        self.kind = callable
        self.time_points = time_points
        self.noise = noise
        self.bridge = bridge
        self.model_time = model_time
        self.applies_c_in = c_in
        self.fixed = {**DEFAULT_CONFIG, **(fixed or {})}
        self.defaults = None if defaults is None else dict(defaults)
        self.deviations = tuple(deviations)
        self.description = description or (
            f"{getattr(sample, '__module__', '?')}.{getattr(sample, '__qualname__', sample)} "
            "(a functional sampler)"
        )
        self.noise_through_hook = noise != "generator"
        handed = (
            "draws routed from the global random state to the suite's"
            if noise == "global"
            else f"the suite's draws, handed through its noise hook '{noise}'"
        )
        self.terms = Terms(
            run=f"a run of {name} (its own loop, with the suite's scripted {callable})",
            model_input=f"the {callable}'s input",
            prev_sample="the sample it stepped to (the next model input, or what it returned)",
            position="evaluation",
            handed_noise=handed,
            points=self._points_text,
        )
        self.capabilities = Capabilities(
            devices=tuple(devices),
            dtypes=tuple(dtypes),
            injected_noise=False,
            noise_convention=bridge.noise_convention if noise == "generator" else None,
            stateful=False,
        )

    # -- what is offered -----------------------------------------------------------------------

    def _inside(self, key: str) -> bool:
        """Whether config value `key` is applied by the suite's side of the interface (the
        denoiser's scalings and clamp; s_noise folded into the handed draws; the schedule's
        values in a given sigma list)."""
        if self.kind == "denoiser" and key in ("sigma_data", "clip_denoised"):
            return True
        if self.time_points in SIGMA_LISTS and key in SCHEDULE_KEYS:
            # the sigma list carries them (sigma_min only where it ends the list)
            return key != "sigma_min" or self.time_points == "sigmas"
        return key == "s_noise" and self.noise_through_hook and key not in self.parameters

    def unmet(self, need: str) -> str | None:
        who = f"{self.name} (a functional sampler)"
        not_offered = {
            "stateful": f"{who} has no scheduler object: not offered",
            "sigma_to_t": f"{who} offers no sigma_to_t: not offered",
            "boundary_scalings": f"{who} offers no scalings function: not offered",
            "edm_scalings": f"{who} offers no EDM scalings: not offered",
            "add_noise": f"{who} offers no add_noise: not offered",
            "generator_list": f"{who} takes no list of generators: not offered",
            "step_arguments": f"{who} takes no model_output or noise argument: the network's "
            "output and the draws come from the suite's scripted model and noise hook",
            "per_position_inputs": f"{who} chains its own samples: no position can be given "
            "its own x",
        }
        if need in not_offered:
            return not_offered[need]
        hook = NOISE_HOOKS[self.noise]
        if need == "injected_noise":
            return f"{who} takes no noise= argument; its draws come through its noise hook ({hook})"
        if need == "noise_convention" and self.noise_through_hook:
            return f"{who} draws through its noise hook ({hook}), not a seeded generator"
        if need == "own_draws" and self.noise_through_hook:
            return f"{who} draws through its noise hook ({hook}): the draws are the suite's"
        if need == "schedule" and self.time_points in SIGMA_LISTS:
            return f"{who} is given its sigmas (an explicit list): no schedule of its own"
        inside = "inside the denoiser callable D(x, sigma), which the recording cannot see"
        if need == "model_time":
            if self.kind == "denoiser":
                return f"{who} gives the denoiser sigma itself; any model time is {inside}"
            if self.model_time is not EDM_TIME:
                return (
                    f"{who}'s network sees t = {self.model_time.name}, a declared interface "
                    "convention (CONV-1 verifies it)"
                )
        if need == "c_in":
            if self.kind == "denoiser":
                return f"{who}: c_in is applied {inside}"
            if not self.applies_c_in:
                return f"{who}: c_in is applied inside the network (declared; CONV-1 verifies it)"
        if need == "denoise" and self.kind == "denoiser":
            return f"{who}: c_skip, c_out and the clamp are applied {inside}"
        if need in ("clip_off", "clip_on") and not self._passes("clip_denoised"):
            value = bool(self.fixed["clip_denoised"])
            if value != (need == "clip_on"):
                return f"{who} {'always' if value else 'never'} clamps (declared: no parameter)"
        if need == "defaults" and self.defaults is None and not self._own_values():
            return f"{who} declares no defaults and fixes no config value of its own"
        if need == "x_T_drawn" and not self.x_T_drawn:
            return f"{who} is given x_T (declared): it draws no initial sample"
        if need == "x_T_drawn" and self.kind == "network" and self.applies_c_in:
            return (
                f"{who} draws x_T, which its network sees only as c_in x_T: x_T cannot be read "
                "apart from c_in (the step clauses read it through the sampler's own c_in)"
            )
        return None  # offered (conventions, defaults, known noise, ...)

    def _passes(self, key: str) -> bool:
        return key in self.parameters or self._inside(key)

    def header_lines(self) -> list[str]:
        lines = [
            f"functional sampler: {self.kind} "
            + ("F(x_in, t)" if self.kind == "network" else "D(x, sigma) -> denoised"),
            f"  time points: {self.time_points} ({TIME_POINTS[self.time_points]})",
        ]
        if self.kind == "network":
            lines.append(f"  model time: t = {self.model_time.name}")
            if isinstance(self.model_time, TimeEmbedding):
                lines.append(
                    f"  (an embedding of width {self.model_time.width}: sigma read back by its "
                    "declared inverse; CONV-1 checks its forward against what was seen)"
                )
            lines.append(
                "  c_in: " + ("applied by the sampler" if self.applies_c_in else "in the network")
            )
        else:
            lines.append(
                "  in the suite's denoiser (oracle): c_skip, c_out and the clamp, with the run's "
                "sigma_data and clip_denoised"
            )
        lines.append(f"  noise hook: {self.noise} ({NOISE_HOOKS[self.noise]})")
        if self.noise == "generator" and hasattr(self.bridge, "keys"):
            lines.append(f"  keys: {self.bridge.keys} ({KEY_SPLITS[self.bridge.keys]})")
        if self.noise == "global":
            routed = [r for f in self.bridge.global_random for r in global_noise.ROUTED[f]]
            lines.append(f"  routed to the suite's draws: {', '.join(routed)}")
        if getattr(self.bridge, "compiled", False):
            lines.append(
                "  compiled (jit, pmap, lax loops): the model's calls recorded through "
                "jax.experimental.io_callback"
            )
        passed = ", ".join(f"{k} as {v}" for k, v in self.parameters.items()) or "none"
        lines.append(f"  parameters: {passed}")
        fixed = [f"{k} = {self.fixed[k]!r}" for k in DEFAULT_CONFIG if not self._passes(k)]
        if fixed:
            lines.append(f"  fixed (no parameter): {', '.join(fixed)}")
        if self._inside("s_noise"):
            lines.append("  s_noise: no parameter; folded into the draws the hook hands (s z)")
        if self.defaults is not None:
            lines.append(f"  declared defaults: {self.defaults}")
        if self.required:
            lines.append(f"  required (no default): {', '.join(self.required)}")
        if self.x_T_drawn:
            lines.append(
                f"  x_T: {X_T[self.x_T]}, z the hook's first draw (handed an array of zeros "
                "shaped like x_T)"
            )
        lines.append(
            "  not offered: stateful scheduler, add_noise, sigma_to_t, scalings functions"
            + (", schedule (given sigmas)" if self.time_points in SIGMA_LISTS else "")
        )
        return lines

    def reproduce_noise(
        self, seed: int, shape: tuple[int, ...], dtype: str, device: str, draws: int
    ) -> list[Any]:
        """The draws the sampler takes from `generator(seed)`: a JAX key is never advanced,
        its draws are derived by the bridge's declared splitting."""
        if hasattr(self.bridge, "reproduce_noise_from"):
            return self._seeded(seed, shape, dtype, device, draws)
        return super().reproduce_noise(seed, shape, dtype, device, draws)

    def _seeded(
        self, seed: int, shape: tuple[int, ...], dtype: str, device: str, draws: int
    ) -> list[Any]:
        """The first `draws` draws of the bridge's generator seeded with `seed`, by its
        convention (whether or not the sampler draws from one)."""
        generator = self.generator(seed, device)
        if hasattr(self.bridge, "reproduce_noise_from"):
            return self.bridge.reproduce_noise_from(generator, shape, dtype, device, draws)
        return [self.bridge.draw_noise(generator, shape, dtype, device) for _ in range(draws)]

    # -- the functional primitives ---------------------------------------------------------------

    def sigma_to_t(self, config: Mapping[str, Any], sigmas: np.ndarray) -> Any:
        raise NotImplementedError(self.unmet("sigma_to_t"))

    def boundary_scalings(self, config: Mapping[str, Any], sigma: Any) -> tuple[Any, Any]:
        raise NotImplementedError(self.unmet("boundary_scalings"))

    def edm_scalings(self, config: Mapping[str, Any], sigma: Any) -> tuple[Any, Any]:
        raise NotImplementedError(self.unmet("edm_scalings"))

    def add_noise(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(self.unmet("add_noise"))

    def schedule(self, config: Mapping[str, Any], spec: TimestepSpec, device: str) -> Schedule:
        """The sigmas the sampler evaluates at (read from a recorded run), then sigma_min,
        and the times its callable saw (float64, native arrays)."""
        if self.time_points in SIGMA_LISTS:
            raise NotImplementedError(self.unmet("schedule"))
        config = self.settings(config, spec)
        dtype = "float64" if "float64" in self.capabilities.dtypes else self.capabilities.dtypes[0]
        x_T = self.asarray(np.ones((1, 2)), dtype, device)
        run = self._run(config, spec, x_T, [], seed=0)
        # a step count's points are its grid's, SCHED-1's: how many, too
        self._readable(config, spec, run, x_T, count=self.time_points != "steps")
        sigmas = [*self._sigmas(run.recording), float(config["sigma_min"])]
        times = [self._time(c.time) for c in run.recording.calls]
        return Schedule(
            self.asarray(np.array(sigmas), "float64", device),
            self.asarray(np.array(times), "float64", device),
            np.array([*self._readback(run.recording), 0.0]),
        )

    def run_steps(
        self,
        config: Mapping[str, Any],
        spec: TimestepSpec,
        device: str,
        inputs: Sequence[StepInputs],
        *,
        seed: int | None = None,
        switch: tuple[int, int] | None = None,
    ) -> list[StepResult]:
        """Run the whole loop from inputs[0].sample, the scripted model answering call k with
        inputs[k].model_output (zeros after the last given), the hook handing inputs[k].noise
        as draw k (else the seeded generator's, else its own); read each position back from
        the recording (`StepResult.sample`: the chained x the sampler used). `switch` =
        (a, k) with noise="generator": the generator is seeded `a`, and restarted from `seed`
        when the network is called for evaluation k, so that two runs with the same `a` and
        two seeds reach position k alike and draw differently from there on. `draws`: the
        draws after each evaluation, through the hook, or of the convention from the
        generator (those before evaluation 0 counted at 0; None: not a whole number)."""
        config = self.settings(config, spec)
        if not inputs:
            return []
        x_T = inputs[0].sample
        run = self._run(config, spec, x_T, inputs, seed, switch=switch)
        calls = run.recording.calls
        n = self._n(config, spec)
        K = len(inputs)
        self._readable(config, spec, run, x_T)
        counted = None if self.noise_through_hook else self._generator_draws(run, x_T)
        sigmas = self._sigmas(run.recording)
        errors = [*self._readback(run.recording), 0.0]  # sigma_min: the config's, exact
        visible = self.kind == "denoiser" or not self.applies_c_in
        results = []
        for k in range(K):
            if k + 1 < min(n, len(calls)):  # the next evaluation's input (CONV-1: n of them)
                seen = calls[k + 1].input
                prev = seen if visible else self._through_c_in(config, spec, k + 1, seen)
            else:
                prev = run.final
            sample = None if k == 0 else results[k - 1].prev_sample
            if k == 0 and self.x_T_drawn:  # the x_T it drew (XT-1 checks how)
                sample = self.initial_from(config, spec, calls[0].input)
            results.append(
                StepResult(
                    scaled=calls[k].input,
                    prev_sample=prev,
                    sample=sample,
                    sigma=float(sigmas[k]),
                    sigma_next=float(sigmas[k + 1])
                    if k + 1 < len(sigmas)
                    else float(config["sigma_min"]),
                    draws=run.recording.draws_between(k) if counted is None else counted[k],
                    sigma_error=errors[k],
                    sigma_next_error=errors[min(k + 1, len(errors) - 1)],
                )
            )
        return results

    def trajectory(
        self,
        config: Mapping[str, Any],
        spec: TimestepSpec,
        device: str,
        x_T: Any,
        network: Callable[[np.ndarray, float], np.ndarray],
        draws: Sequence[Any],
    ) -> tuple[Any, np.ndarray]:
        """The sampler's whole run from x_T with `network(u, sigma) -> F` (float64 numpy,
        u = c_in x at the sigma the call stands for) in place of its model, and `draws`
        handed through its noise hook: the final sample (native) and the sigmas it used
        (float64: its evaluation points, then sigma_min). A network that applies
        c_in sees u; one with c_in inside sees x (the suite applies c_in); a denoiser gets
        the denoised value of `network`'s F from the oracle (GOLD-4)."""
        config = self.settings(config, spec)
        sd = float(config["sigma_data"])

        def F(x: Any, t: np.ndarray) -> np.ndarray:
            sigma = float(np.ravel(t)[0])
            if self.kind != "denoiser":
                sigma = float(self._map.sigma(np.array([self._time(np.ravel(t))]))[0])
            u = self.to_numpy(x)
            if self.kind == "denoiser" or not self.applies_c_in:
                u = u / math.hypot(sigma, sd)
            return network(u, sigma)

        given = [StepInputs(x_T, x_T, d) for d in draws]
        run = self._run(config, spec, x_T, given, None, network=F)
        self._readable(config, spec, run, x_T)
        return run.final, np.array([*self._sigmas(run.recording), float(config["sigma_min"])])

    # -- declared defaults and conventions ---------------------------------------------------------

    def default_config(self) -> dict[str, Any]:
        """The config the sampler uses when the caller gives none: the declared defaults of
        its parameters and its fixed values, after checking that a run with no parameters is
        bit for bit a run with the declared defaults (ConventionError otherwise)."""
        if self.defaults is None:
            if not self._own_values():
                raise NotImplementedError(self.unmet("defaults"))
            return self._own_values()
        config = {**self.fixed, **self.defaults}
        spec = TimestepSpec(num_inference_steps=min(3, int(config["num_train_timesteps"])))
        dtype = self.capabilities.dtypes[0]
        rng = np.random.default_rng(7)
        x_T = self.asarray(float(config["sigma_max"]) * rng.standard_normal((2, 3)), dtype, "cpu")
        given = [
            StepInputs(self.asarray(4.0 * rng.standard_normal((2, 3)), dtype, "cpu"), x_T)
            for _ in range(3)
        ]
        with_defaults = self._run(config, spec, x_T, given, seed=11)
        without = self._run(config, spec, x_T, given, seed=11, parameters=False)
        a, b = self.to_numpy(with_defaults.final), self.to_numpy(without.final)
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
            diff = np.max(np.abs(a - b)) if a.shape == b.shape else f"shapes {a.shape}, {b.shape}"
            raise ConventionError(
                f"declared defaults {self.defaults}: a run without parameters is not a run with "
                f"them (final samples differ by up to {diff})"
            )
        out = {k: config[k] for k in DEFAULT_CONFIG if k in self.parameters or not self._passes(k)}
        out = {k: v for k, v in out.items() if k not in self.required}  # no default to check
        return out

    def check_conventions(self, device: str, dtype: str) -> list[str]:
        """Each declared convention checked on a recorded run of the default config: a list
        of what holds (ConventionError, naming the convention, expected and seen, on the
        first that does not)."""
        config = {**DEFAULT_CONFIG, **self.fixed}
        spec = TimestepSpec(timesteps=(39, 22, 0))
        if self.time_points == "steps":  # the same count; its grid is SCHED's
            spec = TimestepSpec(num_inference_steps=3)
        exact = truth.schedule(config, spec)
        rng = np.random.default_rng(3)
        x_T = self.asarray(80.0 * rng.standard_normal((2, 3)), dtype, device)
        given = [StepInputs(self.asarray(rng.standard_normal((2, 3)), dtype, device), x_T)] * 3
        run = self._run(config, spec, x_T, given, seed=5, conventions=True)
        calls = run.recording.calls
        held = []
        n = len(exact)
        if len(calls) != n and self.time_points != "steps":
            raise ConventionError(
                f"time points ({self.time_points}, {TIME_POINTS[self.time_points]}): expected "
                f"{n} evaluations, one per evaluation point (the sampler was given "
                f"{run.points}), seen {len(calls)}"
            )
        if len(calls) != n:  # its own grid: how many points n steps take is SCHED-1's
            held.append(
                f"time points (steps): {len(calls)} evaluations for n = {n} steps (the count "
                "is the schedule's: SCHED-1)"
            )
        else:
            held.append(f"time points ({self.time_points}): {n} evaluations")
        for k, call in enumerate(calls):
            seen = call.time
            if isinstance(self.model_time, TimeEmbedding):
                self._embedding_holds(k, seen, call.time_dtype)
                seen = np.array([self._time(seen)])
            if seen.size > 1 and not np.all(seen == seen[0]):
                raise ConventionError(
                    f"time argument at evaluation {k}: expected one value for the batch, "
                    f"seen {seen.tolist()}"
                )
            if self.kind == "network":
                self._time_map_holds(config, spec, k, dtype, device)
            elif self.time_points in SIGMA_LISTS and seen[0] != float(exact.sigmas[k]):
                raise ConventionError(
                    f"time points (sigmas): at evaluation {k} expected the given sigma "
                    f"{float(exact.sigmas[k])!r}, seen {seen[0]!r}"
                )
        if self.kind == "network":
            held.append(f"model time t = {self.model_time.name}")
        if self.kind == "network" and not self.applies_c_in:
            model_in = self.to_numpy(calls[0].input)
            x = self.to_numpy(x_T)
            if not np.array_equal(model_in, x):
                ratio = float(np.median(model_in / x))
                raise ConventionError(
                    f"c_in inside the network (declared): expected the network's input at "
                    f"evaluation 0 to be x_T, seen x_T times {ratio:.6g} (c_in(80) = "
                    f"{1 / math.hypot(80.0, config['sigma_data']):.6g}: the sampler applies c_in)"
                )
            held.append("c_in inside the network")
        if self.x_T_drawn and self.unmet("x_T_drawn") is None and self.time_points != "steps":
            held.append(self._x_T_scale_holds(config, dtype, device))
        if run.escapes:
            raise ConventionError(f"noise (global, {NOISE_HOOKS['global']}): {run.escapes[0]}")
        if self.noise_through_hook:
            if not run.recording.draws_after:
                raise ConventionError(
                    f"noise hook ({self.noise}, {NOISE_HOOKS[self.noise]}): expected draws "
                    f"through it in a {n}-step run, seen none (the sampler draws its own noise?)"
                )
            held.append(f"noise hook ({self.noise})")
        if run.keys is not None:
            held.append(self._check_keys(run.keys, seed=5))
        return held

    def _x_T_scale_holds(self, config: Mapping[str, Any], dtype: str, device: str) -> str:
        """CONV-1 for a sampler that draws x_T: on timesteps [22, 10], whose first point
        sigma_1 is below sigma_max (Algorithm 1 starts at T = sigma_max and says nothing of
        such a grid), x_T is z times the declared scale: sigma_max ("drawn") or sigma_1
        ("drawn_at_first_point"). XT-1 holds x_T = sigma_max z on grids that start there."""
        spec = TimestepSpec(timesteps=(22, 10))
        z = np.random.default_rng(11).standard_normal((2, 3))
        x_T, _ = self.initial_sample(config, spec, self.asarray(z, dtype, device))
        z = self.to_numpy(self.asarray(z, dtype, device))  # as handed, rounded to the dtype
        seen = float(np.median(self.to_numpy(x_T) / z))
        scales = {
            "drawn": float(config["sigma_max"]),
            "drawn_at_first_point": float(truth.schedule(config, spec).sigmas[0]),
        }
        expected = scales[self.x_T]
        declared = f"x_T {self.x_T!r} ({X_T[self.x_T]})"
        if abs(seen / expected - 1.0) <= self._map_tolerance(dtype):
            return f"{declared}: x_T = {expected:.6g} z on timesteps [22, 10]"
        fits = [k for k, v in scales.items() if abs(seen / v - 1.0) <= self._map_tolerance(dtype)]
        hint = f": declare x_T={fits[0]!r}" if fits else ""
        raise ConventionError(
            f"{declared}: on timesteps [22, 10] (first point sigma_1 = "
            f"{scales['drawn_at_first_point']:.6g}) expected x_T = {expected:.6g} z, seen "
            f"{seen:.6g} z{hint}"
        )

    def _embedding_holds(self, k: int, seen: np.ndarray, dtype: str) -> None:
        """CONV-1 for a declared embedding at evaluation k: every embedding of the batch is the
        first, and the declared forward of the sigma read back from it is what was seen."""
        embedding = self.model_time
        rows = embedding.rows(seen)
        declared = f"model time t = {embedding.name} (an embedding of width {embedding.width})"
        if not np.all(rows == rows[0]):
            raise ConventionError(
                f"{declared}: at evaluation {k} expected one embedding for the batch, seen "
                f"{len(rows)} that differ"
            )
        sigma = embedding.sigma(rows[0])
        expected = np.ravel(np.asarray(embedding.forward(sigma), dtype=np.float64))
        if expected.shape != rows[0].shape:
            raise ConventionError(
                f"{declared}: its forward gives {expected.size} values, the network saw "
                f"{rows[0].size}"
            )
        gap = np.abs(expected - rows[0])
        worst = int(np.argmax(gap))
        if not np.isfinite(sigma) or gap[worst] > embedding.tolerance(dtype):
            raise ConventionError(
                f"{declared}: at evaluation {k} the network saw an embedding that reads back "
                f"to sigma {sigma:.6g}, whose declared embedding differs from it: component "
                f"{worst} expected {expected[worst]:.6g}, seen {rows[0][worst]:.6g} "
                f"(|difference| {gap[worst]:.3g} > {embedding.tolerance(dtype):.3g})"
            )

    def _check_keys(self, seen: Sequence[np.ndarray], seed: int) -> str:
        """The key of each `jax.random.normal` call of a recorded run against the bridge's
        declared splitting of the key the sampler was given (`generator(seed)`)."""
        keys = self.bridge.keys
        declared = f"noise keys ({keys}: {KEY_SPLITS[keys]})"
        if not seen:
            raise ConventionError(
                f"{declared}: expected draws by jax.random.normal from the key given, seen "
                "none (the sampler draws another way, or through a function compiled before "
                "the run, which the suite cannot watch)"
            )
        root = self.bridge.key_data(self.generator(seed, "cpu"))
        expected = [self.bridge.key_data(k) for k in self.bridge.draw_keys(root, len(seen))]
        for j, (got, want) in enumerate(zip(seen, expected, strict=True)):
            if np.array_equal(got, want):
                continue
            hint = ""
            if np.array_equal(got, root):
                hint = " (the key given itself: drawn before splitting it)"
            elif any(np.array_equal(got, seen[i]) for i in range(j)):
                hint = " (an earlier draw's key again: a key used twice)"
            raise ConventionError(
                f"{declared}: draw {j} expected key {want.tolist()}, seen {got.tolist()}{hint}"
            )
        return f"{declared}: {len(seen)} draws"

    # -- running and reading the recording ---------------------------------------------------------

    def initial_sample(
        self, config: Mapping[str, Any], spec: TimestepSpec, z: Any
    ) -> tuple[Any, Any]:
        """(x_T, z): the initial sample a sampler that draws x_T formed when its first draw was
        `z` (native), read from the recording (XT-1)."""
        info = self.describe(z)
        like = self.asarray(np.zeros(info.shape), info.dtype, info.device)
        run = self._run(config, spec, like, [], None, z_T=self.to_numpy(z))
        if not run.recording.calls:
            raise ConventionError("x_T drawn: the sampler never evaluated its model")
        return self.initial_from(config, spec, run.recording.calls[0].input), z

    def _x_T_scale(self, config: Mapping[str, Any], spec: TimestepSpec) -> float:
        """The T of x_T = T z the declaration says the sampler forms on `spec`: sigma_max, or
        its first evaluated sigma (SCHED-1's, which is sigma_max for a step count)."""
        if self.x_T == "drawn_at_first_point" and self.time_points != "steps":
            return float(truth.schedule(config, spec).sigmas[0])
        return float(config["sigma_max"])

    def initial_from(self, config: Mapping[str, Any], spec: TimestepSpec, seen: Any) -> Any:
        """The sample before evaluation 0, from the model's first input `seen`."""
        if self.kind == "denoiser" or not self.applies_c_in:
            return seen
        return self._through_c_in(config, spec, 0, seen)

    def _scripted(self, recording: Recording, respond: Any, fresh: bool) -> ScriptedCallable:
        """The scripted model, one per adapter re-armed for each run: a compiled sampler that
        takes it as a static argument (`jax.jit`) compiles once per shape, not once per run.
        `fresh`: a new one, so that such a sampler is traced again (CONV-1 watches its keys)."""
        model = getattr(self, "_model", None)
        if fresh or model is None:
            model = ScriptedCallable(self.bridge, recording, respond)
            if not fresh:
                self._model = model
        model.recording, model.respond = recording, respond
        return model

    # -- reading the sigma the network was used at ------------------------------------------------

    def _one_point(self, config: Mapping[str, Any], spec: TimestepSpec, k: int) -> TimestepSpec:
        """The k-th time point of `spec` alone (one-step sampling there)."""
        ascending = sorted(spec.indices(int(config["num_train_timesteps"])))
        return TimestepSpec(timesteps=(ascending[k],))

    def _calibrate(
        self, config: Mapping[str, Any], spec: TimestepSpec, k: int, dtype: str, device: str
    ) -> Scalings:
        """One-step sampling at the k-th time point of `spec` with no clamp, from x = 1 with
        F = 0 (c_in: the network's input over x; c_skip: the output over x, x the sample the
        sampler formed, its own x_T where it draws one) and from x = 0 with F = 1 (c_out: the
        output), and the time its network saw: each read independently of the model time."""
        config = {**config, "clip_denoised": False}
        point = self._one_point(config, spec, k)
        ones = self.asarray(np.ones((1, 4)), dtype, device)
        run = self._run(config, point, ones, [], seed=0)
        call = run.recording.calls[0]
        seen = self.to_numpy(call.input)
        # x before the evaluation: seen where the network sees x; else x_T = 1 as handed (a
        # drawing sampler is handed z = 1 / its declared scale; CONV-1 checks the scale)
        x = np.ones(seen.shape) if self.applies_c_in else seen
        c_in = float(np.median(seen)) if self.applies_c_in else None
        c_skip = float(np.median(self.to_numpy(run.final) / x))
        zeros = self.asarray(np.zeros((1, 4)), dtype, device)
        out = self._run(config, point, zeros, [StepInputs(ones, zeros)], seed=0)
        c_out = float(np.median(self.to_numpy(out.final)))
        return Scalings(c_in, c_skip, c_out, self._time(call.time))

    def _disagreement(
        self,
        config: Mapping[str, Any],
        sigma: float,
        scalings: Scalings | None,
        c_in: float | None = None,
    ) -> float:
        """How far the scalings the sampler applied (or `c_in` alone) are from those at
        `sigma`: the smallest relative difference (c_out's as the relative difference of
        sigma it implies, c_out being flat in sigma near sigma_max and 0 at sigma_min), so
        that one wrong scaling is its own clause's (CIN-1, STEP-1)."""
        sd, eps = float(config["sigma_data"]), float(config["sigma_min"])
        gaps = []
        if scalings is not None:
            c_in = scalings.c_in
        if c_in is not None:
            gaps.append(abs(c_in * math.hypot(sigma, sd) - 1.0))
        if scalings is not None:
            gaps.append(abs(scalings.c_skip * ((sigma - eps) ** 2 + sd**2) / sd**2 - 1.0))
            c_out = (sigma - eps) * sd / math.hypot(sigma, sd)
            if c_out > 0:  # d ln c_out / d ln sigma = slope > 0 above sigma_min
                slope = sigma * (sd**2 + eps * sigma) / ((sigma - eps) * (sigma**2 + sd**2))
                gaps.append(abs(scalings.c_out / c_out - 1.0) / slope)
        return min(gaps) if gaps else 0.0

    def _map_tolerance(self, dtype: str) -> float:
        """Relative agreement of a scaling read from the output with the one at the sigma
        read from the time: the reading rounds to the dtype (a few u_D) and the time, if it
        is float32, reads sigma back to ~1e-5 (1e-4 covers it; a wrong map is off by percents)."""
        return 1e-4 + 16 * bounds.U[dtype]

    def _time_map_holds(
        self, config: Mapping[str, Any], spec: TimestepSpec, k: int, dtype: str, device: str
    ) -> None:
        """CONV-1 at evaluation k: the sigma read back from the time the network saw, through
        the declared map, is the sigma the sampler applied its c_in or c_skip at (read from
        one-step sampling at that point); the schedule itself is SCHED's."""
        scalings = self._calibrate(config, spec, k, dtype, device)
        t = scalings.t
        sigma = float(self._map.sigma(np.array([t]))[0])
        if self._disagreement(config, sigma, scalings) <= self._map_tolerance(dtype):
            return
        sd, eps = float(config["sigma_data"]), float(config["sigma_min"])
        used = []
        c_in, c_skip, c_out = scalings.c_in, scalings.c_skip, scalings.c_out
        if c_in is not None and 0 < c_in * sd < 1:
            used.append(("c_in", c_in, math.sqrt(1 / c_in**2 - sd**2)))
        if 0 < c_skip < 1:
            used.append(("c_skip", c_skip, eps + sd * math.sqrt(1 / c_skip - 1)))
        if 0 < c_out < sd:
            used.append(("c_out", c_out, _sigma_of_c_out(c_out, sd, eps)))
        applied = "; ".join(
            f"its {name} {value:.6g} is that of sigma {at:.6g}, whose t is "
            f"{float(self._map.forward(np.array(at))):.6g}"
            for name, value, at in used
        )
        raise ConventionError(
            f"model time t = {self.model_time.name}: at evaluation {k} the network saw "
            f"t = {t:.6g} (sigma {sigma:.6g} by the declared map), but "
            f"{applied or 'none of its c_in, c_skip and c_out is that of this sigma'}"
        )

    def _readable(
        self, config: Mapping[str, Any], spec: TimestepSpec, run: Run, x_T: Any, count: bool = True
    ) -> None:
        """Skip (the reason: CONV-1's finding) where the recording cannot be read: the network
        called other than once per time point (unless not `count`ed: the schedule's own
        points), or, for a network that applies c_in, a first time that reads back to a sigma
        neither its c_in nor its c_skip was applied at. A sampler on its own grid
        (time_points="steps") that evaluates other than n points for n steps departs from
        SCHED-1's grid: the finding is SCHED-1's."""
        n, calls = self._n(config, spec), run.recording.calls
        if count and len(calls) != n and self.time_points == "steps":
            pytest.skip(
                f"{self.name} evaluated {len(calls)} points for n = {n} steps: the steps cannot "
                "be read from the recording (SCHED-1's finding: n points for n steps)"
            )
        if count and len(calls) != n:
            pytest.skip(
                f"{self.name} called its {self.kind} {len(calls)} times for {n} time points: "
                "the steps cannot be read from the recording (CONV-1's finding)"
            )
        if self.kind != "network" or not self.applies_c_in:
            return
        x = self.to_numpy(x_T)
        seen = self.to_numpy(calls[0].input)
        usable = np.abs(x) > 0
        if not usable.any():
            return
        c_in = float(np.median(seen[usable] / x[usable]))
        sigma = float(self._map.sigma(np.array([self._time(calls[0].time)]))[0])
        dtype = self.describe(x_T).dtype
        tol = self._map_tolerance(dtype)
        if self._disagreement(config, sigma, None, c_in) <= tol:
            return
        scalings = self._calibrate(config, spec, 0, dtype, self.describe(x_T).device)
        if self._disagreement(config, sigma, scalings) > tol:
            pytest.skip(
                f"{self.name}'s network saw a time that reads back (t = {self.model_time.name}) "
                f"to sigma {sigma:.6g}, at which neither its c_in nor its c_skip was applied: "
                "the sigmas it used cannot be read (CONV-1's finding)"
            )

    # -- the generator's draws -----------------------------------------------------------------

    def _generator_draws(self, run: Run, x_T: Any) -> list[int | None]:
        """Sample-shaped draws of the convention the sampler took from its generator after
        each evaluation (before the next; those before evaluation 0 added to the first),
        from the recorded states; None where no whole number of them leads there."""
        info = self.describe(x_T)
        states = run.states or []
        ends = [*states[1:], run.end]
        out: list[int | None] = []
        for k, end in enumerate(ends):
            start = run.restarted if k == run.restart_at else states[k]
            out.append(self._count_draws(start, end, info.shape, info.dtype, info.device))
        if out and states:
            before = self._count_draws(
                run.start, states[0], info.shape, info.dtype, info.device, most=len(states) + 4
            )
            out[0] = None if before is None or out[0] is None else out[0] + before
        return out

    def _count_draws(
        self, start: Any, end: Any, shape: Any, dtype: str, device: str, most: int = 4
    ) -> int | None:
        """How many draws of `shape` lead a generator from state `start` to `end`."""
        generator = self.generator(0, device)
        if not _set_state(generator, start):
            return None
        for j in range(most + 1):
            if _same_state(self.generator_state(generator), end):
                return j
            self.bridge.draw_noise(generator, tuple(shape), dtype, device)
        return None

    # -- running and reading the recording ---------------------------------------------------------

    def _own_values(self) -> dict[str, Any]:
        """The config values the sampler fixes (no parameter, not applied by the suite)."""
        return {k: self.fixed[k] for k in DEFAULT_CONFIG if not self._passes(k)}

    def settings(
        self, config: Mapping[str, Any], spec: TimestepSpec | None = None
    ) -> dict[str, Any]:
        """`config` with the values the sampler fixes in place of those asked: it runs at
        them, and a test takes its truth there (CFG-1 reports a fixed value that is not the
        spec's). Time points `spec` that its fixed num_train_timesteps cannot hold: the
        hypothesis example is rejected, else the test is skipped with the reason."""
        out = {**dict(config), **self._own_values()}
        N = int(out["num_train_timesteps"])
        if spec is not None and N != int(config["num_train_timesteps"]):
            indices = spec.indices(N)
            if not indices or max(indices) >= N or min(indices) < 0:
                if currently_in_test_context():
                    reject()  # time points drawn for another N
                pytest.skip(
                    f"{self.name} fixes num_train_timesteps = {N} (no parameter); the time "
                    f"points {spec.kwargs()} do not fit it"
                )
        return out

    def _n(self, config: Mapping[str, Any], spec: TimestepSpec) -> int:
        return len(spec.indices(int(config["num_train_timesteps"])))

    def _points(self, config: Mapping[str, Any], spec: TimestepSpec) -> list[Any]:
        """`spec` in the sampler's convention."""
        if self.time_points == "steps":
            return self._steps(config, spec)
        N = int(config["num_train_timesteps"])
        indices = spec.indices(N)
        if self.time_points == "timesteps":
            return list(indices)
        if self.time_points == "ts":
            return [*sorted(indices), N - 1]
        sigmas = [float(s) for s in truth.schedule(config, spec).sigmas]
        if self.time_points == "sigmas_zero":
            return [*sigmas[:-1], 0.0]
        if self.time_points == "sigmas_only":
            return sigmas[:-1]
        return sigmas

    def _points_text(self, config: Mapping[str, Any], spec: TimestepSpec) -> str:
        """The time points `spec` as the sampler is given them, for a message."""
        if self.time_points == "steps":
            n = spec.num_inference_steps or len(spec.timesteps or ())
            return f"{self.name} with n = {n} steps (time_points='steps')"
        points = self._points(config, spec)
        shown = [f"{p:.6g}" if isinstance(p, float) else str(p) for p in points]
        return f"{self.name} on {self.time_points} [{', '.join(shown)}]"

    def _steps(self, config: Mapping[str, Any], spec: TimestepSpec) -> int:
        """The step count of `spec` for a sampler that takes one (time_points="steps"):
        custom time points that are SCHED-1's indices for their count are that count; a
        test on other custom time points is skipped with the reason."""
        if spec.num_inference_steps is not None:
            return int(spec.num_inference_steps)
        n, N = len(spec.timesteps or ()), int(config["num_train_timesteps"])
        # Rejections counted per test (pytest names the running one in PYTEST_CURRENT_TEST),
        # so that one test's count never carries into the next.
        test = os.environ.get("PYTEST_CURRENT_TEST", "")
        if getattr(self, "_custom_test", None) != test:
            self._custom_test, self._custom_rejected = test, 0
        if 1 <= n <= N and spec.indices(N) == TimestepSpec(num_inference_steps=n).indices(N):
            self._custom_rejected = 0
            return n
        self._custom_rejected += 1
        if currently_in_test_context() and self._custom_rejected < REJECTS_BEFORE_SKIP:
            reject()  # time points drawn as a custom list: another example may fit
        self._custom_rejected = 0  # a test that draws (almost) only custom lists: skipped
        pytest.skip(
            f"{self.name} takes a step count and computes its own grid "
            f"(time_points='steps'): custom time points {list(spec.timesteps or ())} "
            "cannot be given to it"
        )

    def _sigmas(self, recording: Recording) -> list[float]:
        """The sigma of each evaluation: the denoiser's argument, or the sigma whose declared
        model time the network saw."""
        times = [self._time(c.time) for c in recording.calls]
        if self.kind == "denoiser":
            return times
        return [float(s) for s in self._map.sigma(np.array(times))]

    @property
    def _map(self) -> TimeMap:
        """How a call's time (`_time`) reads back to sigma: an embedding's is sigma itself."""
        return RAW_SIGMA if isinstance(self.model_time, TimeEmbedding) else self.model_time

    def _time(self, seen: np.ndarray) -> float:
        """A call's time as one number: the scalar (the first of the batch), or for an
        embedding the sigma read back from it by the declared inverse."""
        if isinstance(self.model_time, TimeEmbedding):
            return self.model_time.sigma(np.ravel(seen))
        return float(np.ravel(seen)[0])

    def _readback(self, recording: Recording) -> list[float]:
        """The relative error of each sigma read back from its call: a time (or a denoiser's
        sigma) given in dtype T is t rounded to T, |dt| <= u_T |t|, and the sigma the map
        gives back moves by |sigma(t +- u_T |t|) / sigma(t) - 1|; doubled (SAFETY: the time
        itself computed in T). Tiny for a float64 time; 1e-7 to 1e-6 for float32."""
        out = []
        for call in recording.calls:
            t = self._time(call.time)
            u = bounds.U.get(call.time_dtype, 0.0)
            if call.time_dtype == "float64" or not u:
                out.append(0.0)
                continue
            step = u * max(abs(t), 1e-300)
            if self.kind == "denoiser":
                back = [t, t - step, t + step]
            else:
                back = [float(v) for v in self._map.sigma(np.array([t, t - step, t + step]))]
            rel = max(abs(b / back[0] - 1.0) for b in back[1:]) if back[0] else 0.0
            out.append(bounds.SAFETY * rel)
        return out

    def _through_c_in(
        self,
        config: Mapping[str, Any],
        spec: TimestepSpec,
        k: int,
        seen: Any,
    ) -> Any:
        """The sample before evaluation k of a network that sees only c_in x (`seen`): `seen`
        divided by the sampler's own c_in at that sigma, read from a run over the time
        points from k on (a legal input in every convention) that starts from ones; then
        rounded to the sample's dtype (the quotient is within two roundings of it)."""
        info = self.describe(seen)
        ones = self.asarray(np.ones(info.shape), info.dtype, info.device)
        ascending = sorted(spec.indices(int(config["num_train_timesteps"])))
        rest = TimestepSpec(timesteps=tuple(reversed(ascending[k:])))
        calibration = self._run(config, rest, ones, [], None)
        c_in = self.to_numpy(calibration.recording.calls[0].input)
        x = self.to_numpy(seen) / c_in
        return self.asarray(x, info.dtype, info.device)

    def _run(
        self,
        config: Mapping[str, Any],
        spec: TimestepSpec,
        x_T: Any,
        inputs: Sequence[StepInputs],
        seed: int | None,
        *,
        points: Any = None,
        parameters: bool = True,
        switch: tuple[int, int] | None = None,
        network: Callable[[Any, np.ndarray], np.ndarray] | None = None,
        conventions: bool = False,
        z_T: np.ndarray | None = None,
    ) -> Run:
        """Run the sampler once with the scripted model and the noise hook, in the bridge's
        scope (JAX: x64 for float64), its global draws routed for noise="global"; for
        noise="generator" its generator is recorded at each call (`switch`: `run_steps`).
        `conventions`: the run of CONV-1 (the keys of a JAX sampler's draws are recorded and
        an escaped global draw is returned, not skipped). A sampler that draws x_T is handed
        zeros shaped like `x_T`, and as its first draw `z_T` (default x_T over its declared
        scale, so that it forms `x_T`)."""
        info = self.describe(x_T)
        dtype, device, shape = info.dtype, info.device, info.shape
        recording = Recording()
        F_given = [self.to_numpy(i.model_output) for i in inputs]
        zeros = np.zeros(shape)

        def F_at(k: int, x: Any, t: np.ndarray) -> np.ndarray:
            if network is not None:  # a network answering the input it sees (GOLD-4)
                return network(x, t)
            return F_given[k] if k < len(F_given) else zeros

        if self.kind == "network":

            def respond(k: int, x: Any, t: np.ndarray) -> Any:
                return self.asarray(F_at(k, x, t), dtype, device)
        else:

            def respond(k: int, x: Any, t: np.ndarray) -> Any:
                sigma = float(np.ravel(t)[0])
                F = F_at(k, x, t)
                denoised = truth.step(config, sigma, None, F, self.to_numpy(x), None)
                return self.asarray(denoised, dtype, device)

        handed: dict[str, Any] = {}
        restart_at = None if switch is None or seed is None else switch[1]

        def answer(k: int, x: Any, t: np.ndarray) -> Any:
            if "generator" in handed:  # its state at each call; a restart at `restart_at`
                handed["states"].append(self.generator_state(handed["generator"]))
                if k == restart_at:
                    fresh = self.generator_state(self.generator(seed, device))
                    if _set_state(handed["generator"], fresh):
                        handed["restarted"] = fresh
            return respond(k, x, t)

        model = self._scripted(recording, answer, fresh=conventions)
        s = float(config["s_noise"]) if self._inside("s_noise") else 1.0
        own = np.random.default_rng(0 if seed is None else seed + 1)
        drawn: dict[int, Any] = {}

        first = 1 if self.x_T_drawn else 0  # draw 0 is z_T when the sampler draws x_T

        def supply(j: int, like: Any) -> Any:
            if self.x_T_drawn and j == 0:  # z_T: given, else the one giving x_T
                given = self.to_numpy(x_T) / self._x_T_scale(config, spec) if z_T is None else z_T
                return self.asarray(given, dtype, device)
            j -= first
            if j not in drawn:
                if j < len(inputs) and inputs[j].noise is not None:
                    z = self.to_numpy(inputs[j].noise)
                elif seed is not None:  # draw j of the seeded generator, by its convention
                    z = self.to_numpy(self._seeded(seed, shape, dtype, device, j + 1)[j])
                else:
                    z = own.standard_normal(shape)
                drawn[j] = z
            return self.asarray(s * drawn[j], dtype, device)

        source = NoiseSource(recording, supply, self.bridge)
        n_points = self._n(config, spec)
        hook: Any
        if self.noise == "randn_like":
            hook = RandnLike(source)
        elif self.noise == "function":
            hook = source.draw
        elif self.noise == "draws":
            hook = DrawList(source, n_points + first)
        elif self.noise == "global":
            hook = None  # its draws are routed (`conformance.functional.global_noise`)
        else:
            handed_seed = seed if restart_at is None else switch[0]  # type: ignore[index]
            hook = self.generator(0 if handed_seed is None else handed_seed, device)
            handed.update(generator=hook, start=self.generator_state(hook), states=[])
        points = self._points(config, spec) if points is None else points
        passed = self.parameters if parameters else {k: self.parameters[k] for k in self.required}
        kwargs = {name: config[key] for key, name in passed.items()}
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.bridge.scope(dtype))
            escapes = []
            if self.noise == "global":
                routing = global_noise.route(source, shape, self.bridge.global_random)
                escapes = stack.enter_context(routing)
            keys = None
            if conventions and self.noise == "generator" and hasattr(self.bridge, "watch_keys"):
                keys = stack.enter_context(self.bridge.watch_keys())
            start = self.asarray(np.zeros(shape), dtype, device) if self.x_T_drawn else x_T
            final = self.bridge.ready(self.sample_fn(model, start, points, hook, **kwargs))
        if escapes and not conventions:  # CONV-1 reports it
            pytest.skip(f"{self.name}: {escapes[0]}; CONV-1 reports it")
        if "generator" not in handed:
            return Run(recording, final, points, escapes=escapes, keys=keys)
        restarted = handed.get("restarted")
        return Run(
            recording,
            final,
            points,
            start=handed["start"],
            states=handed["states"],
            restart_at=restart_at if restarted is not None else None,
            restarted=restarted,
            end=self.generator_state(hook),
            escapes=escapes,
            keys=keys,
        )


@dataclass(frozen=True)
class Scalings:
    """What one-step sampling at one point shows (`FunctionalSampler._calibrate`): the c_in
    the sampler applied (None: inside the network), its c_skip and c_out, and the time its
    network saw."""

    c_in: float | None
    c_skip: float
    c_out: float
    t: float


def _sigma_of_c_out(c_out: float, sd: float, eps: float) -> float:
    """The sigma > eps whose boundary c_out is `c_out` (0 < c_out < sd; c_out increases
    with sigma from 0 at eps towards sd): bisection on log sigma."""
    lo, hi = math.log(eps), math.log(1e12)
    for _ in range(200):
        mid = (lo + hi) / 2
        sigma = math.exp(mid)
        lo, hi = (mid, hi) if (sigma - eps) * sd / math.hypot(sigma, sd) < c_out else (lo, mid)
    return math.exp((lo + hi) / 2)


def _set_state(generator: Any, state: Any) -> bool:
    """Put `generator` (torch or numpy) in `state`; False for a kind that cannot be."""
    if hasattr(generator, "set_state"):
        generator.set_state(state)
        return True
    if hasattr(generator, "bit_generator"):
        generator.bit_generator.state = state
        return True
    return False


def _same_state(a: Any, b: Any) -> bool:
    """Two generator states (a torch ByteTensor, a numpy state dict) alike."""
    if hasattr(a, "shape") and hasattr(b, "shape"):
        return tuple(a.shape) == tuple(b.shape) and bool((a == b).all())
    return bool(a == b)
