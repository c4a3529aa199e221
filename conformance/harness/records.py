"""The outcome of one conformance test phase, as one typed record, and the one function that
classifies it.

`classify` turns what a test phase produced (pytest's outcome, the exception raised, the
violations a declared deviation absorbed) into an `Outcome`: no pytest in here, so that the
classification and the report built from it (`conformance.harness.report`) are tested as plain
functions. An `Outcome` is plain data (`as_dict` / `from_dict`), so that it travels from
pytest-xdist workers to the controller in a test report's `user_properties`.

Statuses, from the worst:

- "failed":          a MUST clause violated (or the implementation hung);
- "error":           the check itself raised something that is no clause violation (the
                     exception is named in place of a ratio);
- "warning":         a SHOULD clause violated (fails the run only with `--conformance-strict`);
- "known deviation": a violation that a declared deviation explains;
- "passed":          every check met;
- "skipped":         not run, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from conformance.harness import failures
from conformance.measuring.checks import Worst
from conformance.protocol import clauses, deviations
from conformance.protocol.deviations import Deviation
from conformance.protocol.violation import ClauseViolation

Status = Literal["failed", "error", "warning", "known deviation", "passed", "skipped"]
#: Worst first: a cell shows the worst status of its tests.
STATUSES: tuple[str, ...] = ("failed", "error", "warning", "known deviation", "passed", "skipped")
RANK = {status: len(STATUSES) - i for i, status in enumerate(STATUSES)}
#: Statuses that fail the run.
FAILING = ("failed", "error")
#: The name of the `user_properties` entry that carries a record.
PROPERTY = "cm_conformance_outcome"


@dataclass(frozen=True)
class Outcome:
    """One phase of one conformance test (setup, call or teardown), classified."""

    nodeid: str
    clause: str
    level: str  # "MUST" or "SHOULD" (SPEC.md)
    device: str | None
    dtype: str | None
    phase: str  # "setup", "call", "teardown"
    status: str  # one of STATUSES
    message: str | None = None  # first line of the failure, skip reason or note
    exception: str | None = None  # the exception's type, for "error" (and hangs)
    worst: Worst | None = None  # the worst comparison of the test (`Measure.worst`)
    # The largest excess over their bounds among the violations (absolute, relative) and their
    # worst ratio, for failures and known deviations.
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    ratio: float | None = None
    bound_note: str | None = None
    deviation: dict[str, Any] | None = None  # the declared deviation that explains it
    noise_layers: tuple[str, ...] = field(default_factory=tuple)
    #: The readable block of the violation (`conformance.harness.failures.block`), whole.
    failure: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["noise_layers"] = list(self.noise_layers)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        data = dict(data)
        worst = data.pop("worst", None)
        data["noise_layers"] = tuple(data.get("noise_layers") or ())
        return cls(worst=Worst(**worst) if worst else None, **data)

    @property
    def where(self) -> str:
        return "/".join(x for x in (self.device, self.dtype) if x) or "any device and dtype"


def violations_in(exc: BaseException | None) -> Iterator[ClauseViolation]:
    """The clause violations an exception holds (a hypothesis failure may group several)."""
    if exc is None:
        return
    if isinstance(exc, ClauseViolation):
        yield exc
    for inner in getattr(exc, "exceptions", ()) or ():
        yield from violations_in(inner)


def level_of(violation: ClauseViolation) -> str:
    """A violation's normative level: its own `level`, else its clause's in SPEC.md."""
    return getattr(violation, "level", None) or clauses.level(violation.clause)


def first_line(text: str, limit: int = 400) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _largest(values: Sequence[float | None]) -> float | None:
    seen = [float(v) for v in values if v is not None]
    if not seen:
        return None
    return max(seen, key=lambda v: (not math.isnan(v), v))


def classify(
    *,
    nodeid: str,
    clause: str,
    device: str | None,
    dtype: str | None,
    phase: str,
    outcome: str,
    exception: BaseException | None = None,
    text: str = "",
    worst: Worst | None = None,
    noise_layers: Sequence[str] = (),
    absorbed: Sequence[tuple[Deviation, ClauseViolation]] = (),
    declared: Sequence[Deviation] = (),
    strict: bool = False,
) -> Outcome:
    """Classify one test phase.

    outcome:   pytest's outcome of the phase, "passed", "failed" or "skipped".
    exception: what the phase raised (None when it passed or was skipped).
    text:      the skip reason, or the failure text when there is no exception object.
    worst:     the test's worst comparison (`Measure.worst`), if any.
    absorbed:  violations that a declared deviation explained while the test ran (the test
               went on and passed).
    declared:  the deviations declared for this clause, device and dtype.
    strict:    a SHOULD clause violated fails like a MUST one.
    """

    def make(**fields: Any) -> Outcome:
        made = Outcome(**{**base, **fields})
        if made.bound_note is None and worst is not None and worst.known_difference:
            made = replace(made, bound_note=worst.known_difference)
        return made

    base: dict[str, Any] = dict(
        nodeid=nodeid,
        clause=clause,
        level=clauses.level(clause),
        device=device,
        dtype=dtype,
        phase=phase,
        worst=worst,
        noise_layers=tuple(sorted(noise_layers)),
    )
    if outcome == "skipped":
        return make(status="skipped", message=first_line(text) or None)
    if outcome == "passed":
        if absorbed:
            deviation, violation = absorbed[0]
            found = [v for _, v in absorbed]
            return make(
                status="known deviation",
                message=first_line(str(violation)),
                deviation=deviation.as_dict(),
                failure=failures.block(violation, frames=False),
                **_figures(found),
            )
        note = "declared deviation not observed" if declared else None
        return make(status="passed", message=note)
    found = list(violations_in(exception))
    message = first_line(str(found[0]) if found else _exception_text(exception, text))
    explained = deviations.covering_all(declared, found, _exception_text(exception, text))
    if explained is not None and phase == "call":
        return make(
            status="known deviation",
            message=message,
            deviation=explained.as_dict(),
            failure=failures.block(found[0], frames=False) if found else None,
            **_figures(found),
        )
    if not found:
        hang = exception is not None and type(exception).__name__ == "ImplementationHang"
        return make(
            status="failed" if hang else "error",
            message=message,
            exception=type(exception).__name__ if exception is not None else None,
        )
    unexplained = [v for v in found if deviations.covering(declared, v) is None]
    should_only = all(level_of(v) == "SHOULD" for v in unexplained)
    status = "warning" if should_only and not strict else "failed"
    if should_only:
        base["level"] = "SHOULD"
    return make(
        status=status,
        message=message,
        failure=failures.block(found[0], frames=False),
        **_figures(found),
    )


def _exception_text(exception: BaseException | None, text: str) -> str:
    if exception is None:
        return text
    return f"{type(exception).__name__}: {exception}"


def _figures(found: Sequence[ClauseViolation]) -> dict[str, Any]:
    notes = [getattr(v, "known_difference", None) for v in found]
    return {
        "max_abs_error": _largest([v.max_abs_error for v in found]),
        "max_rel_error": _largest([v.max_rel_error for v in found]),
        "ratio": _largest([v.ratio for v in found]),
        "bound_note": next((n for n in notes if n), None),
    }
