"""Comparing what an implementation returned with the truth, clause by clause.

Every test gets a `Measure` (the `measure` fixture) bound to its clause, device and
dtype. Its checks raise `ClauseViolation`, an `AssertionError` whose message names the
clause, the device and dtype, what was checked, the worst error and its bound; passing
checks record their worst error too, so the report can say how close each clause came
to its bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis.errors import UnsatisfiedAssumption

from conformance.adapter import Adapter
from conformance.deviations import Deviation


class ClauseViolation(AssertionError):
    """A clause of SPEC.md not met. `max_abs_error` and `max_rel_error` are the largest
    excess of an error over its bound in the failing comparison, absolute and relative,
    `ratio` its worst error as a multiple of its bound (all None for a behavioural one)."""

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
    ) -> None:
        where = "/".join(x for x in (device, dtype) if x)
        super().__init__(f"{clause} violated{' on ' + where if where else ''}: {what}: {detail}")
        self.clause = clause
        self.device = device
        self.dtype = dtype
        self.what = what
        self.max_abs_error = max_abs_error
        self.max_rel_error = max_rel_error
        self.bound = bound
        self.ratio = ratio


@dataclass
class Worst:
    """The worst comparison seen: error / bound (`ratio`), and the error and bound there."""

    ratio: float
    error: float
    bound: float
    what: str

    def as_dict(self) -> dict[str, Any]:
        return {"ratio": _finite(self.ratio), "error": _finite(self.error), "bound": self.bound}


def _finite(value: float) -> float | str:
    return value if np.isfinite(value) else str(value)


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

    def _raise_unless_declared(self, violation: ClauseViolation) -> None:
        for deviation in self.declared:
            if deviation.explains(
                str(violation), violation.ratio, violation.max_rel_error, violation.max_abs_error
            ):
                self.deviations_seen.append((deviation, violation))
                return
        raise violation

    # -- recording ---------------------------------------------------------------------------

    def violation(
        self,
        what: str,
        detail: str,
        max_abs_error: float | None = None,
        max_rel_error: float | None = None,
        bound: float | None = None,
        ratio: float | None = None,
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
        )

    def fail(self, what: str, detail: str) -> None:
        raise self.violation(what, detail)

    def _record(self, ratio: float, error: float, bound: float, what: str) -> None:
        if self.worst is None or not ratio <= self.worst.ratio:
            self.worst = Worst(ratio, error, bound, what)

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
        numpy."""
        info = self.adapter.describe(array)
        if info is None:
            self.fail(
                what,
                f"returned {type(array).__module__}.{type(array).__qualname__} ({_short(array)}), "
                "expected an array of the implementation's framework",
            )
        dtypes = (dtype,) if isinstance(dtype, str) else None if dtype is None else tuple(dtype)
        problems = []
        if shape is not None and info.shape != tuple(shape):
            problems.append(f"shape {info.shape}, expected {tuple(shape)}")
        if dtypes is not None and info.dtype not in dtypes:
            problems.append(f"dtype {info.dtype}, expected {' or '.join(dtypes)}")
        if device is not None and not same_device(device, info.device):
            problems.append(f"device {info.device}, expected {device}")
        if problems:
            self.fail(what, f"returned a {info.type} with " + "; ".join(problems))
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
    ) -> None:
        """|actual - expected| <= bound elementwise (float64 arrays; bound 0 means exact).

        Non-finite values where the truth is finite count as infinitely wrong. A violation
        carries its worst error / bound and the largest excess of an error over its bound,
        absolute and relative to `scale` (default |expected|): the figures a numeric
        deviation declares."""
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), expected.shape)
        if actual.shape != expected.shape:
            self.fail(what, f"shape {actual.shape}, expected {expected.shape}")
        if actual.size == 0:
            return
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            error = np.abs(actual - expected)
            error = np.where(np.isfinite(actual) | ~np.isfinite(expected), error, np.inf)
            error = np.where(
                (actual == expected) | (np.isnan(actual) & np.isnan(expected)), 0.0, error
            )
            ratio = np.where(
                bound > 0, error / np.where(bound > 0, bound, 1.0), np.where(error > 0, np.inf, 0.0)
            )
        ratio = np.nan_to_num(ratio, nan=np.inf, posinf=np.inf)
        worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        self._record(float(ratio[worst]), float(error[worst]), float(bound[worst]), what)
        bad = ratio > 1.0
        if not bad.any():
            return
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
        detail = (
            f"worst error {error[worst]:.3g} at index {_index(worst)} exceeds its bound "
            f"{bound[worst]:.3g}{' (' + bound_text + ')' if bound_text else ''} by a factor "
            f"{ratio[worst]:.3g} (actual {actual[worst]!r}, expected {expected[worst]!r}); "
            f"{int(bad.sum())} of {bad.size} elements out of bound"
        )
        if nonfinite:
            detail += f"; {nonfinite} non-finite (NaN or inf) where the truth is finite"
        detail += f"; beyond the bound by up to {max_abs:.3g} ({max_rel:.3g} relative)"
        violation = self.violation(
            what,
            detail,
            max_abs_error=max_abs,
            max_rel_error=max_rel,
            bound=float(bound[worst]),
            ratio=float(ratio[worst]),
        )
        self._raise_unless_declared(violation)

    def exact(self, actual: np.ndarray, expected: np.ndarray | float, what: str) -> None:
        """Bitwise-equal values (compared in float64, which holds every dtype exactly)."""
        expected = np.broadcast_to(np.asarray(expected, dtype=np.float64), np.shape(actual))
        self.close(actual, expected, 0.0, what, bound_text="exact")

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
                self._raise_unless_declared(
                    self.violation(
                        what,
                        f"raised {type(exc).__name__}({message!r}), whose message does not name "
                        f"the argument {argument!r}",
                    )
                )
            else:
                self.ok(what)
        except Exception as exc:  # what the implementation raised is the finding
            self._raise_unless_declared(
                self.violation(
                    what,
                    f"raised {type(exc).__name__}: {exc} (expected ValueError or TypeError "
                    f"naming {argument!r})",
                )
            )
        else:
            self._raise_unless_declared(
                self.violation(what, "was accepted silently (expected ValueError or TypeError)")
            )

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the implementation; an exception it raises becomes a violation of this
        clause that names the call (the original is chained for the traceback)."""
        try:
            return fn(*args, **kwargs)
        except (ClauseViolation, UnsatisfiedAssumption):  # the latter: a config it cannot run
            raise
        except Exception as exc:
            raise self.violation(what, f"raised {type(exc).__name__}: {exc}") from exc


def same_device(requested: str, actual: str) -> bool:
    """ "cuda" matches "cuda:N" (the current device); "cuda:1" only "cuda:1"."""
    if requested == actual:
        return True
    kind, _, index = requested.partition(":")
    actual_kind, _, actual_index = actual.partition(":")
    if kind != actual_kind:
        return False
    if not index:
        return True
    return index == (actual_index or "0")


def _index(index: tuple[Any, ...]) -> str:
    return str(tuple(int(i) for i in index)) if len(index) != 1 else str(int(index[0]))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
