"""The draws a functional sampler takes from the caller's seeded generator or PRNG key:
the convention's draws of a seed (`_seeded`), how many it took after each evaluation (from
the generator's state recorded at each call, or from the keys watched, `Run.keys`), and how
two runs share the draws before a position (a generator restarted; x_T's key substituted,
a key having no state to restart). Also the record of one run (`Run`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.functional.scripted import Recording
from conformance.protocol.bridges import same_generator_state


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
    #: Draws that escaped noise="global"'s routing (sentences); for a sampler drawing from a
    #: key, (the data of the key, the model calls made before it) of each
    #: `jax.random.normal` call, and the seed of the key it was given (None: no key).
    escapes: list[str] = field(default_factory=list)
    keys: list[tuple[np.ndarray, int | None]] | None = None
    key_seed: int | None = None


class GeneratorDraws:
    """The generator half of `FunctionalSampler` (a mixin: it reads the declaration the
    sampler's `__init__` stores, and the adapter's generator methods)."""

    def _seeded(
        self, seed: int, shape: tuple[int, ...], dtype: str, device: str, draws: int
    ) -> list[Any]:
        """The first `draws` draws of the bridge's generator seeded with `seed`, by its
        convention (whether or not the sampler draws from one)."""
        generator = self.generator(seed, device)
        if hasattr(self.bridge, "reproduce_noise_from"):
            return self.bridge.reproduce_noise_from(generator, shape, dtype, device, draws)
        return [self.bridge.draw_noise(generator, shape, dtype, device) for _ in range(draws)]

    def _shared_x_T(
        self, switch: tuple[int, int] | None, seed: int | None, device: str
    ) -> tuple[Any, Any] | None:
        """For `switch` = (a, 0) on a key that cannot be restarted (a JAX PRNG key, given
        seeded `seed`): (the key of its x_T draw, seed a's), so that substituting the one for
        the other draws x_T as seed a does and the steps as `seed` does, as a restart at
        evaluation 0 of a generator seeded a would; None where a generator restarts."""
        if switch is None or seed is None or not self.draws_before_loop:
            return None
        if not hasattr(self.bridge, "substitute_key") or self.generator_restartable():
            return None
        ours = self.bridge.draw_keys(self.generator(seed, device), 1)[0]
        theirs = self.bridge.draw_keys(self.generator(switch[0], device), 1)[0]
        return ours, theirs

    def _after_x_T(self, seed: int, shape: tuple[int, ...], dtype: str, device: str) -> Any:
        """The generator seeded `seed`, advanced past the draws the sampler takes before its
        loop (`draws_before_loop`: x_T's), so that a restart there hands its steps' draws."""
        generator = self.generator(seed, device)
        for _ in range(self.draws_before_loop):
            self.bridge.draw_noise(generator, shape, dtype, device)
        return generator

    def _generator_draws(self, run: Run, x_T: Any) -> list[int | None]:
        """Sample-shaped draws of the convention the sampler took from its generator after
        each evaluation (before the next; those before evaluation 0 added to the first, less
        `draws_before_loop`: x_T's draw is no step's), from the recorded states; None where
        no whole number of them leads there. From a key: `_key_draws`."""
        if run.keys is not None:
            return self._key_draws(run)
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
            if before is not None:
                before -= self.draws_before_loop  # negative: x_T not drawn from it (None)
            known = before is not None and before >= 0 and out[0] is not None
            out[0] = out[0] + before if known else None
        return out

    def _key_draws(self, run: Run) -> list[int | None]:
        """The draws the sampler took from its key after each evaluation (those before
        evaluation 0 counted at 0, less `draws_before_loop`), from the watched keys: each
        must be the declared splitting's next key of the key it was given; None from the
        evaluation after which one is not (a key used twice, the key given drawn from)."""
        n = len(run.recording.calls)
        seen = run.keys or []
        root = self.generator(0 if run.key_seed is None else run.key_seed, "cpu")
        expected = self.bridge.draw_keys(root, len(seen))
        out: list[int | None] = [0] * n
        broken = n
        for (data, at), want in zip(seen, expected, strict=True):
            k = min(max((at or 0) - 1, 0), n - 1)  # after evaluation at - 1 (0: before 0)
            if not np.array_equal(data, self.bridge.key_data(want)):
                broken = k
                break
            out[k] = int(out[k] or 0) + 1
        if n:
            before = int(out[0] or 0) - self.draws_before_loop
            out[0] = before if before >= 0 else None
        return [*out[:broken], *[None] * (n - broken)]

    def _count_draws(
        self, start: Any, end: Any, shape: Any, dtype: str, device: str, most: int = 4
    ) -> int | None:
        """How many draws of `shape` lead a generator from state `start` to `end`."""
        generator = self.generator(0, device)
        if not set_state(generator, start):
            return None
        for j in range(most + 1):
            if same_generator_state(self.generator_state(generator), end):
                return j
            self.bridge.draw_noise(generator, tuple(shape), dtype, device)
        return None


def set_state(generator: Any, state: Any) -> bool:
    """Put `generator` (torch or numpy) in `state`; False for a kind that cannot be."""
    if hasattr(generator, "set_state"):
        generator.set_state(state)
        return True
    if hasattr(generator, "bit_generator"):
        generator.bit_generator.state = state
        return True
    return False
