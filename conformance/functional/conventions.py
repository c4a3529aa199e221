"""A functional sampler's declared conventions checked on recorded runs (CONV-1): the count of
evaluations, the model time against the scalings the sampler applied (read by one-step
sampling), c_in inside the network, a drawn x_T's scale, the noise hook, JAX keys; and its
declared defaults against a run without parameters (CFG-1)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from conformance import truth
from conformance.functional.declaration import (
    NOISE_HOOKS,
    SIGMA_LISTS,
    TIME_POINTS,
    X_T,
    ConventionError,
    TimeEmbedding,
)
from conformance.functional.draws import Run
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring import bounds
from conformance.protocol.bridges import KEY_SPLITS
from conformance.protocol.values import StepInputs, TimestepSpec


@dataclass(frozen=True)
class Scalings:
    """What one-step sampling at one point shows (`FunctionalSampler._calibrate`): the c_in
    the sampler applied (None: inside the network), its c_skip and c_out, and the time its
    network saw."""

    c_in: float | None
    c_skip: float
    c_out: float
    t: float
    #: How far rounding can move what was read, relative (`_calibrate_loop`: noise that the
    #: sampler adds and no s_noise turns off cancels in a difference, its rounding does not).
    read_error: float = 0.0


def _sigma_of_c_out(c_out: float, sd: float, eps: float) -> float:
    """The sigma > eps whose boundary c_out is `c_out` (0 < c_out < sd; c_out increases
    with sigma from 0 at eps towards sd): bisection on log sigma."""
    lo, hi = math.log(eps), math.log(1e12)
    for _ in range(200):
        mid = (lo + hi) / 2
        sigma = math.exp(mid)
        lo, hi = (mid, hi) if (sigma - eps) * sd / math.hypot(sigma, sd) < c_out else (lo, mid)
    return math.exp((lo + hi) / 2)


class ConventionChecks:
    """The checking half of `FunctionalSampler` (a mixin, on the `Running` half)."""

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
            config = self.settings(config, spec)  # at the N its grid implies
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
        # An x_T drawn from its generator is known only through its declared scale (checked
        # below), which x_T times c_in would also fit on this grid: not comparable here.
        if self.kind == "network" and not self.applies_c_in and not self.draws_before_loop:
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
            held.append(self._check_keys([data for data, _ in run.keys], seed=5))
        return held

    def _x_T_scale_holds(self, config: Mapping[str, Any], dtype: str, device: str) -> str:
        """CONV-1 for a sampler that draws x_T: on timesteps [22, 10], whose first point
        sigma_1 is below sigma_max (Algorithm 1 starts at T = sigma_max and says nothing of
        such a grid), x_T is z times the declared scale: sigma_max ("drawn") or sigma_1
        ("drawn_at_first_point"). XT-1 holds x_T = sigma_max z on grids that start there.
        z is the one the sampler used: the one handed through its hook (rounded to the dtype),
        or its generator's first draw."""
        spec = TimestepSpec(timesteps=(22, 10))
        z = np.random.default_rng(11).standard_normal((2, 3))
        x_T, used = self.initial_sample(config, spec, self.asarray(z, dtype, device))
        z = self.to_numpy(used)
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
        declared splitting of the key the sampler was given (`generator(seed)`). Keys split
        by another convention fail here, naming it; a key used twice, or the key given drawn
        from, is no convention but the same noise drawn again (NOISE-2's finding, which
        counts the draws from the keys): held here, and named."""
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
            if np.array_equal(got, root):
                misuse = "the key given itself: drawn before splitting it"
            elif any(np.array_equal(got, seen[i]) for i in range(j)):
                misuse = "an earlier draw's key again: a key used twice"
            else:
                other = [
                    name
                    for name in KEY_SPLITS
                    if name != keys and _split_as(self.bridge, name, root, seen)
                ]
                declare = f" (declare keys={other[0]!r}: it splits so)" if other else ""
                raise ConventionError(
                    f"{declared}: draw {j} expected key {want.tolist()}, seen "
                    f"{got.tolist()}{declare}"
                )
            return f"{declared}: draw {j} is of {misuse} (NOISE-2's finding)"
        return f"{declared}: {len(seen)} draws"

    def _readable(
        self, config: Mapping[str, Any], spec: TimestepSpec, run: Run, x_T: Any, count: bool = True
    ) -> None:
        """Skip (the reason: CONV-1's finding) where the recording cannot be read: the network
        called other than once per time point (unless not `count`ed: the schedule's own
        points), or, for a network whose sigmas are read from its times (it applies c_in, or
        it takes a step count), a first time that reads back to a sigma none of its scalings
        was applied at. A sampler on its own grid
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
        # Its sigmas are read from the times seen where it takes a step count, and where it
        # applies c_in (then also read back from c_in): those must agree with its scalings.
        own_grid = self.time_points == "steps"
        if self.kind != "network" or not (self.applies_c_in or own_grid):
            return
        sigma = float(self._map.sigma(np.array([self._time(calls[0].time)]))[0])
        dtype = self.describe(x_T).dtype
        tol = self._map_tolerance(dtype)
        if self.applies_c_in:
            x = self.to_numpy(x_T)
            seen = self.to_numpy(calls[0].input)
            usable = np.abs(x) > 0
            if not usable.any():
                return
            c_in = float(np.median(seen[usable] / x[usable]))
            if self._disagreement(config, sigma, None, c_in) <= tol:
                return
        scalings = self._calibrate(config, spec, 0, dtype, self.describe(x_T).device)
        if self._disagreement(config, sigma, scalings) > tol + scalings.read_error:
            pytest.skip(
                f"{self.name}'s network saw a time that reads back (t = {self.model_time.name}) "
                f"to sigma {sigma:.6g}, at which none of its scalings was applied: the sigmas "
                "it used cannot be read (CONV-1's finding)"
            )

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
        if self.time_points == "steps":  # no one-step run at its k-th point can be asked
            return self._calibrate_loop(config, spec, k, dtype, device)
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
        if self.draws_before_loop:  # its own x_T, the same in both runs (seed 0): cancelled
            out = self._run(config, point, ones, [StepInputs(ones, zeros)], seed=0)
            c_out = float(np.median(self.to_numpy(out.final) - self.to_numpy(run.final)))
        else:
            out = self._run(config, point, zeros, [StepInputs(ones, zeros)], seed=0)
            c_out = float(np.median(self.to_numpy(out.final)))
        return Scalings(c_in, c_skip, c_out, self._time(call.time))

    def _calibrate_loop(
        self, config: Mapping[str, Any], spec: TimestepSpec, k: int, dtype: str, device: str
    ) -> Scalings:
        """The scalings at evaluation k of a sampler on its own grid (time_points="steps": it
        cannot be started at its k-th point), read through whole runs with no clamp and no
        noise (zero draws where a hook hands them; else s_noise = 0 and one seed for every
        run, whatever noise is left cancelled by differences to the run from x_T = 0 with
        F = 0; an x_T drawn from the generator is another seed's for "x_T = 1"; in float32 a
        draw of scale sigma would swamp c_skip x): the network sees x itself
        (c_in=False), so c_skip_k is the input of evaluation k + 1 over that of k in a run
        that reaches k with a nonzero x (from x_T = 1, or F = 1 at evaluation k - 1 alone),
        and c_out_k the input of evaluation k + 1 with F = 1 at evaluation k alone. Each is
        read at its own size: a product of c_skips underflows float32 within ten steps."""
        if not self.noise_through_hook:
            config = {**config, "s_noise": 0.0}
        shape = (1, 4)
        zero = self.asarray(np.zeros(shape), dtype, device)
        budget = 4 * self._n(config, spec) + 8  # more evaluations than it makes (SCHED-1's)

        def states(x_T: float, hot: int | None) -> tuple[list[np.ndarray], list[Any]]:
            """The input of each evaluation, then the final sample; and the calls."""
            F = [
                self.asarray(np.full(shape, float(i == hot)), dtype, device) for i in range(budget)
            ]
            start = self.asarray(np.full(shape, x_T), dtype, device)
            given = [StepInputs(f, zero, zero) for f in F]
            # x_T drawn from its generator: another x_T is another seed's (x_T = 1: seed 1),
            # the steps' draws seed 0's in every run (restarted there at evaluation 0)
            own = {"switch": (int(x_T != 0.0), 0)} if self.draws_before_loop else {}
            run = self._run(config, spec, start, given, seed=0, **own)
            calls = run.recording.calls
            return [*(self.to_numpy(c.input) for c in calls), self.to_numpy(run.final)], calls

        base, calls = states(0.0, None)
        before, _ = states(1.0, None) if k == 0 else states(0.0, k - 1)
        after, _ = states(0.0, k)
        num, den = before[k + 1] - base[k + 1], before[k] - base[k]
        c_skip = np.median(num / den)
        c_out = np.median(after[k + 1] - base[k + 1])
        # each side of a difference rounds at its own size, u_D |value| (SAFETY: 2); the
        # median's error is at most the worst element's
        u = bounds.SAFETY * bounds.U[dtype]
        rel = u * (np.abs(before[k + 1]) + np.abs(base[k + 1])) / np.maximum(np.abs(num), 1e-300)
        rel += u * (np.abs(before[k]) + np.abs(base[k])) / np.maximum(np.abs(den), 1e-300)
        read = float(np.max(rel))
        return Scalings(None, float(c_skip), float(c_out), self._time(calls[k].time), read)

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
        tol = self._map_tolerance(dtype) + scalings.read_error
        if self._disagreement(config, sigma, scalings) <= tol:
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


def _split_as(bridge: Any, keys: str, root: np.ndarray, seen: Sequence[np.ndarray]) -> bool:
    """Whether the keys `seen` are those of splitting `root` by convention `keys`."""
    other = type(bridge)(keys=keys)
    expected = other.draw_keys(root, len(seen))
    return all(
        np.array_equal(got, other.key_data(k)) for got, k in zip(seen, expected, strict=True)
    )
