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
    """Every call, and after how many calls each noise draw was taken. For a sampler whose
    batch is split over devices (`JaxBridge(pmap_axis=...)`), each device's calls and draws
    so far and the whole batch assembled from their rows (`Shards`)."""

    calls: list[Call] = field(default_factory=list)
    draws_after: list[int] = field(default_factory=list)
    shards: Shards = field(default_factory=lambda: Shards())

    def calls_made(self) -> int:
        """The calls made so far (of a pmapped sampler: by its first device, whose keys are
        the ones watched)."""
        return self.shards.calls.get(0, 0) if self.shards.calls else len(self.calls)

    def draws_between(self, k: int) -> int:
        """Draws taken after evaluation k and before evaluation k + 1 (after the last one for
        the last k)."""
        return sum(1 for after in self.draws_after if after == k + 1)


class Shards:
    """A pmapped sampler's calls, device by device: device i of d holds rows i b .. (i + 1) b
    of the batch (the leading axis split in order, b rows each). Its k-th call (or draw) is
    the run's k-th; the whole batch is assembled from the rows as they arrive."""

    def __init__(self) -> None:
        self.calls: dict[int, int] = {}
        self.draws: dict[int, int] = {}
        self.inputs: dict[int, np.ndarray] = {}

    @staticmethod
    def next(counts: dict[int, int], device: int) -> int:
        k = counts.get(device, 0)
        counts[device] = k + 1
        return k

    def whole(self, k: int, device: int, devices: int, rows: np.ndarray) -> np.ndarray:
        """The batch of call k with `rows` (device `device`'s) in place, others as known."""
        b = rows.shape[0]
        batch = self.inputs.setdefault(k, np.zeros((devices * b, *rows.shape[1:])))
        batch[device * b : (device + 1) * b] = rows
        return batch

    @staticmethod
    def rows(whole: np.ndarray, device: int, b: int) -> np.ndarray:
        return whole[device * b : (device + 1) * b]


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
        shard = getattr(self.bridge, "shard", None)
        if shard is not None and shard[1] > 1:  # one device's rows of a pmapped call
            return self._answer_rows(x, values, str(given), *shard)
        k = len(self.recording.calls)
        seen = in_shape(self.bridge, x, self.shape)
        self.recording.calls.append(
            Call(self.bridge.copy(seen), np.ravel(values).astype(np.float64), str(given))
        )
        return in_shape(self.bridge, self.respond(k, seen, values), self.bridge.describe(x).shape)

    def _answer_rows(
        self, x: Any, values: np.ndarray, given: str, device: int, devices: int
    ) -> Any:
        """Device `device`'s call: the run's call k is recorded at its first device's call
        and its input completed by each device's rows; each is answered its rows of the
        answer to the batch as known (the suite's answers are row by row)."""
        shards, info = self.recording.shards, self.bridge.describe(x)
        k = Shards.next(shards.calls, device)
        rows = self.bridge.to_numpy(x)
        whole = shards.whole(k, device, devices, rows)
        if k == len(self.recording.calls):
            self.recording.calls.append(Call(None, np.ravel(values).astype(np.float64), given))
        seen = in_shape(
            self.bridge, self.bridge.asarray(whole, info.dtype, info.device), self.shape
        )
        self.recording.calls[k].input = self.bridge.copy(seen)
        answer = self.bridge.to_numpy(
            in_shape(self.bridge, self.respond(k, seen, values), whole.shape)
        )
        return self.bridge.asarray(
            Shards.rows(answer, device, rows.shape[0]), info.dtype, info.device
        )


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
        shard = getattr(self.bridge, "shard", None)
        if shard is not None and shard[1] > 1:  # one device's rows of a pmapped draw
            return self._draw_rows(like, *shard)
        j = len(self.recording.draws_after)
        self.recording.draws_after.append(len(self.recording.calls))
        drawn = self.supply(j, like)
        if self.bridge is None or like is None or self.bridge.describe(like) is None:
            return drawn
        return in_shape(self.bridge, drawn, self.bridge.describe(like).shape)

    def _draw_rows(self, like: Any, device: int, devices: int) -> Any:
        """Device `device`'s draw j: its rows of the run's draw j, recorded (after as many
        calls as that device had made) at its first device's draw."""
        assert self.bridge is not None
        shards, info = self.recording.shards, self.bridge.describe(like)
        j = Shards.next(shards.draws, device)
        if j == len(self.recording.draws_after):
            self.recording.draws_after.append(shards.calls.get(device, 0))
        b = info.shape[0]
        whole = self.bridge.asarray(
            np.zeros((devices * b, *info.shape[1:])), info.dtype, info.device
        )
        drawn = np.reshape(
            self.bridge.to_numpy(self.supply(j, whole)), (devices * b, *info.shape[1:])
        )
        return self.bridge.asarray(Shards.rows(drawn, device, b), info.dtype, info.device)


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
