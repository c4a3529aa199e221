"""A functional sampler's declaration: the conventions it may declare (time points, noise
hooks, x_T), the model-time maps and embeddings, the spec's domain of fixed and default
values, and the error a contradicted convention raises (CONV-1)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from conformance.measuring import bounds

CallableKind = Literal["network", "denoiser"]


TimePoints = Literal["timesteps", "ts", "sigmas", "sigmas_zero", "sigmas_only", "steps"]


NoiseHook = Literal["randn_like", "function", "draws", "generator", "global"]


Grid = Literal["N", "n", "n+1"]


TIME_POINTS = {
    "timesteps": "diffusers' descending indices into an N-point grid (sigma_min appended by "
    "the sampler)",
    "ts": "OpenAI's ascending indices into a steps-point grid, the end point steps - 1 included",
    "sigmas": "an explicit list of sigmas, the evaluation points then sigma_min",
    "sigmas_zero": "an explicit list of sigmas, the evaluation points then 0.0 (sigma_min a "
    "parameter or fixed)",
    "sigmas_only": "an explicit list of the evaluation sigmas alone (sigma_min a parameter or "
    "fixed)",
    "steps": "the number of steps n: the sampler computes its own grid (declared by `grid`)",
}


#: The grid a sampler on its own grid (time_points="steps") evaluates for n steps: each is
#: SCHED-1's grid for the N it implies (`grid_points`), so SCHED-1 holds it there.
GRIDS = {
    "N": "SCHED-1's indices arange(n) * (N // n) into the config's N-point Karras grid "
    "(diffusers')",
    "n": "the n-point Karras grid, every point evaluated, the last at sigma_min (k-diffusion's "
    "get_sigmas_karras(n)): SCHED-1's with N = n",
    "n+1": "the (n + 1)-point Karras grid, its last point (sigma_min, where f is the identity) "
    "not evaluated: SCHED-1's with N = n + 1",
}


def grid_points(grid: Grid, n: int) -> int | None:
    """The N whose SCHED-1 grid for n steps is `grid`'s; None for "N" (the config's). For
    "n" at n = 1, N = 2: its one point is sigma_max, as get_sigmas_karras(1) gives."""
    if grid == "n":
        return max(n, 2)
    if grid == "n+1":
        return n + 1
    return None


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
#: is skipped with the reason (a test that draws almost only them; the health check
#: filter_too_much is off for such a sampler, `Adapter.rejects_examples`).
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


def check_defaults(
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


def check_domain(argument: str, values: Mapping[str, Any], config: Mapping[str, Any]) -> None:
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
