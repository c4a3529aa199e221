"""Turning `--impl=NAME` into an `Adapter`.

NAME is, in this order:

1. a built-in name: `reference`, `torch`, `diffusers`;
2. a name registered by an installed distribution under the entry-point group
   `cm_conformance.implementations`, for example in its pyproject.toml:

       [project.entry-points."cm_conformance.implementations"]
       myscheduler = "mypackage.conformance:adapter"

3. `package.module:attr` (attr may be dotted: `module:Outer.Inner`).

The object found may be an `Adapter` instance, an `Adapter` subclass (instantiated
without arguments), a zero-argument function returning an adapter, or a scheduler
class with diffusers' API (wrapped as described in the README's adapter protocol).

Taking over another implementation's deviations: an adapter around a class that inherits
diffusers' behaviour (a subclass, a wrapper, a port) declares diffusers' deviations as its
own with `declared_by("diffusers")`, and adds its own after them:

    deviations=(*declared_by("diffusers"), Deviation("STEP-4", ...)),

`declared_by` takes any name `--impl` takes (a built-in, an entry point, `module:attr`);
for the built-ins it reads the declarations without importing the implementation.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path, PurePath
from typing import Any

from conformance.implementations import BUILTINS, DECLARED_DEVIATIONS
from conformance.protocol.adapter import Adapter
from conformance.protocol.deviations import Deviation

ENTRY_POINT_GROUP = "cm_conformance.implementations"


class ImplementationError(Exception):
    """`--impl` names nothing loadable; the message says what is available."""


def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The implementations registered by installed distributions."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, str]:
    """Every name `--impl` accepts besides `module:attr`, with where it comes from."""
    names = {name: f"built-in ({target})" for name, target in BUILTINS.items()}
    for name, ep in entry_points().items():
        names.setdefault(name, f"entry point {ep.value} ({ENTRY_POINT_GROUP})")
    return names


def _menu() -> str:
    lines = [f"  {name:<12} {origin}" for name, origin in available().items()]
    lines.append("  package.module:attr   a scheduler class with diffusers' API, or an Adapter")
    return "\n".join(lines)


def _import_target(target: str, what: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ImplementationError(
            f"{what}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
            + _hint(exc, module_name)
        ) from exc
    for part in attr.split(".") if attr else []:
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ImplementationError(
                f"{what}: module {module_name!r} has no attribute {attr!r}"
            ) from exc
    return obj


#: The extra of this distribution that installs a missing module the built-ins need.
EXTRAS = {"torch": "torch", "diffusers": "diffusers"}


def _hint(exc: BaseException, module_name: str) -> str:
    """What to do about a module that is not installed: the extra that brings it, or where
    a package of one's own must be for `package.module:attr` to find it."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return ""
    missing = exc.name.split(".")[0]
    if missing in EXTRAS:
        return (
            f' (install the extra that brings it: pip install "cm-conformance[{EXTRAS[missing]}]"; '
            "on a machine without an NVIDIA GPU, torch's CPU wheel first: README, Quickstart)"
        )
    if missing == module_name.split(".")[0]:
        return (
            f" (is {missing!r} on the import path? Install it, or run "
            "`python -m pytest --pyargs conformance ...` from the folder that holds it)"
        )
    return ""


def _file_path_hint(spec: str) -> str | None:
    """For `--impl=path/to/adapters.py:NAME` (a file path, what a new user tries first): how
    to name the module instead; None for anything that is no file path."""
    target, sep, attr = spec.rpartition(":")
    if not sep or "/" in attr or "\\" in attr:  # no attr, or a colon of the path only ("C:\\")
        target, attr = spec, ""
    if not ("/" in target or "\\" in target or target.endswith(".py")):
        return None
    path = PurePath(target)
    module = path.name.removesuffix(".py")
    folder = str(path.parent)
    missing = "" if Path(target).is_file() else f" (there is no file {target!r} here)"
    return (
        f"--impl={spec!r}: --impl takes package.module:attr, not a file path{missing}; put the "
        f"folder that holds the module on the import path and name the module:\n"
        f"  PYTHONPATH={folder} python -m pytest --pyargs conformance "
        f"--impl={module}:{attr or 'NAME'}\n"
        f"(or run python -m pytest --pyargs conformance --impl={module}:{attr or 'NAME'} "
        "from that folder)"
    )


def load(spec: str) -> Adapter:
    """The adapter for `--impl=spec`; `ImplementationError` with the menu if nothing fits."""
    if spec in BUILTINS:
        obj = _import_target(BUILTINS[spec], f"built-in implementation {spec!r}")
        return to_adapter(obj, spec)
    registered = entry_points()
    if spec in registered:
        try:
            obj = registered[spec].load()
        except Exception as exc:
            raise ImplementationError(
                f"implementation {spec!r} ({registered[spec].value}, entry-point group "
                f"{ENTRY_POINT_GROUP}) cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        return to_adapter(obj, spec)
    path_hint = _file_path_hint(spec)
    if path_hint:
        raise ImplementationError(path_hint)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ImplementationError(
                f"--impl={spec!r}: expected package.module:attr\navailable:\n{_menu()}"
            )
        return to_adapter(_import_target(spec, f"--impl={spec!r}"), spec)
    raise ImplementationError(f"unknown implementation {spec!r}; available:\n{_menu()}")


def to_adapter(obj: Any, name: str, _depth: int = 0) -> Adapter:
    """Wrap what `--impl` named into an `Adapter` (see the module docstring)."""
    if isinstance(obj, Adapter):
        return obj
    if isinstance(obj, type) and issubclass(obj, Adapter):
        return obj()
    if isinstance(obj, type):
        missing = [m for m in ("set_timesteps", "step", "scale_model_input") if not hasattr(obj, m)]
        if missing:
            raise ImplementationError(
                f"{name}: class {obj.__qualname__} lacks {', '.join(missing)}; expected a "
                "scheduler class with diffusers' API or a conformance.protocol.adapter.Adapter"
            )
        from conformance.implementations.diffusers_adapter import (
            is_diffusers_scheduler,
            subclass_adapter,
        )
        from conformance.implementations.torch_adapter import class_adapter

        if is_diffusers_scheduler(obj):
            return subclass_adapter(obj, name)
        return class_adapter(obj, name)
    if callable(obj) and _depth == 0:
        try:
            made = obj()
        except Exception as exc:
            raise ImplementationError(
                f"{name}: calling the factory raised {type(exc).__name__}: {exc}" + _hint(exc, "")
            ) from exc
        return to_adapter(made, name, _depth + 1)
    raise ImplementationError(
        f"{name}: got {type(obj).__name__} {obj!r}; expected a scheduler class with diffusers' "
        "API, a conformance.protocol.adapter.Adapter (class or instance) or a function returning one"
    )


def declared_by(impl: str) -> tuple[Deviation, ...]:
    """The deviations that implementation `impl` declares (any name `--impl` takes), to be
    taken over by an adapter of something that behaves the same: see the module docstring."""
    if impl in DECLARED_DEVIATIONS:
        target = DECLARED_DEVIATIONS[impl]
        if target is None:
            return ()
        return tuple(_import_target(target, f"the deviations of {impl!r}"))
    return tuple(load(impl).deviations)
