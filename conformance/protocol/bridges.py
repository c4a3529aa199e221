"""Array bridges: how the suite moves its float64 numpy test data into an implementation's
arrays and back, and how it draws standard-normal noise the way that framework does.

A bridge is a public building block: the built-in scheduler adapters use one, and so does a
functional-sampler adapter (`conformance.functional`). Nothing in the interface assumes
torch; a bridge for another framework (JAX, CuPy) implements the abstract methods of
`ArrayBridge` and, if it has seeded generators, the three noise methods.

    NumpyBridge()   numpy arrays on the CPU; generator: numpy.random.Generator,
                    noise convention "numpy.standard_normal"
    TorchBridge()   torch tensors on any device; generator: torch.Generator, noise
                    convention "torch.randn" (diffusers' `randn_tensor`, lists included)
    JaxBridge()     jax arrays (float64 inside a scoped `enable_x64`); generator: a PRNG
                    key, noise convention "jax.random.normal" with the declared key
                    splitting; a sampler under `jit` or `lax` loops is reached through
                    `jax.experimental.io_callback` (`JaxBridge(compiled=True)`)

Two hooks let a functional sampler run as it runs in production: `scope(dtype)`, the
context its call runs in (JAX: x64 on for float64), and `host_call(fn, like, *args)`, how
the scripted model and noise hooks answer a call made with traced arrays (the default:
none can be made).
"""

from __future__ import annotations

import contextlib
import copy
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class ArrayInfo:
    """What an implementation returned: its type, shape, dtype and device, as text."""

    type: str
    shape: tuple[int, ...]
    dtype: str
    device: str


def same_generator_state(a: Any, b: Any) -> bool:
    """Two snapshots of a generator's state alike (`ArrayBridge.generator_state`: a torch
    ByteTensor, a numpy bit generator's state dict, a key's data, or numpy's legacy global
    state tuple), so that a check can tell whether anything was drawn in between."""
    if isinstance(a, tuple) and isinstance(b, tuple):  # (name, keys, pos, has_gauss, cached)
        if len(a) != len(b):
            return False
        return all(same_generator_state(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "shape") and hasattr(b, "shape"):
        return tuple(a.shape) == tuple(b.shape) and bool(
            np.array_equal(np.asarray(a), np.asarray(b))
        )
    return bool(a == b)


class ArrayBridge(ABC):
    """The array operations the suite needs from one framework."""

    #: The noise convention of `draw_noise` (see `conformance.protocol.values.Capabilities`).
    noise_convention: str | None = None
    #: The frameworks whose global random state a sampler on this bridge may draw from
    #: (`conformance.functional.global_noise`: noise="global").
    global_random: tuple[str, ...] = ()

    @abstractmethod
    def asarray(self, values: np.ndarray, dtype: str, device: str) -> Any:
        """The framework's array holding `values` (float64 numpy) rounded to `dtype`."""

    @abstractmethod
    def describe(self, array: Any) -> ArrayInfo | None:
        """Type, shape, dtype and device of an array of this framework; None if `array` is
        not one."""

    @abstractmethod
    def to_numpy(self, array: Any) -> np.ndarray:
        """A float64 numpy copy (exact: every dtype the suite uses converts to float64
        without rounding)."""

    @abstractmethod
    def copy(self, array: Any) -> Any:
        """An independent copy (to detect an implementation that writes into its inputs)."""

    def same_values(self, a: Any, b: Any) -> bool:
        """Bitwise equality (NaN equal to NaN)."""
        x, y = self.to_numpy(a), self.to_numpy(b)
        return x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=True))

    def device_available(self, device: str) -> tuple[bool, str]:
        """Whether `device` exists on this machine, and if not, why."""
        return (device == "cpu", "" if device == "cpu" else f"device {device!r} not available")

    # -- noise (optional) --------------------------------------------------------------------

    def generator(self, seed: int, device: str) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no seeded generator")

    def generator_state(self, generator: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no seeded generator")

    def draw_noise(self, generator: Any, shape: tuple[int, ...], dtype: str, device: str) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no noise convention")

    # -- running a sampler as it runs in production (optional) -------------------------------

    def scope(self, dtype: str) -> contextlib.AbstractContextManager:
        """The context a sampler's call runs in for samples of `dtype` (none by default)."""
        return contextlib.nullcontext()

    def traced(self, value: Any) -> bool:
        """Whether `value` is a placeholder of a compiled trace (no values yet)."""
        return False

    def ready(self, value: Any) -> Any:
        """`value` once computed (a framework that dispatches asynchronously blocks here, so
        that every recorded call has been made)."""
        return value

    def host_call(self, fn: Callable[..., Any], like: Any, *args: Any) -> Any:
        """`fn(*args)` (native arrays in, a native array shaped like `like` out) for a call
        made with traced arguments; a framework without tracing never gets one."""
        raise TypeError(f"{type(self).__name__} cannot answer a call with traced arguments")

    def take_host_error(self) -> BaseException | None:
        """What the last `host_call` raised (and forgets it): a compiled run wraps it in an
        error of its own, which the suite unwraps (None: nothing raised there)."""
        return None


class NumpyBridge(ArrayBridge):
    """numpy arrays (CPU only); generators are `numpy.random.Generator`s."""

    noise_convention = "numpy.standard_normal"
    global_random = ("numpy",)

    def asarray(self, values: np.ndarray, dtype: str, device: str) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).astype(dtype)

    def describe(self, array: Any) -> ArrayInfo | None:
        if not isinstance(array, np.ndarray):
            return None
        return ArrayInfo("numpy.ndarray", tuple(array.shape), str(array.dtype), "cpu")

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.array(array, dtype=np.float64)

    def copy(self, array: Any) -> Any:
        return np.array(array, copy=True)

    def generator(self, seed: int, device: str) -> np.random.Generator:
        return np.random.default_rng(seed)

    def generator_state(self, generator: Any) -> Any:
        return copy.deepcopy(generator.bit_generator.state)

    def draw_noise(
        self, generator: Any, shape: tuple[int, ...], dtype: str, device: str
    ) -> np.ndarray:
        return generator.standard_normal(shape).astype(dtype)


class TorchBridge(ArrayBridge):
    """`torch.Tensor`s on any device; generators are `torch.Generator`s on the sample's
    device (torch is imported when the bridge is made)."""

    noise_convention = "torch.randn"
    global_random = ("torch", "numpy")

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def asarray(self, values: np.ndarray, dtype: str, device: str) -> Any:
        array = self.torch.as_tensor(np.asarray(values, dtype=np.float64))
        return array.to(device=device, dtype=getattr(self.torch, dtype))

    def describe(self, array: Any) -> ArrayInfo | None:
        if not isinstance(array, self.torch.Tensor):
            return None
        dtype = str(array.dtype).removeprefix("torch.")
        return ArrayInfo("torch.Tensor", tuple(array.shape), dtype, str(array.device))

    def to_numpy(self, array: Any) -> np.ndarray:
        return array.detach().to("cpu", self.torch.float64).numpy().copy()

    def copy(self, array: Any) -> Any:
        return array.detach().clone()

    def same_values(self, a: Any, b: Any) -> bool:
        return a.shape == b.shape and a.dtype == b.dtype and bool(self.torch.equal(a, b))

    def device_available(self, device: str) -> tuple[bool, str]:
        torch = self.torch
        kind, _, index = device.partition(":")
        if kind == "cpu":
            return True, ""
        if kind == "cuda":
            if not torch.cuda.is_available():
                return False, "no CUDA device on this machine (torch.cuda.is_available() is False)"
            if index and int(index) >= torch.cuda.device_count():
                return False, f"{device} requested, {torch.cuda.device_count()} CUDA device(s)"
            return True, ""
        if kind == "mps":
            ok = torch.backends.mps.is_available()
            return ok, "" if ok else "no MPS device on this machine"
        return False, f"unknown device kind {kind!r}"

    def generator(self, seed: int, device: str) -> Any:
        return self.torch.Generator(device=device).manual_seed(seed)

    def generator_state(self, generator: Any) -> Any:
        return generator.get_state().clone()

    def draw_noise(self, generator: Any, shape: tuple[int, ...], dtype: str, device: str) -> Any:
        # diffusers' `randn_tensor` with the generator(s) on the sample's device: a list
        # draws shape (1, ...) from each generator, concatenated along the batch axis.
        torch = self.torch
        torch_dtype = getattr(torch, dtype)
        if isinstance(generator, (list, tuple)):
            one = (1, *shape[1:])
            parts = [
                torch.randn(one, generator=g, dtype=torch_dtype, device=device) for g in generator
            ]
            return torch.cat(parts, dim=0)
        return torch.randn(shape, generator=generator, dtype=torch_dtype, device=device)


#: How a JAX sampler derives the key of its draw j from the key it is given:
#: "split": `key, sub = jax.random.split(key)` before each draw, drawn from `sub`;
#: "split_first": `sub, key = jax.random.split(key)` before each draw, drawn from `sub`
#: (the first key of each split, the second carried);
#: "fold_in": draw j from `jax.random.fold_in(key, j)`.
KEY_SPLITS = {
    "split": "key, sub = jax.random.split(key) before each draw; jax.random.normal(sub, shape)",
    "split_first": "sub, key = jax.random.split(key) before each draw; "
    "jax.random.normal(sub, shape)",
    "fold_in": "jax.random.normal(jax.random.fold_in(key, j), shape) for draw j",
}
KeySplit = Literal["split", "split_first", "fold_in"]


class JaxBridge(ArrayBridge):
    """`jax.Array`s (jax is imported when the bridge is made). float64 arrays are made, and a
    float64 run of a sampler runs, inside a scoped `enable_x64`: JAX's own default stays as
    the user has it. The generator is a PRNG key (`jax.random.PRNGKey(seed)`), drawn by
    `jax.random.normal(key_j, shape, dtype)`, key_j derived by the declared `keys`
    (`KEY_SPLITS`). `compiled=True` declares a sampler that runs under `jax.jit`, `pmap` or
    a `lax` loop: the scripted model and noise hooks then answer traced calls through
    `jax.experimental.io_callback` (ordered), so the suite records the calls as they run.
    `pmap_axis`: the axis name of a sampler that splits its batch over the local devices with
    `jax.pmap` (the leading axis, in order, an equal share each): each device's call
    answers its rows, and a call is recorded whole once every device made it; the keys of
    its draws are watched on the first device."""

    noise_convention = "jax.random.normal"

    def __init__(
        self, *, keys: KeySplit = "split", compiled: bool = False, pmap_axis: str | None = None
    ) -> None:
        if keys not in KEY_SPLITS:
            raise ValueError(f"`keys` must be one of {tuple(KEY_SPLITS)}, got {keys!r}")
        if pmap_axis is not None and (not compiled or not isinstance(pmap_axis, str)):
            raise ValueError(
                f"`pmap_axis` {pmap_axis!r}: the axis name a pmapped sampler passes to "
                "jax.pmap (a str), with compiled=True"
            )
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.keys = keys
        self.compiled = compiled
        self.pmap_axis = pmap_axis
        #: (this device's index, the number of devices) while a pmapped call is answered
        self.shard: tuple[int, int] | None = None
        # reentrant: a watched draw of the suite's own made while a callback is answered
        self._host_lock = threading.RLock()
        self._x64 = getattr(jax, "enable_x64", None)
        if self._x64 is None:  # jax < 0.5: the context manager lives in jax.experimental
            from jax.experimental import enable_x64

            self._x64 = enable_x64

    @contextlib.contextmanager
    def scope(self, dtype: str) -> Iterator[None]:
        """x64 for a float64 run, else JAX as the user has it. A compiled sampler's callbacks
        run on JAX's threads, which a thread-local scope does not reach (their float64
        answers would be cut to float32): for one, x64 is set process-wide for the call and
        restored after it."""
        if dtype != "float64":
            yield
            return
        state = self._x64  # the process-wide value, not a thread's scope
        before = (
            state.get_global()
            if hasattr(state, "get_global")
            else self.jax.config.read("jax_enable_x64")
        )
        with self._x64(True):
            if not self.compiled:
                yield
                return
            self.jax.config.update("jax_enable_x64", True)
            try:
                yield
            finally:
                self.jax.config.update("jax_enable_x64", before)

    def _device(self, device: str) -> Any:
        kind, _, index = device.partition(":")
        platform = "gpu" if kind == "cuda" else kind
        return self.jax.devices(platform)[int(index or 0)]

    def asarray(self, values: np.ndarray, dtype: str, device: str) -> Any:
        with self._x64(True):
            array = self.jnp.asarray(np.asarray(values, dtype=np.float64)).astype(dtype)
            if self.pmap_axis is not None and self._device(device) == self.jax.devices()[0]:
                return array  # uncommitted: pmap may shard it over the devices
            return self.jax.device_put(array, self._device(device))

    def describe(self, array: Any) -> ArrayInfo | None:
        if not isinstance(array, self.jax.Array) or self.traced(array):
            return None
        device = next(iter(array.devices()))
        kind = "cuda" if device.platform == "gpu" else device.platform
        name = kind if kind == "cpu" else f"{kind}:{device.id}"
        return ArrayInfo("jax.Array", tuple(array.shape), str(array.dtype), name)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.array(np.asarray(array), dtype=np.float64)

    def copy(self, array: Any) -> Any:
        return self.jnp.array(array, copy=True)

    def device_available(self, device: str) -> tuple[bool, str]:
        try:
            self._device(device)
        except (RuntimeError, IndexError, ValueError) as exc:
            return False, f"jax has no device {device!r} on this machine ({exc})"
        return True, ""

    # -- tracing ------------------------------------------------------------------------------

    def traced(self, value: Any) -> bool:
        return isinstance(value, self.jax.core.Tracer)

    def ready(self, value: Any) -> Any:
        return self.jax.block_until_ready(value)

    def host_call(self, fn: Callable[..., Any], like: Any, *args: Any) -> Any:
        if not self.compiled:
            raise TypeError(
                "the scripted model or noise hook was handed a JAX tracer: the sampler runs "
                "under jax.jit, pmap or a lax loop. Declare bridge=JaxBridge(compiled=True): "
                "the suite then records its calls through jax.experimental.io_callback, as "
                "the compiled sampler runs"
            )
        from jax.experimental import io_callback

        shard = self._shard_index()

        def on_host(*values: Any) -> np.ndarray:
            *values, index = values
            # one at a time: the devices of a pmapped sampler call back from their threads
            with self._host_lock:
                try:
                    with self._x64(True):  # a callback thread: the caller's scope is not here
                        native = [self.jnp.asarray(v) for v in values]
                        self.shard = None if shard is None else (int(index), shard[1])
                        return np.asarray(fn(*native), dtype=like.dtype)
                except BaseException as exc:  # XLA re-raises it as a "CpuCallback error"
                    self._host_error = exc
                    raise
                finally:
                    self.shard = None

        result = self.jax.ShapeDtypeStruct(like.shape, like.dtype)
        index = self.jnp.int32(0) if shard is None else shard[0]
        return io_callback(on_host, result, *map(self.jnp.asarray, args), index, ordered=True)

    def _shard_index(self) -> tuple[Any, int] | None:
        """(this device's index, traced; the number of devices) inside the declared pmap
        axis; None outside it, or where no axis is declared."""
        if self.pmap_axis is None:
            return None
        try:
            index = self.jax.lax.axis_index(self.pmap_axis)
        except NameError:  # not inside the pmapped function
            return None
        return index, int(self.jax.lax.psum(1, self.pmap_axis))

    def take_host_error(self) -> BaseException | None:
        error, self._host_error = getattr(self, "_host_error", None), None
        return error

    # -- noise: PRNG keys ----------------------------------------------------------------------

    def generator(self, seed: int, device: str) -> Any:
        return self.jax.random.PRNGKey(seed)

    def generator_state(self, generator: Any) -> Any:
        return self.key_data(generator)

    def key_data(self, key: Any) -> np.ndarray:
        """A key's raw data (uint32), whether a legacy `PRNGKey` or a typed `jax.random.key`."""
        if self.jnp.issubdtype(key.dtype, self.jax.dtypes.prng_key):
            key = self.jax.random.key_data(key)
        return np.asarray(key)

    def draw_keys(self, key: Any, draws: int) -> list[Any]:
        """The keys of draws 0 .. draws - 1 from `key`, by the declared splitting."""
        random = self.jax.random
        if self.keys == "fold_in":
            return [random.fold_in(key, j) for j in range(draws)]
        out = []
        for _ in range(draws):
            key, sub = random.split(key)
            if self.keys == "split_first":
                sub, key = key, sub
            out.append(sub)
        return out

    @contextlib.contextmanager
    def watch_keys(
        self, at: Callable[[], int] | None = None
    ) -> Iterator[list[tuple[np.ndarray, int | None]]]:
        """(the data of its key, `at()` then) for every `jax.random.normal` call made while
        the block runs (recorded through io_callback when traced), to verify the declared
        splitting and count the draws between the model's calls (`at`: how many were made).
        A compiled trace that a later run reuses records into that run's list."""
        seen: list[tuple[np.ndarray, int | None]] = []
        self._watching = (seen, at)
        random, normal = self.jax.random, self.jax.random.normal

        def watched(key: Any, *args: Any, **kwargs: Any) -> Any:
            data = key
            if self.jnp.issubdtype(key.dtype, self.jax.dtypes.prng_key):
                data = random.key_data(key)
            if self.traced(data):
                from jax.experimental import io_callback

                shard = self._shard_index()  # a pmapped sampler's keys: the first device's
                index = self.jnp.int32(0) if shard is None else shard[0]
                io_callback(self._record_key, None, data, index, ordered=True)
            else:
                self._record_key(data)
            return normal(key, *args, **kwargs)

        random.normal = watched
        try:
            yield seen
        finally:
            random.normal = normal
            self._watching = None

    def _record_key(self, data: Any, device: Any = 0) -> None:
        """One watched draw's key, into the list of the run being watched (none: dropped;
        another device's than the first: its copy of the draw)."""
        watching = getattr(self, "_watching", None)
        if watching is not None and int(device) == 0:
            seen, at = watching
            with self._host_lock:
                seen.append((np.asarray(data), None if at is None else at()))

    @contextlib.contextmanager
    def substitute_key(self, key: Any, instead: Any) -> Iterator[None]:
        """While the block runs, a `jax.random.normal` call on `key` draws from `instead`:
        a key's draws cannot be restarted as a generator's can, so two runs given different
        keys share the draw of `key` (x_T's, drawn before the loop) this way. A select, not
        a branch, so that a traced key (jit, lax loops) is substituted too."""
        random, normal, jnp = self.jax.random, self.jax.random.normal, self.jnp
        wanted, data_instead = self.key_data(key), self.key_data(instead)

        def substituted(given: Any, *args: Any, **kwargs: Any) -> Any:
            typed = jnp.issubdtype(given.dtype, self.jax.dtypes.prng_key)
            data = random.key_data(given) if typed else given
            other = jnp.asarray(data_instead, dtype=data.dtype)
            same = jnp.all(data == jnp.asarray(wanted, dtype=data.dtype))
            chosen = jnp.where(same, other, data)
            return normal(random.wrap_key_data(chosen) if typed else chosen, *args, **kwargs)

        random.normal = substituted
        try:
            yield
        finally:
            random.normal = normal

    def draw_noise(self, generator: Any, shape: tuple[int, ...], dtype: str, device: str) -> Any:
        """Draw 0 of the key `generator` (the one draw of one step)."""
        return self.reproduce_noise_from(generator, shape, dtype, device, 1)[0]

    def reproduce_noise_from(
        self, key: Any, shape: tuple[int, ...], dtype: str, device: str, draws: int
    ) -> list[Any]:
        """Draws 0 .. draws - 1 a sampler takes from `key` by the declared splitting."""
        with self.scope(dtype):
            return [
                self.jax.device_put(
                    self.jax.random.normal(k, shape, dtype=dtype), self._device(device)
                )
                for k in self.draw_keys(key, draws)
            ]
