"""The scripted network and the noise hooks handed to a functional sampler, and what they
record.

A functional sampler runs its own loop; the suite hands it, in place of its model, a
`ScriptedCallable` that records the inputs of every call (the sample or model input, and
the time argument) and returns the outputs the suite chooses; and, in place of its noise
source, a hook that hands out the suite's draws and records when each was taken (after
which evaluation). From the `Recording` the suite reconstructs every step of the loop
(`conformance.functional`).

Hooks, by what the sampler expects:

    RandnLike(source)   an object with `randn_like(x)` (OpenAI's `generator`)
    source.draw         a function `noise(x)` (in place of `torch.randn_like`)
    DrawList(source, n) a sequence of n draws, one per step, read by index
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.protocol.bridges import ArrayBridge


@dataclass
class Call:
    """One call of the scripted callable: its first argument (a native copy), the time
    argument as float64 numpy (raveled: a scalar, or one value per batch element), and the
    dtype the time was given in (a Python float: float64)."""

    input: Any
    time: np.ndarray
    time_dtype: str = "float64"


@dataclass
class Recording:
    """Every call, and after how many calls each noise draw was taken."""

    calls: list[Call] = field(default_factory=list)
    draws_after: list[int] = field(default_factory=list)

    def draws_between(self, k: int) -> int:
        """Draws taken after evaluation k and before evaluation k + 1 (after the last one for
        the last k)."""
        return sum(1 for after in self.draws_after if after == k + 1)


def in_shape(bridge: ArrayBridge, value: Any, shape: Sequence[int] | None) -> Any:
    """`value` (native) reshaped to `shape` where it holds as many elements in another shape:
    a sampler that reshapes its sample (to (B, C, 1, 1), say) is recorded in the shape the
    suite handed it and answered, and handed draws, in its own."""
    info = bridge.describe(value)
    if shape is None or info is None or tuple(info.shape) == tuple(shape):
        return value
    if int(np.prod(info.shape)) != int(np.prod(shape)):
        return value
    return bridge.asarray(np.reshape(bridge.to_numpy(value), tuple(shape)), info.dtype, info.device)


class ScriptedCallable:
    """The model handed to a functional sampler: `respond(k, x, time)` gives the output of
    call k; every call's inputs are recorded."""

    def __init__(
        self,
        bridge: ArrayBridge,
        recording: Recording,
        respond: Callable[[int, Any, np.ndarray], Any],
    ) -> None:
        self.bridge = bridge
        self.recording = recording
        self.respond = respond
        #: The shape of the sample the suite handed the sampler (`in_shape`).
        self.shape: tuple[int, ...] | None = None

    def __call__(self, x: Any, time: Any, *args: Any, **kwargs: Any) -> Any:
        if self.bridge.traced(x) or self.bridge.traced(time):
            # A compiled sampler (jit, lax loops): answered on the host as it runs.
            return self.bridge.host_call(self._answer, x, x, time)
        return self._answer(x, time)

    def _answer(self, x: Any, time: Any) -> Any:
        if self.bridge.describe(x) is None:
            raise TypeError(
                f"the scripted network was called with {type(x).__name__} as its input; "
                "expected an array of the bridge's framework"
            )
        info = self.bridge.describe(time)
        values = self.bridge.to_numpy(time) if info is not None else np.asarray(time, np.float64)
        given = info.dtype if info is not None else np.asarray(time).dtype.name
        k = len(self.recording.calls)
        seen = in_shape(self.bridge, x, self.shape)
        self.recording.calls.append(
            Call(self.bridge.copy(seen), np.ravel(values).astype(np.float64), str(given))
        )
        return in_shape(self.bridge, self.respond(k, seen, values), self.bridge.describe(x).shape)


class NoiseSource:
    """The suite's draws: `supply(j, like)` gives draw j (a native array shaped like `like`);
    each draw is recorded with the number of calls made before it."""

    def __init__(
        self,
        recording: Recording,
        supply: Callable[[int, Any], Any],
        bridge: ArrayBridge | None = None,
    ) -> None:
        self.recording = recording
        self.supply = supply
        self.bridge = bridge

    def draw(self, like: Any = None) -> Any:
        if self.bridge is not None and self.bridge.traced(like):
            return self.bridge.host_call(self._draw, like, like)
        return self._draw(like)

    def _draw(self, like: Any) -> Any:
        j = len(self.recording.draws_after)
        self.recording.draws_after.append(len(self.recording.calls))
        drawn = self.supply(j, like)
        if self.bridge is None or like is None or self.bridge.describe(like) is None:
            return drawn
        return in_shape(self.bridge, drawn, self.bridge.describe(like).shape)


class RandnLike:
    """A generator-like object: `randn_like(x)` hands out the next draw."""

    def __init__(self, source: NoiseSource) -> None:
        self.source = source

    def randn_like(self, x: Any) -> Any:
        return self.source.draw(x)


class DrawList(Sequence):
    """A list of n draws, one per step; reading entry i takes draw i (recorded when read)."""

    def __init__(self, source: NoiseSource, n: int) -> None:
        self.source = source
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(f"draw {i} of {self.n}")
        j = i % self.n
        self.source.recording.draws_after.append(len(self.source.recording.calls))
        return self.source.supply(j, None)
