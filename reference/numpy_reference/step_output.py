"""What `step` returns: diffusers' output semantics without diffusers.

diffusers' `CMStochasticIterativeSchedulerOutput` (0.42.1) is a `BaseOutput`, an ordered
dict whose keys are also attributes: `out.prev_sample`, `out["prev_sample"]`, `out[0]`,
`out.keys()`, `out.values()`, `out.items()`, `out.to_tuple()`, and iterating over it yields
its keys. This class reads the same way for the numpy and the torch scheduler; the
diffusers-facing class (`reference.torch_scheduler.diffusers_scheduler`) returns diffusers'
own class.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CMStochasticIterativeSchedulerOutput:
    """The sample for the next evaluation, x_{tau_n} of Algorithm 1 (line 5)."""

    prev_sample: Any

    def keys(self) -> tuple[str, ...]:
        return ("prev_sample",)

    def values(self) -> tuple[Any, ...]:
        return (self.prev_sample,)

    def items(self) -> tuple[tuple[str, Any], ...]:
        return (("prev_sample", self.prev_sample),)

    def to_tuple(self) -> tuple[Any, ...]:
        """`(prev_sample,)`, what `step(..., return_dict=False)` returns."""
        return (self.prev_sample,)

    def __getitem__(self, key: str | int | slice) -> Any:
        """By name (`out["prev_sample"]`) or by position (`out[0]`), as `BaseOutput`."""
        if isinstance(key, str):
            if key != "prev_sample":
                raise KeyError(key)
            return self.prev_sample
        return self.to_tuple()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return 1

    def __contains__(self, key: object) -> bool:
        return key == "prev_sample"
