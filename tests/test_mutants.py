"""The conformance suite's power: it rejects every mutant on the clause the mutant breaks,
lets every equivalent variant through, and detects the relative errors SPEC.md promises.

The suite runs in-process (`tests/mutants/runner.py`), each mutant against only the tests
of the clauses it targets, on the dtypes where its bug shows; each variant against the
clauses it exercises, on every dtype it claims. The whole module takes about a minute and a
half on two cores. The kill matrix over the whole suite is `tests/mutants/KILL_MATRIX.md`
(`python -m tests.mutants.kill_matrix`); the sensitivity figures in SPEC.md come from
`python -m tests.mutants.sensitivity`.
"""

from __future__ import annotations

import json

import pytest

from conformance import spec
from tests.mutants import landing, runner, sensitivity
from tests.mutants.base import adapter_for, torch_adapter
from tests.mutants.equivalents import EQUIVALENTS, Variant
from tests.mutants.kill_matrix import OUT as KILL_MATRIX
from tests.mutants.registry import impl_option
from tests.mutants.zoo import MUTANTS, SURVIVORS, Mutant

AREAS = ("CFG", "SCHED", "TIME", "CIN", "SCAL", "INDEX", "STEP", "NOISE", "ADD", "GOLD")


def _claimed(scheduler: type, dtypes: tuple[str, ...] | None) -> list[str]:
    claims = adapter_for(scheduler, "probe").capabilities.dtypes
    return [d for d in (dtypes or claims) if d in claims]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_killed_on_its_clauses(mutant: Mutant) -> None:
    result = runner.run(
        impl_option(mutant.name), mutant.breaks, _claimed(mutant.scheduler, mutant.dtypes)
    )
    violated = result.violated()
    missed = [c for c in mutant.breaks if c not in violated]
    detail = {c: result.messages(c)[:1] or ["passed"] for c in mutant.breaks}
    assert not missed, f"mutant {mutant.name} ({mutant.bug}) survives {missed}; suite said {detail}"


def test_each_mutant_lands_on_its_own_clauses_and_no_other() -> None:
    """One bug, one clause (SPEC.md, "Verdicts"): against the whole suite, each mutant
    violates exactly the clauses it declares (its own and their golden counterparts), and
    nothing fails without a clause violation. From the record of `python -m
    tests.mutants.landing` (25 minutes: too long for this module), which must cover the zoo
    as it is."""
    recorded = json.loads(landing.DATA.read_text(encoding="utf-8"))["mutants"]
    stale = [m.name for m in MUTANTS if m.name not in recorded]
    assert not stale, f"landing.json lacks {stale}: run python -m tests.mutants.landing"
    wrong = {}
    for m in MUTANTS:
        row = recorded[m.name]
        if row["breaks"] != list(m.breaks) or row["dtypes"] != landing.dtypes_of(m):
            wrong[m.name] = "declared clauses or dtypes changed since measured: re-measure"
            continue
        violated, failed = set(row["violated"]), set(row["failed"])
        if violated != set(m.breaks) or failed != violated:
            wrong[m.name] = {
                "declared": sorted(m.breaks),
                "violated": sorted(violated),
                "failed without a violation": sorted(failed - violated),
                "messages": {c: row["messages"].get(c, "")[:200] for c in failed ^ set(m.breaks)},
            }
    assert not wrong, f"mutants off their clauses: {json.dumps(wrong, indent=1)}"


@pytest.mark.parametrize(
    "survivor",
    [pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=m.gap)) for m in SURVIVORS],
    ids=[m.name for m in SURVIVORS],
)
def test_survivor_is_a_known_gap(survivor: Mutant) -> None:
    """A gap of the suite, held open: XPASS (a failure) once the suite catches the bug."""
    result = runner.run(impl_option(survivor.name), survivor.breaks, ["float64", "float32"])
    assert result.violated(), f"{survivor.name} survives {survivor.breaks}: {survivor.gap}"


@pytest.mark.parametrize("variant", EQUIVALENTS, ids=[v.name for v in EQUIVALENTS])
def test_equivalent_variant_passes(variant: Variant) -> None:
    result = runner.run(
        impl_option(variant.name), variant.clauses, _claimed(variant.scheduler, None)
    )
    failed = {c: result.messages(c)[:1] for c in result.failed()}
    assert not failed, f"correct variant {variant.name} ({variant.what}) rejected: {failed}"
    unchecked = [c for c in variant.clauses if c not in result.passed()]
    assert not unchecked, f"variant {variant.name}: {unchecked} never ran (all skipped)"


#: SPEC.md, "Tight enough": a relative error of 1e-5 in c_out, c_skip or the noise scale
#: fails on float32, one of 1e-11 on float64; each must be caught by these clauses (the
#: sensitivity figures show the margin: about 1e-6 and 1e-15 on the clauses below).
THRESHOLDS = {"float32": 1e-5, "float64": 1e-11}
DETECTING = {"c_out": ("SCAL-1", "STEP-1"), "c_skip": ("SCAL-1", "STEP-1"), "noise": ("STEP-3",)}


@pytest.mark.parametrize("dtype", sorted(THRESHOLDS))
@pytest.mark.parametrize("quantity", sorted(DETECTING))
def test_required_relative_error_detected(quantity: str, dtype: str) -> None:
    delta = THRESHOLDS[dtype]
    cls = sensitivity.perturbed(quantity, delta)
    clauses = DETECTING[quantity]
    result = runner.run_adapter(torch_adapter(cls, f"{quantity} + {delta:g}"), clauses, [dtype])
    violated = result.violated()
    missed = [c for c in clauses if dtype not in violated.get(c, set())]
    assert not missed, f"a relative error {delta:g} of {quantity} on {dtype} passes {missed}"


def test_zoo_covers_every_area_of_the_spec() -> None:
    clauses = spec.clauses()
    unknown = {m.name: c for m in MUTANTS for c in m.breaks if c not in clauses}
    assert not unknown, f"mutants target clauses SPEC.md does not define: {unknown}"
    variants = [v for v in EQUIVALENTS if not v.name.endswith("_base")]
    assert len(MUTANTS) >= 25 and len(variants) >= 5
    targeted = {spec.area(c) for m in MUTANTS for c in m.breaks}
    assert set(AREAS) <= targeted, f"no mutant targets {sorted(set(AREAS) - targeted)}"


def test_kill_matrix_lists_the_zoo() -> None:
    """KILL_MATRIX.md is generated; it must have been regenerated since the zoo changed."""
    text = KILL_MATRIX.read_text(encoding="utf-8")
    stale = [e.name for e in (*MUTANTS, *SURVIVORS, *EQUIVALENTS) if f"| {e.name} |" not in text]
    assert not stale, f"KILL_MATRIX.md lacks {stale}: run python -m tests.mutants.kill_matrix"


def test_spec_carries_the_sensitivity_figures() -> None:
    figures = json.loads(sensitivity.DATA.read_text(encoding="utf-8"))
    text = spec.spec_text()
    missing = []
    for clause in figures:
        block = text.split(f"### {clause}:", 1)
        if len(block) == 2 and sensitivity.MARK not in block[1].split("\n### ", 1)[0]:
            missing.append(clause)
    assert not missing, f"SPEC.md lacks the sensitivity figures of {missing}"


def test_sensitivity_writer_edits_only_its_paragraphs(tmp_path, monkeypatch) -> None:
    """write_spec adds one paragraph per clause with figures, replaces it on a second call,
    and leaves every other line of SPEC.md as it was."""
    copy = tmp_path / "SPEC.md"
    original = spec.spec_text()
    copy.write_text(original, encoding="utf-8")
    monkeypatch.setattr(sensitivity, "SPEC", copy)
    figures = {"STEP-1": {"c_out": {"float32": 1.2e-6}}, "TIME-2": {"model_time": {"-": 3e-16}}}
    sensitivity.write_spec(figures)
    once = copy.read_text(encoding="utf-8")
    figures["STEP-1"]["c_out"]["float32"] = 2.5e-6
    sensitivity.write_spec(figures)
    twice = copy.read_text(encoding="utf-8")

    def without_figures(text: str) -> list[str]:
        lines, skipping = [], False
        for line in text.split("\n"):
            skipping = line.startswith(sensitivity.MARK) or (skipping and line != "")
            if not skipping:
                lines.append(line)
        return [line for i, line in enumerate(lines) if line or (i and lines[i - 1])]

    assert without_figures(twice) == without_figures(original)
    step1 = twice.split("### STEP-1:", 1)[1].split("\n### ", 1)[0]
    assert step1.count(sensitivity.MARK) == 1 and "c_out f32 2.5e-6." in step1
    assert once.count(sensitivity.MARK) == twice.count(sensitivity.MARK)
