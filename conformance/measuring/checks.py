"""Comparing what an implementation returned with the truth, clause by clause.

Every test gets a `Measure` (the `measure` fixture) bound to its clause, device and
dtype. A check that fails makes a `ClauseViolation` (`conformance.protocol.violation`), an
`AssertionError` whose message names the clause, the device and dtype, what was checked, the
worst error and its bound, and the input where it occurred; passing checks record their worst
error too (`Worst`), so the report can say how close each clause came to its bound.

Worst, not first: a numeric check that fails is *collected*, not raised, so that the test
goes on with its other checks and hypothesis with its other examples (the pinned ones
included); `collect_violations`, which the plugin puts around every clause test, raises them
all at the end, as one `ClauseViolation` whose `exceptions` are the single ones, worst
first. A check that cannot go on (an output that is no array, a call that raised, a
behavioural `fail`) still raises at once, carrying what was collected before it.

Each violation has a normative `level` (RFC 2119): the clause's, from SPEC.md
(`clauses.level`), unless the check says otherwise (a bit-exact requirement inside a clause
whose values are MUST, say).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis.errors import UnsatisfiedAssumption

from conformance.protocol import deviations
from conformance.protocol.adapter import Adapter
from conformance.protocol.deviations import Deviation
from conformance.protocol.values import same_device
from conformance.protocol.violation import ClauseViolation


@dataclass(frozen=True)
class Worst:
    """The worst comparison of a test: error / bound (`ratio`, 1 = at the bound), the error
    and the bound there, what was compared, and the part of the bound that is a known
    difference, not rounding (`known_difference`, for example OpenAI's own last-step noise),
    when the clause gives one. The one record of these figures: `Measure` keeps it, the
    harness's outcome records carry it (`conformance.harness.records.Outcome.worst`)."""

    ratio: float
    error: float
    bound: float
    what: str = ""
    known_difference: str | None = None


class Measure:
    """The checks of one test, for one clause, on one device and dtype."""

    def __init__(
        self,
        adapter: Adapter,
        clause: str,
        device: str | None,
        dtype: str | None,
        declared: Sequence[Deviation] = (),
    ) -> None:
        self.adapter = adapter
        self.clause = clause
        self.device = device
        self.dtype = dtype
        self.declared = tuple(declared)
        self.worst: Worst | None = None
        self.noise_layers: set[str] = set()
        #: Violations a declared deviation explains: recorded, not raised, so that the test
        #: goes on checking everything else (and fails on anything the deviation does not cover).
        self.deviations_seen: list[tuple[Deviation, ClauseViolation]] = []
        #: Violations no declared deviation explains, collected until the test ends.
        self.violations: list[ClauseViolation] = []

    def _record_violation(self, violation: ClauseViolation) -> None:
        """Record a violation: as a deviation seen if one declared explains it, else as a
        violation to raise when the test ends (`raise_collected`)."""
        deviation = deviations.covering(self.declared, violation)
        if deviation is not None:
            if not any(str(v) == str(violation) for _, v in self.deviations_seen):
                self.deviations_seen.append((deviation, violation))
            return
        if not any(str(v) == str(violation) for v in self.violations):
            self.violations.append(violation)

    def deviations_observed(self) -> list[Deviation]:
        """The declared deviations this test observed (each once, in declaration order)."""
        seen = {id(d) for d, _ in self.deviations_seen}
        return [d for d in self.declared if id(d) in seen]

    def deviations_not_observed(self) -> list[Deviation]:
        """The declared deviations of this clause, device and dtype that the test did not
        observe (a stale declaration, when the test ran to its end)."""
        seen = {id(d) for d, _ in self.deviations_seen}
        return [d for d in self.declared if id(d) not in seen]

    def absorb(self, exc: BaseException) -> bool:
        """Take the clause violations out of an exception a test raised (a group from
        hypothesis included); True if it held nothing else."""
        if isinstance(exc, ClauseViolation):
            for single in exc.exceptions or (exc,):
                if not any(str(v) == str(single) for v in self.violations):
                    self.violations.append(single)
            return True
        inner = getattr(exc, "exceptions", None)
        if inner:
            return all([self.absorb(e) for e in inner])
        return False

    def raise_collected(self) -> None:
        """Raise what was collected, as one violation (nothing if nothing was)."""
        __tracebackhide__ = True
        if self.violations:
            raise ClauseViolation.combine(self.violations)

    # -- recording ---------------------------------------------------------------------------

    def violation(
        self,
        what: str,
        detail: str,
        max_abs_error: float | None = None,
        max_rel_error: float | None = None,
        bound: float | None = None,
        ratio: float | None = None,
        *,
        level: str | None = None,
        known_difference: str | None = None,
    ) -> ClauseViolation:
        return ClauseViolation(
            self.clause,
            self.device,
            self.dtype,
            what,
            detail,
            max_abs_error=max_abs_error,
            max_rel_error=max_rel_error,
            bound=bound,
            ratio=ratio,
            level=level,
            known_difference=known_difference,
        )

    def fail(self, what: str, detail: str, *, level: str | None = None) -> None:
        """A behavioural violation after which the test cannot go on: raised at once, with
        everything collected before it (the plugin matches it against the declared
        deviations, `match`)."""
        __tracebackhide__ = True
        raise ClauseViolation.combine([*self.violations, self.violation(what, detail, level=level)])

    def note(self, what: str, detail: str, *, level: str | None = None) -> None:
        """A behavioural violation after which the test goes on (collected)."""
        self._record_violation(self.violation(what, detail, level=level))

    def _record(
        self, ratio: float, error: float, bound: float, what: str, known: str | None = None
    ) -> None:
        if self.worst is None or not ratio <= self.worst.ratio:
            self.worst = Worst(ratio, error, bound, what, known)

    def uses_noise_layer(self, layer: str) -> None:
        """Note which noise layer the test relied on (injected, reproduced, statistical)."""
        self.noise_layers.add(layer)

    # -- what came back ----------------------------------------------------------------------

    def output(
        self,
        array: Any,
        *,
        what: str,
        shape: tuple[int, ...] | None,
        dtype: str | Iterable[str] | None,
        device: str | None,
    ) -> np.ndarray:
        """Check that `array` is an array of the implementation's framework with this shape,
        dtype (or one of these dtypes) and device (None: any of each), and return it as float64
        numpy.

        Values before dtypes: an array of the wrong kind or shape stops the test (its values
        cannot be compared), but a wrong dtype or device is collected and the values are
        returned, so that the test compares them too and reports both, values first."""
        __tracebackhide__ = True
        info = self.adapter.describe(array)
        if info is None:
            self.fail(
                what,
                f"returned {type(array).__module__}.{type(array).__qualname__} ({_short(array)}), "
                "expected an array of the implementation's framework",
            )
        if shape is not None and info.shape != tuple(shape):
            self.fail(what, f"returned a {info.type} with shape {info.shape}, expected {shape}")
        dtypes = (dtype,) if isinstance(dtype, str) else None if dtype is None else tuple(dtype)
        problems = []
        if dtypes is not None and info.dtype not in dtypes:
            problems.append(f"dtype {info.dtype}, expected {' or '.join(dtypes)}")
        if device is not None and not same_device(device, info.device):
            problems.append(f"device {info.device}, expected {device}")
        if problems:
            self.note(what, f"returned a {info.type} with " + "; ".join(problems))
        return self.adapter.to_numpy(array)

    # -- numeric comparisons -----------------------------------------------------------------

    def close(
        self,
        actual: np.ndarray,
        expected: np.ndarray,
        bound: np.ndarray | float,
        what: str,
        *,
        bound_text: str = "",
        scale: np.ndarray | float | None = None,
        where: str = "",
        diagnose: Callable[[tuple[int, ...], np.ndarray], str] | None = None,
        known: np.ndarray | float | None = None,
        known_text: str = "",
        level: str | None = None,
    ) -> bool:
        """|actual - expected| <= bound elementwise (float64 arrays; bound 0 means exact).
        Returns whether it held.

        Non-finite values where the truth is finite count as infinitely wrong, and a NaN
        never compares equal (two NaN outputs of one implementation are not alike). A violation
        carries its worst error / bound and the largest excess of an error over its bound,
        absolute and relative to `scale` (default |expected|): the figures a numeric
        deviation declares. `where` names the input (config, position); `diagnose(worst,
        bad)` adds what the failure is (a fitted quantity, the operation that made a NaN);
        `known` is the part of `bound` that is a known difference, not rounding (`known_text`
        says which), so that the message and the report say so."""
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), expected.shape)
        if actual.shape != expected.shape:
            self.fail(what, f"shape {actual.shape}, expected {expected.shape}")
        if actual.size == 0:
            return True
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            error = np.abs(actual - expected)
            error = np.where(np.isfinite(actual) | ~np.isfinite(expected), error, np.inf)
            error = np.where(actual == expected, 0.0, error)  # NaN is never equal
            ratio = np.where(
                bound > 0,
                error / np.where(bound > 0, bound, 1.0),
                np.where(error == 0, 0.0, np.inf),
            )
        ratio = np.nan_to_num(ratio, nan=np.inf, posinf=np.inf)
        worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        known_note = None
        if known is not None:
            part = np.broadcast_to(np.asarray(known, dtype=np.float64), expected.shape)
            known_note = (
                f"the bound includes {known_text or 'a known difference'}: up to "
                f"{float(np.max(part)):.3g} ({float(part[worst]):.3g} of the bound "
                f"{float(bound[worst]):.3g} at the worst element)"
            )
        self._record(
            float(ratio[worst]), float(error[worst]), float(bound[worst]), what, known_note
        )
        bad = ratio > 1.0
        if not bad.any():
            return True
        excess = np.maximum(error - bound, 0.0)  # what the bound does not account for
        max_abs = float(np.max(excess))
        magnitude = (
            np.abs(expected)
            if scale is None
            else np.broadcast_to(np.asarray(scale, dtype=np.float64), expected.shape)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.where(excess == 0, 0.0, excess / magnitude)
        max_rel = float(np.max(np.nan_to_num(relative, nan=np.inf, posinf=np.inf)))
        nonfinite = int(np.count_nonzero(~np.isfinite(actual) & np.isfinite(expected)))
        # Where the truth is itself an output of the implementation (a clause comparing two of
        # its runs), both can be NaN: not alike, and said to be non-finite.
        both = int(np.count_nonzero(~np.isfinite(actual) & ~np.isfinite(expected) & bad))
        nonfinite_parts = [
            (count, f"non-finite (NaN or inf) {where_}")
            for count, where_ in ((nonfinite, "where the truth is finite"), (both, "in both"))
            if count
        ]
        nonfinite_text = "; ".join(f"{count} {text}" for count, text in nonfinite_parts)
        detail = (
            f"worst error {error[worst]:.3g} at index {_index(worst)} exceeds its bound "
            f"{bound[worst]:.3g}{' (' + bound_text + ')' if bound_text else ''} by a factor "
            f"{ratio[worst]:.3g} (actual {_plain(actual[worst])}, expected "
            f"{_plain(expected[worst])}); "
            f"{int(bad.sum())} of {bad.size} elements out of bound"
        )
        if nonfinite_text:
            detail += f"; {nonfinite_text}"
        diagnosis = diagnose(tuple(int(i) for i in worst), bad) if diagnose is not None else ""
        if diagnosis:
            detail += f"; diagnosis: {diagnosis}"
        detail += f"; beyond the bound by up to {max_abs:.3g} ({max_rel:.3g} relative)"
        if known_note:
            detail += f"; {known_note}"
        if where:
            detail += f"; input: index {_index(worst)} of {where}"
        violation = self.violation(
            what,
            detail,
            max_abs_error=max_abs,
            max_rel_error=max_rel,
            bound=float(bound[worst]),
            ratio=float(ratio[worst]),
            level=level,
            known_difference=known_note,
        )
        violation.facts = {
            "index": _index(worst),
            "expected": _plain(expected[worst]),
            "actual": _plain(actual[worst]),
            "error": f"{error[worst]:.3g}",
            "bound": f"{bound[worst]:.3g}" + (f" ({bound_text})" if bound_text else ""),
            "factor": f"{ratio[worst]:.3g}",
            "out_of_bound": f"{int(bad.sum())} of {bad.size} elements"
            + "".join(f", {count} of them {text}" for count, text in nonfinite_parts),
            "diagnosis": diagnosis or "",
            "input": f"index {_index(worst)} of {where}" if where else "",
            "known": known_note or "",
        }
        self._record_violation(violation)
        return False

    def exact(
        self,
        actual: np.ndarray,
        expected: np.ndarray | float,
        what: str,
        *,
        where: str = "",
        level: str | None = None,
    ) -> bool:
        """Bitwise-equal values (compared in float64, which holds every dtype exactly)."""
        expected = np.broadcast_to(np.asarray(expected, dtype=np.float64), np.shape(actual))
        return self.close(actual, expected, 0.0, what, bound_text="exact", where=where, level=level)

    def ok(self, what: str) -> None:
        """Record a check with no numeric error that passed (behavioural clauses)."""
        self._record(0.0, 0.0, 0.0, what)

    # -- behaviour ---------------------------------------------------------------------------

    @contextmanager
    def rejects(self, argument: str, value: object, *, also: Iterable[str] = ()) -> Any:
        """The block must raise ValueError or TypeError whose message names `argument`
        (or one of `also`); anything else violates the clause, naming what happened."""
        what = f"{argument}={value!r}"
        names = (argument, *also)
        try:
            yield
        except (ValueError, TypeError) as exc:
            message = str(exc)
            if not any(re.search(rf"\b{re.escape(n)}\b", message) for n in names):
                self._record_violation(
                    self.violation(
                        what,
                        f"raised {type(exc).__name__}({message!r}), whose message does not name "
                        f"the argument {argument!r}",
                    )
                )
            else:
                self.ok(what)
        except Exception as exc:  # what the implementation raised is the finding
            self._record_violation(
                self.violation(
                    what,
                    f"raised {type(exc).__name__}: {exc} (expected ValueError or TypeError "
                    f"naming {argument!r})",
                )
            )
        else:
            self._record_violation(
                self.violation(what, "was accepted silently (expected ValueError or TypeError)")
            )

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the implementation; an exception it raises becomes a violation of this
        clause that names the call (the original is chained for the traceback)."""
        __tracebackhide__ = True
        try:
            return fn(*args, **kwargs)
        except (ClauseViolation, UnsatisfiedAssumption):  # the latter: a config it cannot run
            raise
        except Exception as exc:
            violation = self.violation(what, f"raised {type(exc).__name__}: {exc}")
            raise ClauseViolation.combine([*self.violations, violation]) from exc


@contextmanager
def collect_violations(measure: Measure) -> Iterator[None]:
    """Around one run of a test of the suite (all its hypothesis examples; the plugin puts
    it around every clause test): every check runs, every example (the pinned ones too) is
    tried, and what failed is raised once at the end, as one violation listing all, the worst
    first (SPEC.md, "Running")."""
    __tracebackhide__ = True
    try:
        yield
    except BaseException as exc:
        if not measure.absorb(exc):
            raise
    measure.raise_collected()


def _index(index: tuple[Any, ...]) -> str:
    return str(tuple(int(i) for i in index)) if len(index) != 1 else str(int(index[0]))


def _plain(value: Any) -> str:
    """A number as a person reads it: the shortest repr of the float64 (`0.002`, `inf`),
    never `np.float64(0.002)`."""
    return repr(float(value))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
