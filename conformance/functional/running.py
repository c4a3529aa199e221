"""Running a functional sampler and reading its recording: one run with the scripted model
and the noise hook (`Running._run`), the time points in its convention, the sigma of each
evaluation read back from what its callable saw, the x it stepped from (its generator's
draws: `conformance.functional.draws`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import reject
from hypothesis.control import currently_in_test_context

from conformance import truth
from conformance.functional import global_noise
from conformance.functional.declaration import (
    GRIDS,
    RAW_SIGMA,
    REJECTS_BEFORE_SKIP,
    ConventionError,
    TimeEmbedding,
    TimeMap,
    grid_points,
)
from conformance.functional.draws import Run, set_state
from conformance.functional.scripted import (
    DrawList,
    NoiseSource,
    RandnLike,
    Recording,
    ScriptedCallable,
)
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring import bounds
from conformance.protocol.values import StepInputs, TimestepSpec

#: The seed of the generator from which XT-1 has a sampler draw its x_T (`initial_sample`).
X_T_SEED = 101


class Running:
    """The running and reading half of `FunctionalSampler` (a mixin: it reads the declaration
    the sampler's `__init__` stores)."""

    def initial_sample(
        self, config: Mapping[str, Any], spec: TimestepSpec, z: Any
    ) -> tuple[Any, Any]:
        """(x_T, z): the initial sample a sampler that draws x_T formed when its first draw was
        `z` (native), read from the recording (XT-1). One that draws x_T from its generator
        draws its own z: it is run with the generator seeded `X_T_SEED`, and z is that seed's
        first draw of the convention (shaped, typed and placed like `z`)."""
        info = self.describe(z)
        like = self.asarray(np.zeros(info.shape), info.dtype, info.device)
        if self.draws_before_loop:
            run = self._run(config, spec, like, [], X_T_SEED)
            z = self._seeded(X_T_SEED, info.shape, info.dtype, info.device, 1)[0]
        else:
            run = self._run(config, spec, like, [], None, z_T=self.to_numpy(z))
        if not run.recording.calls:
            raise ConventionError("x_T drawn: the sampler never evaluated its model")
        return self.initial_from(config, spec, run.recording.calls[0].input), z

    def initial_from(self, config: Mapping[str, Any], spec: TimestepSpec, seen: Any) -> Any:
        """The sample before evaluation 0, from the model's first input `seen`."""
        if self.kind == "denoiser" or not self.applies_c_in:
            return seen
        return self._through_c_in(config, spec, 0, seen)

    def _x_T_scale(self, config: Mapping[str, Any], spec: TimestepSpec) -> float:
        """The T of x_T = T z the declaration says the sampler forms on `spec`: sigma_max, or
        its first evaluated sigma (SCHED-1's, which is sigma_max for a step count)."""
        if self.x_T == "drawn_at_first_point" and self.time_points != "steps":
            return float(truth.schedule(config, spec).sigmas[0])
        return float(config["sigma_max"])

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
        own_N = None if spec is None else grid_points(self.grid, _count(spec))
        if own_N is not None:  # its grid's N follows its step count (`grid`): custom time
            out["num_train_timesteps"] = own_N  # points are its grid's for their count, or
            self._steps(out, spec)  # the example is rejected (`_steps`)
            return out
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
        # Rejections counted in a row per test (pytest names the running one in
        # PYTEST_CURRENT_TEST), so that one test's count never carries into the next, and an
        # example that fits ends the row.
        test = os.environ.get("PYTEST_CURRENT_TEST", "")
        if getattr(self, "_custom_test", None) != test:
            self._custom_test, self._custom_rejected = test, 0
        if spec.num_inference_steps is not None:
            self._custom_rejected = 0
            return int(spec.num_inference_steps)
        n, N = len(spec.timesteps or ()), int(config["num_train_timesteps"])
        if 1 <= n <= N and spec.indices(N) == TimestepSpec(num_inference_steps=n).indices(N):
            self._custom_rejected = 0
            return n
        self._custom_rejected += 1
        if currently_in_test_context() and self._custom_rejected < REJECTS_BEFORE_SKIP:
            reject()  # time points drawn as a custom list: another example may fit
        self._custom_rejected = 0  # a test that draws (almost) only custom lists: skipped
        grid = "" if self.grid == "N" else f", {GRIDS[self.grid]}"
        pytest.skip(
            f"{self.name} takes a step count and computes its own grid "
            f"(time_points='steps'{grid}): custom time points {list(spec.timesteps or ())} "
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
        # A key cannot be restarted: x_T's draw is substituted instead (`_shared_x_T`)
        shared_x_T = self._shared_x_T(switch, seed, device) if restart_at == 0 else None
        if shared_x_T is not None:
            restart_at = None

        def answer(k: int, x: Any, t: np.ndarray) -> Any:
            if "generator" in handed:  # its state at each call; a restart at `restart_at`
                handed["states"].append(self.generator_state(handed["generator"]))
                if k == restart_at:  # as `seed` leaves it at the loop's start (after x_T's)
                    fresh = self.generator_state(self._after_x_T(seed, tuple(shape), dtype, device))
                    if set_state(handed["generator"], fresh):
                        handed["restarted"] = fresh
            return respond(k, x, t)

        # a fresh model where a compiled sampler must be traced again (a substituted key)
        model = self._scripted(recording, answer, fresh=conventions or shared_x_T is not None)
        model.shape = shape  # a sampler's own reshaping undone in what is recorded
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
            handed["key_seed"] = 0 if handed_seed is None else handed_seed
        points = self._points(config, spec) if points is None else points
        passed = self.parameters if parameters else {k: self.parameters[k] for k in self.required}
        kwargs = {name: config[key] for key, name in passed.items()}
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.bridge.scope(dtype))
            escapes = []
            if self.noise == "global":
                routing = global_noise.route(source, shape, self.bridge.global_random)
                escapes = stack.enter_context(routing)
            if shared_x_T is not None:
                stack.enter_context(self.bridge.substitute_key(*shared_x_T))
            keys = None  # a key's draws watched (outside the substitution: the keys it passed)
            if self.generator_is_key:
                keys = stack.enter_context(self.bridge.watch_keys(recording.calls_made))
            start = self.asarray(np.zeros(shape), dtype, device) if self.x_T_drawn else x_T
            self.bridge.take_host_error()  # none left from an earlier run
            try:
                final = self.bridge.ready(self.sample_fn(model, start, points, hook, **kwargs))
            except Exception as exc:  # what the scripted model raised in a compiled run (a
                raised = self.bridge.take_host_error()  # time limit, a skip), not XLA's
                if raised is None:  # wrapping of it
                    raise
                raise raised from exc
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
            key_seed=handed["key_seed"] if keys is not None else None,
        )


def _count(spec: TimestepSpec) -> int:
    """The number of steps `spec` asks for."""
    return int(spec.num_inference_steps or len(spec.timesteps or ()))
