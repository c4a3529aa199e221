"""Known deviations: a clause an implementation is declared not to meet, and by how much.

A deviation is declared in a file kept next to the implementation's adapter (for
diffusers: `conformance/implementations/diffusers_deviations.py`), with the figure
measured and the reason. When a test of that clause fails on a matching device and
dtype, the failure is reported as a *known deviation* (pytest's xfail, never a pass)
only if it is the declared one:

- a numeric deviation (`max_ratio`, `max_rel_error`, `max_abs_error`, any of them)
  covers a violation whose worst error is at most `max_ratio` times its bound and whose
  errors exceed their bounds by at most the relative (absolute) figure given; a larger
  error still fails, naming the declared figure. `max_ratio = 2**29`, the ratio of float32's unit
  roundoff to float64's, declares "float32-accurate on float64 samples";
- a behavioural deviation (`match`) covers a failure whose message matches the regular
  expression `match` (for example the exception type raised instead of ValueError).

A declared deviation that is not observed leaves the test passed, and the report says
so, so that stale declarations are visible.

Which declared deviation covers a failure is decided here, in `covering` (one violation)
and `covering_all` (a test's failure); nowhere else.

Taking over another implementation's deviations (`declared_by("diffusers")`) is done where
implementations are loaded: `conformance.harness.loading.declared_by`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conformance.protocol.violation import ClauseViolation


@dataclass(frozen=True)
class Deviation:
    """One declared deviation of one clause.

    clause:    the clause id of SPEC.md, for example "STEP-4".
    reason:    why the implementation deviates (one or two sentences).
    measured:  the figure measured, as text for the report ("6.7e-7 noise scale").
    max_ratio: for numeric clauses, the largest worst error / bound the deviation covers.
    max_rel_error, max_abs_error: for numeric clauses, the largest excess of an error over
               its bound that the deviation covers, relative to the magnitude the clause
               names (absolute).
    match:     for behavioural clauses, a regex the failure message must match.
    dtypes, devices: where it applies (None: everywhere). A device "cuda" covers "cuda:N".
    """

    clause: str
    reason: str
    measured: str
    max_ratio: float | None = None
    max_rel_error: float | None = None
    max_abs_error: float | None = None
    match: str | None = None
    dtypes: tuple[str, ...] | None = None
    devices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        figures = (self.max_ratio, self.max_rel_error, self.max_abs_error)
        numeric = any(f is not None for f in figures)
        if numeric == (self.match is not None):
            raise ValueError(
                f"deviation of {self.clause}: give a numeric figure (`max_ratio`, "
                "`max_rel_error`, `max_abs_error`) or a behavioural `match`, not both nor neither"
            )

    def applies(self, clause: str, device: str | None, dtype: str | None) -> bool:
        if clause != self.clause:
            return False
        if self.dtypes is not None and dtype is not None and dtype not in self.dtypes:
            return False
        if self.devices is not None and device is not None:
            base = device.split(":")[0]
            if device not in self.devices and base not in self.devices:
                return False
        return True

    def covers(
        self,
        message: str,
        ratio: float | None = None,
        max_rel_error: float | None = None,
        max_abs_error: float | None = None,
    ) -> bool:
        """Whether a failure (its message, and its figures when numeric) is this one."""
        if self.match is not None:
            return re.search(self.match, message, flags=re.DOTALL) is not None
        pairs = (
            (self.max_ratio, ratio),
            (self.max_rel_error, max_rel_error),
            (self.max_abs_error, max_abs_error),
        )
        return all(
            declared is None or (seen is not None and seen <= declared) for declared, seen in pairs
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "clause": self.clause,
            "reason": self.reason,
            "measured": self.measured,
            "max_ratio": self.max_ratio,
            "max_rel_error": self.max_rel_error,
            "max_abs_error": self.max_abs_error,
            "match": self.match,
            "dtypes": None if self.dtypes is None else list(self.dtypes),
            "devices": None if self.devices is None else list(self.devices),
        }


def applicable(
    deviations: Sequence[Deviation], clause: str, device: str | None, dtype: str | None
) -> list[Deviation]:
    """The declared deviations that apply to one clause on one device and dtype."""
    return [d for d in deviations if d.applies(clause, device, dtype)]


def covering(declared: Sequence[Deviation], violation: ClauseViolation) -> Deviation | None:
    """The first declared deviation that covers one clause violation (its message and
    figures), or None."""
    text = str(violation)
    for deviation in declared:
        if deviation.covers(
            text, violation.ratio, violation.max_rel_error, violation.max_abs_error
        ):
            return deviation
    return None


def covering_all(
    declared: Sequence[Deviation], found: Sequence[ClauseViolation], message: str
) -> Deviation | None:
    """The declared deviation that covers a failed test: every clause violation in it (a
    hypothesis failure may hold several) explained by a declared deviation (the first one's
    is returned), or, for a failure that is no clause violation (the implementation raised),
    a behavioural deviation matching the whole message."""
    if not declared:
        return None
    if not found:
        return next((d for d in declared if d.match and d.covers(message)), None)
    chosen = [covering(declared, violation) for violation in found]
    if any(d is None for d in chosen):
        return None
    return chosen[0]
