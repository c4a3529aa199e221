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
  ("sigmas_only"), sigma_min then a parameter (or fixed); or "steps" (the sampler takes the
  number of steps n and computes its own grid, read from the recording and held to SCHED-1
  and GOLD-1; a network's sigma is read from the time it saw through the declared model
  time, and its scalings through the recorded loop, so it must see x itself: `c_in=False`;
  custom time points other than SCHED-1's indices are not expressible: those examples are
  rejected, and a test that draws only them is skipped with the reason);
- `grid` (time_points="steps"): which Karras grid its n steps evaluate, each SCHED-1's for
  the N it implies: "N" (default: diffusers' indices into the config's N-point grid), "n"
  (the n-point grid, every point evaluated: k-diffusion's `get_sigmas_karras(n)`, N = n) or
  "n+1" (the (n + 1)-point grid whose last point, sigma_min, is not evaluated: f is the
  identity there, N = n + 1); for "n" and "n+1" the sampler takes no N, and every test
  runs (and takes its truth) at the N its step count implies (`settings`);
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
  ECT's); a drawing sampler is handed zeros shaped like x_T and z as the first draw of its
  hook; with noise="generator", z is the generator's first draw of the convention, x_T is
  read from the recording, and the steps' draws are the convention's from the second on
  (`draws_before_loop`; from a JAX key, x_T's is draw 0 of the declared splitting, and two
  runs share it by substituting its key, `JaxBridge.substitute_key`); refused there: a
  network that sees only c_in x_T (x_T cannot be read). On a grid that starts at
  sigma_max both are Algorithm 1's x_T = T z (XT-1); on one that starts below it, the
  declared scale is a convention (CONV-1).

The class is assembled from its concerns: the declaration's vocabulary, maps and checks
(`conformance.functional.declaration`), running the sampler and reading its recording
(`running.Running`), and the checks of its declared conventions and defaults
(`conventions.ConventionChecks`); this module holds the declaration itself, what is offered,
and the adapter methods the clauses call.

Primitives a functional sampler does not offer (a stateful scheduler, `add_noise`,
`sigma_to_t`, the scalings as functions, a schedule function for "sigmas") are declared by
`unmet`, so their clauses are skipped as "not offered".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from conformance.functional import global_noise
from conformance.functional.conventions import ConventionChecks
from conformance.functional.declaration import (
    EDM_TIME,
    GRIDS,
    NOISE_HOOKS,
    SCHEDULE_KEYS,
    SIGMA_LISTS,
    TIME_POINTS,
    X_T,
    CallableKind,
    Grid,
    NoiseHook,
    TimeEmbedding,
    TimeMap,
    TimePoints,
    check_defaults,
    check_domain,
)
from conformance.functional.draws import GeneratorDraws
from conformance.functional.running import Running
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.protocol.adapter import Adapter, Terms
from conformance.protocol.bridges import KEY_SPLITS, ArrayBridge
from conformance.protocol.deviations import Deviation
from conformance.protocol.values import Capabilities, Schedule, StepInputs, StepResult, TimestepSpec


class FunctionalSampler(ConventionChecks, Running, GeneratorDraws, Adapter):
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
        grid: Grid = "N",
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
            ("grid", grid, tuple(GRIDS)),
        ):
            if value not in allowed:
                raise ValueError(f"`{argument}` must be one of {allowed}, got {value!r}")
        if grid != "N" and time_points != "steps":
            raise ValueError(
                f"`grid` {grid!r} is for time_points='steps' (a sampler that computes its own "
                f"grid from a step count), got time_points={time_points!r}"
            )
        if time_points == "steps" and callable == "network" and c_in:
            raise ValueError(
                "`time_points` 'steps' with callable='network' needs c_in=False (the network "
                "sees x itself): a sampler on its own grid cannot be started at its k-th "
                "point, so the x a network sees only as c_in x cannot be read apart from c_in"
            )
        self.parameters = dict(parameters or {})
        if grid != "N" and "num_train_timesteps" in {*self.parameters, *(fixed or {})}:
            raise ValueError(
                f"`grid` {grid!r}: its N follows the step count ({GRIDS[grid]}), so "
                "num_train_timesteps can be neither a parameter nor fixed (grid='N' for a "
                "sampler that takes N)"
            )
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
            _check_x_T_from_generator(x_T, callable, c_in)
        self.x_T = x_T
        self.x_T_drawn = x_T != "given"
        # a step count: custom time points other than SCHED-1's are rejected (`Running._steps`)
        self.rejects_examples = time_points == "steps"
        # x_T's draw, the generator's first (`Adapter.draws_before_loop`)
        self.draws_before_loop = 1 if self.x_T_drawn and noise == "generator" else 0
        # a JAX key (`Adapter.generator_is_key`): its draws are counted from the keys watched
        self.generator_is_key = noise == "generator" and hasattr(bridge, "draw_keys")
        check_defaults(self.parameters, defaults, self.required)
        check_domain("fixed", fixed or {}, {**DEFAULT_CONFIG, **(fixed or {})})
        if defaults is not None:
            config = {**DEFAULT_CONFIG, **(fixed or {}), **defaults}
            check_domain("defaults", defaults, config)
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
        self.grid = grid
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
        if self.time_points == "steps":
            lines.append(f"  grid: {self.grid} ({GRIDS[self.grid]})")
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
        if getattr(self.bridge, "pmap_axis", None):
            lines.append(
                f"  pmap axis {self.bridge.pmap_axis!r}: the batch split over the devices, "
                "each answered its rows, each call recorded whole"
            )
        passed = ", ".join(f"{k} as {v}" for k, v in self.parameters.items()) or "none"
        lines.append(f"  parameters: {passed}")
        fixed = [f"{k} = {self.fixed[k]!r}" for k in DEFAULT_CONFIG if not self._passes(k)]
        if self.grid != "N":  # its N follows the step count (the grid line)
            fixed = [f for f in fixed if not f.startswith("num_train_timesteps")]
        if fixed:
            lines.append(f"  fixed (no parameter): {', '.join(fixed)}")
        if self._inside("s_noise"):
            lines.append("  s_noise: no parameter; folded into the draws the hook hands (s z)")
        if self.defaults is not None:
            lines.append(f"  declared defaults: {self.defaults}")
        if self.required:
            lines.append(f"  required (no default): {', '.join(self.required)}")
        if self.x_T_drawn:
            first = (
                "the generator's first draw of the convention (the steps' draws follow it)"
                if self.draws_before_loop
                else "the hook's first draw"
            )
            lines.append(
                f"  x_T: {X_T[self.x_T]}, z {first} (handed an array of zeros shaped like x_T)"
            )
        lines.append(
            "  not offered: stateful scheduler, add_noise, sigma_to_t, scalings functions"
            + (", schedule (given sigmas)" if self.time_points in SIGMA_LISTS else "")
        )
        return lines

    def reproduce_noise(
        self, seed: int, shape: tuple[int, ...], dtype: str, device: str, draws: int
    ) -> list[Any]:
        """The draws the sampler takes from `generator(seed)` for its steps: a JAX key is
        never advanced, its draws are derived by the bridge's declared splitting; the draws
        before its loop (x_T's) are not a step's."""
        before = self.draws_before_loop
        if hasattr(self.bridge, "reproduce_noise_from") or before:
            return self._seeded(seed, shape, dtype, device, before + draws)[before:]
        return super().reproduce_noise(seed, shape, dtype, device, draws)

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


def _check_x_T_from_generator(x_T: str, kind: str, c_in: bool) -> None:
    """A sampler that draws x_T from its own generator (its first draw, x_T = scale z): the
    suite cannot choose z, so it reads x_T from the recording and z from the convention. What
    that cannot reach is refused (ValueError naming the arguments and what is allowed)."""
    if kind == "network" and c_in:
        raise ValueError(
            f"`x_T` {x_T!r} with noise='generator' and c_in=True: a network that sees only "
            "c_in x_T hides the x_T it drew (allowed: c_in=False, callable='denoiser', or "
            "x_T='given')"
        )
