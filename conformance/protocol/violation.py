"""`ClauseViolation`: a clause of SPEC.md not met, the one exception a failing check raises
(an `AssertionError`, so that pytest reports it as a failure). It carries the clause, the
device and dtype, what was checked and, for a numeric check, its figures; the harness
classifies it (`conformance.harness.records`) and declared deviations are matched against it
(`conformance.protocol.deviations`). Imports nothing of the suite but SPEC.md's clause
levels (`conformance.protocol.clauses`).
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.protocol import clauses


class ClauseViolation(AssertionError):
    """A clause of SPEC.md not met. `max_abs_error` and `max_rel_error` are the largest
    excess of an error over its bound in the failing comparison, absolute and relative,
    `ratio` its worst error as a multiple of its bound (all None for a behavioural one).

    `level` is "MUST" or "SHOULD" (the clause's level unless the check overrides it);
    `known_difference` names a part of the bound that is a known difference rather than
    rounding (OpenAI's last-step noise in GOLD-3/GOLD-4), with its size; `exceptions` holds
    the single violations of a combined one (worst first), as an ExceptionGroup would."""

    def __init__(
        self,
        clause: str,
        device: str | None,
        dtype: str | None,
        what: str,
        detail: str,
        *,
        max_abs_error: float | None = None,
        max_rel_error: float | None = None,
        bound: float | None = None,
        ratio: float | None = None,
        level: str | None = None,
        known_difference: str | None = None,
        exceptions: Sequence[ClauseViolation] = (),
    ) -> None:
        where = "/".join(x for x in (device, dtype) if x)
        self.level = level or clauses.level(clause)
        tag = " (SHOULD)" if self.level == "SHOULD" else ""
        super().__init__(
            f"{clause} violated{tag}{' on ' + where if where else ''}: {what}: {detail}"
        )
        self.clause = clause
        self.device = device
        self.dtype = dtype
        self.what = what
        self.detail = detail
        self.max_abs_error = max_abs_error
        self.max_rel_error = max_rel_error
        self.bound = bound
        self.ratio = ratio
        self.known_difference = known_difference
        self.exceptions = tuple(exceptions)
        #: The figures of a numeric check, as plain text (`Measure.close`), for the block a
        #: failing clause prints (`conformance.harness.failures`); empty for a behavioural one.
        self.facts: dict[str, str] = dict(exceptions[0].facts) if exceptions else {}

    @classmethod
    def combine(cls, violations: Sequence[ClauseViolation]) -> ClauseViolation:
        """One violation for several of one test: the worst first (numeric before
        behavioural, then by ratio), its figures the largest, MUST if any is MUST."""
        unique = list({str(v): v for v in violations}.values())
        unique.sort(key=_severity, reverse=True)
        if len(unique) == 1:
            return unique[0]
        worst = unique[0]
        numeric = [v for v in unique if v.max_abs_error is not None]
        others = [f"[{i + 2}] {v.what}: {v.detail}" for i, v in enumerate(unique[1:])]
        return cls(
            worst.clause,
            worst.device,
            worst.dtype,
            worst.what,
            "\n  ".join(
                [
                    worst.detail,
                    f"[the worst of {len(unique)} failed checks of this test; the others:]",
                    *others,
                ]
            ),
            max_abs_error=max((v.max_abs_error for v in numeric), default=None),
            max_rel_error=max((v.max_rel_error for v in numeric), default=None),
            bound=worst.bound,
            ratio=max((v.ratio for v in numeric), default=None),
            level="MUST" if any(v.level == "MUST" for v in unique) else "SHOULD",
            known_difference=next((v.known_difference for v in unique if v.known_difference), None),
            exceptions=unique,
        )


def _severity(violation: ClauseViolation) -> tuple[int, int, float]:
    ratio = violation.ratio if violation.ratio is not None else -1.0
    return (violation.level == "MUST", violation.ratio is not None, ratio)
