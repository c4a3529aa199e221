"""noise="global": a sampler that draws from its framework's global random state, routed to
the suite's draws for the duration of one call.

Research samplers call `torch.randn_like(x)` (or `torch.randn`, `torch.normal`, numpy's
legacy `np.random.randn`) with no generator. During the call `route` replaces those
functions by ones that hand out the suite's draws through a `NoiseSource` (recorded as any
hook's draws), each returned in the dtype and device the sampler asked for. A draw that
escapes the routing is reported, never silently taken: the global states of torch and numpy
are compared before and after the call (a draw by a route not replaced, such as
`Tensor.normal_`, `torch.rand` or a function imported before the call, advances them), and
a routed call whose shape is not the sample's is answered by the framework and listed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from conformance.functional.scripted import NoiseSource
from conformance.protocol.bridges import same_generator_state

#: The global draws routed, by framework.
ROUTED = {
    "torch": ("torch.randn", "torch.randn_like", "torch.normal (no generator)"),
    "numpy": ("numpy.random.randn", "numpy.random.standard_normal", "numpy.random.normal"),
}


def _patched(module: Any, name: str, replacement: Callable[..., Any]) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    original = getattr(module, name)
    setattr(module, name, replacement)
    stack.callback(setattr, module, name, original)
    return stack


@contextlib.contextmanager
def route(
    source: NoiseSource, shape: tuple[int, ...], frameworks: tuple[str, ...]
) -> Iterator[list[str]]:
    """Route the global standard-normal draws of `frameworks` ("torch", "numpy") of the
    sample's `shape` to `source` while the block runs; yields the list of escapes, filled
    when the block ends (each a sentence naming the framework and what was seen)."""
    escapes: list[str] = []
    with contextlib.ExitStack() as stack:
        states = {}
        if "torch" in frameworks:
            import torch

            states["torch"] = (torch.random.get_rng_state, _torch_routes(torch, source, shape))
        if "numpy" in frameworks:
            states["numpy"] = (np.random.get_state, _numpy_routes(source, shape))
        before = {}
        for framework, (state, routes) in states.items():
            before[framework] = state()
            for module, name, replacement in routes:
                stack.enter_context(_patched(module, name, _guard(replacement, escapes)))
        try:
            yield escapes
        finally:
            stack.close()
            for framework, (state, _) in states.items():
                if not same_generator_state(before[framework], state()):
                    escapes.append(
                        f"{framework}'s global random state advanced during the call: a draw "
                        f"escaped the routing (routed: {', '.join(ROUTED[framework])})"
                    )


class _Unrouted(Exception):
    """A routed function called in a way the routing does not serve (its own generator, a
    shape that is not the sample's): the framework answers it."""


def _guard(replacement: Callable[..., Any], escapes: list[str]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return replacement(*args, **kwargs)
        except _Unrouted as exc:
            reason, original = exc.args
            if reason:
                escapes.append(reason)
            return original(*args, **kwargs)

    return call


def _torch_routes(torch: Any, source: NoiseSource, shape: tuple[int, ...]) -> list[tuple]:
    randn, randn_like, normal = torch.randn, torch.randn_like, torch.normal

    def draw(size: tuple[int, ...], dtype: Any, device: Any, original: Callable) -> Any:
        if tuple(size) != tuple(shape):
            raise _Unrouted(
                f"torch: a global draw of shape {tuple(size)} (the sample's is {shape}) was "
                "answered by torch, not the suite",
                original,
            )
        like = torch.empty(size, dtype=dtype or torch.get_default_dtype(), device=device)
        return source.draw(like).to(dtype=like.dtype, device=like.device)

    def routed_randn(*size: Any, generator: Any = None, dtype: Any = None, device: Any = None,
                     **rest: Any) -> Any:  # fmt: skip
        if generator is not None or rest.get("out") is not None:
            raise _Unrouted("", randn)
        size = size or tuple(rest.get("size", ()))
        dims = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
        return draw(dims, dtype, device, randn)

    def routed_randn_like(x: Any, *, dtype: Any = None, device: Any = None, **rest: Any) -> Any:
        return draw(tuple(x.shape), dtype or x.dtype, device or x.device, randn_like)

    def routed_normal(mean: Any = 0.0, std: Any = 1.0, *args: Any, generator: Any = None,
                      **kwargs: Any) -> Any:  # fmt: skip
        if generator is not None or kwargs.get("out") is not None:
            raise _Unrouted("", normal)
        size = args[0] if args else kwargs.get("size")
        tensors = [v for v in (mean, std) if isinstance(v, torch.Tensor)]
        if size is None:
            size = torch.broadcast_shapes(*(t.shape for t in tensors))
        dtype = kwargs.get("dtype") or (tensors[0].dtype if tensors else None)
        device = kwargs.get("device") or (tensors[0].device if tensors else None)
        return mean + std * draw(tuple(size), dtype, device, normal)

    return [(torch, "randn", routed_randn), (torch, "randn_like", routed_randn_like),
            (torch, "normal", routed_normal)]  # fmt: skip


def _numpy_routes(source: NoiseSource, shape: tuple[int, ...]) -> list[tuple]:
    random = np.random
    randn, standard_normal, normal = random.randn, random.standard_normal, random.normal

    def draw(size: Any, original: Callable) -> np.ndarray:
        size = () if size is None else (size,) if isinstance(size, int) else tuple(size)
        if size != tuple(shape):
            raise _Unrouted(
                f"numpy: a global draw of shape {size} (the sample's is {shape}) was answered "
                "by numpy, not the suite",
                original,
            )
        return source.bridge.to_numpy(source.draw(None))

    def routed_randn(*size: int) -> np.ndarray:
        return draw(size, randn)

    def routed_standard_normal(size: Any = None) -> np.ndarray:
        return draw(size, standard_normal)

    def routed_normal(loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> np.ndarray:
        return loc + scale * draw(size if size is not None else np.broadcast(loc, scale).shape,
                                  normal)  # fmt: skip

    return [(random, "randn", routed_randn), (random, "standard_normal", routed_standard_normal),
            (random, "normal", routed_normal)]  # fmt: skip
