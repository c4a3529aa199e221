"""Every mutant (survivors included) and equivalent variant by name, as `--impl` reaches them:

    python -m pytest conformance --impl=tests.mutants.registry:impl.c_out_tenth_percent

`impl.NAME` is a function returning the adapter (the claims of the implementation the
class was made from: `--impl=torch` or `--impl=reference`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from types import SimpleNamespace

from conformance.protocol.adapter import Adapter
from tests.mutants.base import adapter_for
from tests.mutants.equivalents import EQUIVALENTS
from tests.mutants.zoo import MUTANTS, SURVIVORS


def _factories() -> dict[str, Callable[[], Adapter]]:
    made: dict[str, Callable[[], Adapter]] = {}
    for m in (*MUTANTS, *SURVIVORS):
        made[m.name] = partial(adapter_for, m.scheduler, f"mutant {m.name}", m.bug)
    for v in EQUIVALENTS:
        if v.name in made:
            raise ValueError(f"{v.name!r} names both a mutant and a variant")
        made[v.name] = partial(adapter_for, v.scheduler, f"variant {v.name}", v.what)
    return made


impl = SimpleNamespace(**_factories())


def impl_option(name: str) -> str:
    """The `--impl` value for a mutant or variant."""
    if not hasattr(impl, name):
        raise KeyError(f"no mutant or variant named {name!r}")
    return f"{__name__}:impl.{name}"
