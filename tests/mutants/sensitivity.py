"""Sensitivity of the suite's numeric clauses: for each clause, quantity and dtype, the
smallest relative perturbation of the quantity that the clause detects, found by bisection,
and written into conformance/SPEC.md next to the clause.

    python -m tests.mutants.sensitivity                  # measure all (about 30 minutes)
    python -m tests.mutants.sensitivity --quantity c_out --clause STEP-1
    python -m tests.mutants.sensitivity --write-spec     # SPEC.md from sensitivity.json

The perturbed implementation is `TorchBase` (the torch scheduler) with one quantity q
replaced by q + delta q everywhere it is computed (`Perturbed`):

    c_skip, c_out  the boundary scalings (table and `get_scalings_for_boundary_condition`)
                   and EDM's (`get_scalings`)
    noise          the noise scale s_noise sqrt(tau^2 - eps^2)
    c_in           the input scaling of `scale_model_input`
    schedule       the evaluation sigmas (everything derived from them follows; the appended
                   sigma_min stays exact)
    model_time     the model times (`timesteps`, `sigma_to_t`)

Bisection is on log10(delta) in [-17, 0], 8 probes (a factor 1.17 at the end); each probe
runs the clause's tests on one dtype with the suite's derandomized examples, so the figure is
what the suite as configured for CI detects. It assumes detection is monotone in delta. The
figure given is the smallest delta probed that was detected; "> 1" means a doubling of the
quantity went unseen, which for a quantity that does not enter the clause is expected.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from numpy.typing import ArrayLike

from tests.mutants import runner
from tests.mutants.base import Array, TorchBase, torch_adapter

SPEC = runner.SUITE / "SPEC.md"
DATA = Path(__file__).resolve().parent / "sensitivity.json"
DTYPES = ("float64", "float32", "float16", "bfloat16")
LOW, HIGH, PROBES = -17.0, 0.0, 8

#: The numeric clauses whose truth each quantity enters. Each clause isolates its quantity
#: (SPEC.md, "Verdicts"): the step, noise, model-input and add_noise clauses take sigma from
#: the implementation's own schedule, the re-noise clauses compare two draws (the denoised
#: value cancels), GOLD-4 feeds the network the truth; so a quantity is probed only where
#: it is the clause's own. GOLD-3 and GOLD-4 defer a departure of the step (c_skip, c_out, the
#: noise scale) to the STEP clause it fails, so those are not probed there.
CLAUSES: dict[str, list[str]] = {
    "c_skip": ["SCAL-1", "SCAL-3", "STEP-1", "GOLD-2"],
    "c_out": ["SCAL-1", "SCAL-3", "STEP-1", "GOLD-2"],
    "noise": ["STEP-3"],
    "c_in": ["CIN-1", "GOLD-3"],
    "schedule": ["SCHED-1", "SCHED-2", "TIME-1", "GOLD-1"],
    "model_time": ["TIME-1", "TIME-2", "GOLD-2"],
}
LABELS = {
    "c_skip": "c_skip",
    "c_out": "c_out",
    "noise": "noise scale",
    "c_in": "c_in",
    "schedule": "sigmas",
    "model_time": "model times",
}
SHORT = {"float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16", "-": "any"}
MARK = "Sensitivity ("


class Perturbed(TorchBase):
    """`TorchBase` with one quantity q replaced by q + delta q (module docstring)."""

    quantity = ""
    delta = 0.0

    def _bump(self, value: Any, name: str) -> Any:
        return value + self.delta * value if self.quantity == name else value

    def boundary(self, sigma: Any) -> tuple[Any, Any]:
        c_skip, c_out = super().boundary(sigma)
        return self._bump(c_skip, "c_skip"), self._bump(c_out, "c_out")

    def edm(self, sigma: Any) -> tuple[Any, Any]:
        c_skip, c_out = super().edm(sigma)
        return self._bump(c_skip, "c_skip"), self._bump(c_out, "c_out")

    def c_in(self, sigma: Array) -> Array:
        return self._bump(super().c_in(sigma), "c_in")

    def noise(self, sigma: Array, sigma_next: Array) -> Array:
        return self._bump(super().noise(sigma, sigma_next), "noise")

    def _sigmas_at(self, ramp_indices: ArrayLike) -> Array:
        return self._bump(super()._sigmas_at(ramp_indices), "schedule")

    def sigma_to_t(self, sigmas: Any) -> Any:
        return self._bump(super().sigma_to_t(sigmas), "model_time")


def perturbed(quantity: str, delta: float) -> type[Perturbed]:
    """A `Perturbed` class for one quantity and delta."""
    if quantity not in CLAUSES:
        raise ValueError(f"`quantity` must be one of {sorted(CLAUSES)}, got {quantity!r}")
    return type(f"Perturbed_{quantity}", (Perturbed,), {"quantity": quantity, "delta": delta})


def detects(quantity: str, delta: float, clauses: Iterable[str], dtype: str | None) -> set[str]:
    """The clauses among `clauses` that fail on `dtype` (None: every dtype) with the quantity
    perturbed by delta."""
    cls = perturbed(quantity, delta)
    adapter = torch_adapter(cls, f"{quantity} x (1 + {delta:.3g})", "perturbed")
    result = runner.run_adapter(adapter, clauses, None if dtype is None else [dtype])
    return set(result.violated())


def cells(quantity: str, clauses: Iterable[str]) -> list[tuple[str, str]]:
    """The (clause, dtype) cells the clauses' tests run on ("-": dtype-free), found by one
    run of the perturbed implementation at delta = 0."""
    cls = perturbed(quantity, 0.0)
    result = runner.run_adapter(torch_adapter(cls, "unperturbed"), clauses, DTYPES)
    failed = result.failed()
    if failed:
        raise RuntimeError(f"the unperturbed implementation fails {sorted(failed)}")
    return [(cell["clause"], cell["dtype"]) for cell in result.cells if cell["status"] == "passed"]


def bisect(quantity: str, clause: str, dtype: str) -> float | None:
    """The smallest delta found detected by `clause` on `dtype` (None: not even at 10^HIGH)."""
    run_dtype = None if dtype == "-" else dtype
    if clause not in detects(quantity, 10.0**HIGH, [clause], run_dtype):
        return None
    lo, hi = LOW, HIGH  # lo: assumed unseen, hi: seen
    for _ in range(PROBES):
        mid = (lo + hi) / 2
        if clause in detects(quantity, 10.0**mid, [clause], run_dtype):
            hi = mid
        else:
            lo = mid
    return float(f"{10.0**hi:.2g}")


def measure(quantities: Iterable[str], only: set[str] | None) -> dict[str, Any]:
    figures: dict[str, Any] = json.loads(DATA.read_text()) if DATA.exists() else {}
    for quantity in quantities:
        clauses = [c for c in CLAUSES[quantity] if only is None or c in only]
        if not clauses:
            continue
        for clause, dtype in cells(quantity, clauses):
            start = time.perf_counter()
            value = bisect(quantity, clause, dtype)
            figures.setdefault(clause, {}).setdefault(quantity, {})[dtype] = value
            print(
                f"{clause:8s} {quantity:10s} {dtype:8s} "
                f"{figure(value):>8s}  "
                f"({time.perf_counter() - start:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
            DATA.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    return figures


def figure(value: float | None) -> str:
    """1.2e-6 style, or "> 1" for a perturbation not detected at all."""
    if value is None:
        return "> 1"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _dtype_order(dtype: str) -> int:
    return DTYPES.index(dtype) if dtype in DTYPES else -1


def sentence(per_quantity: dict[str, dict[str, float | None]]) -> str:
    """The paragraph written under a clause of SPEC.md."""
    parts = []
    for quantity in CLAUSES:
        if quantity not in per_quantity:
            continue
        values = per_quantity[quantity]
        shown = ", ".join(
            f"{SHORT.get(d, d)} {figure(values[d])}" for d in sorted(values, key=_dtype_order)
        )
        parts.append(f"{LABELS[quantity]} {shown}")
    return (
        f"{MARK}smallest relative error of a quantity that this clause detects, by bisection, "
        f"`tests/mutants/sensitivity.py`): " + "; ".join(parts) + "."
    )


def write_spec(figures: dict[str, Any]) -> list[str]:
    """Put each clause's sentence at the end of its text in SPEC.md, replacing an older one;
    nothing else changes. Reads the file right before writing it, so that concurrent edits of
    other parts are kept."""
    text = SPEC.read_text(encoding="utf-8")
    lines = text.split("\n")
    headings = [i for i, line in enumerate(lines) if re.match(r"^#{1,6} ", line)] + [len(lines)]
    out = lines[: headings[0]]
    changed = []
    for start, stop in zip(headings, headings[1:], strict=False):
        match = re.match(r"^###\s+([A-Z]+-\d+):", lines[start])
        body = lines[start + 1 : stop]
        if match and match.group(1) in figures:
            edited = _with_sentence(body, sentence(figures[match.group(1)]))
            if edited != body:
                changed.append(match.group(1))
            body = edited
        out += [lines[start], *body]
    new = "\n".join(out)
    if new != text:
        SPEC.write_text(new, encoding="utf-8")
    return changed


def _with_sentence(body: list[str], text: str) -> list[str]:
    """A clause's lines with its sensitivity paragraph (wrapped like the rest) at the end."""
    end = len(body)
    while end and body[end - 1] == "":
        end -= 1
    content, trailing = body[:end], body[end:]
    kept: list[str] = []
    skipping = False
    for line in content:
        if line.startswith(MARK):
            skipping = True
            if kept and kept[-1] == "":
                kept.pop()
            continue
        if skipping and line != "":
            continue
        skipping = False
        kept.append(line)
    return [*kept, "", *textwrap.wrap(text, width=92), *(trailing or [""])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quantity", action="append", choices=sorted(CLAUSES))
    parser.add_argument("--clause", action="append", help="only these clauses (repeatable)")
    parser.add_argument("--write-spec", action="store_true", help="only write SPEC.md")
    args = parser.parse_args(argv)
    if not args.write_spec:
        measure(args.quantity or list(CLAUSES), set(args.clause) if args.clause else None)
    figures = json.loads(DATA.read_text())
    changed = write_spec(figures)
    print(
        f"SPEC.md: figures under {', '.join(changed) or 'no clause (unchanged)'}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
