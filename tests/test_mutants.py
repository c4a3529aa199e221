"""The conformance suite's power: it rejects every mutant on the clause the mutant breaks,
lets every equivalent variant through, and detects the relative errors SPEC.md promises.

The suite runs in-process (`tests/mutants/runner.py`), each mutant against only the tests
of the clauses it targets, on the dtypes where its bug shows; each variant against the
clauses it exercises, on every dtype it claims. Against the whole suite, each mutant's
landing comes from the record of `python -m tests.mutants.landing` (measured on today's
code: its fingerprint), and a rotating slice of the zoo is re-measured live each run, on
float32 too (`tests/mutants/audit.py`). The whole module takes about two and a half minutes
on two cores. The kill matrix over the whole suite is `tests/mutants/KILL_MATRIX.md`
(`python -m tests.mutants.kill_matrix`); the sensitivity figures in SPEC.md come from
`python -m tests.mutants.sensitivity`. `tests/test_mutants_checks.py` plants a bad
measurement for each check made here.
"""

from __future__ import annotations

import json

import pytest

from conformance.protocol import clauses
from tests.mutants import audit, cached, kill_matrix, landing, runner, sensitivity
from tests.mutants.base import adapter_for, torch_adapter
from tests.mutants.equivalents import EQUIVALENTS, Variant
from tests.mutants.kill_matrix import OUT as KILL_MATRIX
from tests.mutants.registry import impl_option
from tests.mutants.zoo import MUTANTS, SURVIVORS, Mutant

F32 = "float32"
AREAS = ("CFG", "SCHED", "TIME", "CIN", "SCAL", "INDEX", "STEP", "NOISE", "ADD", "GOLD")


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_killed_on_its_clauses(mutant: Mutant) -> None:
    result = cached.own_clauses_run(mutant.name)
    violated = result.violated()
    missed = [c for c in mutant.breaks if c not in violated]
    detail = {c: result.messages(c)[:1] or ["passed"] for c in mutant.breaks}
    assert not missed, f"mutant {mutant.name} ({mutant.bug}) survives {missed}; suite said {detail}"


def _record() -> dict:
    return json.loads(landing.DATA.read_text(encoding="utf-8"))


def _claims(mutant: Mutant, dtype: str) -> bool:
    return dtype in adapter_for(mutant.scheduler, "probe").capabilities.dtypes


def test_landing_record_is_fresh() -> None:
    """The landing record was measured on the code that decides verdicts today: its
    fingerprint (the suite's sources, the reference modules they import, the zoo, the golden
    files, SPEC.md's clauses, the hypothesis profile) is today's."""
    stale = audit.staleness(_record(), landing.current_fingerprint())
    assert not stale, stale


def test_each_mutant_lands_on_its_own_clauses_and_no_other() -> None:
    """One bug, one clause (SPEC.md, "Verdicts"): against the whole suite, each mutant
    violates exactly the clauses it declares (its own and their golden counterparts), and
    nothing fails without a clause violation. From the record of `python -m
    tests.mutants.landing`, measured on today's code (test_landing_record_is_fresh) and
    re-measured a slice at a time, live (test_live_sample_lands_exactly)."""
    recorded = _record()["mutants"]
    stale = [m.name for m in MUTANTS if m.name not in recorded]
    assert not stale, f"landing.json lacks {stale}: run {landing.REFRESH}"
    wrong = {}
    for m in MUTANTS:
        row = recorded[m.name]
        if row["breaks"] != list(m.breaks) or row["dtypes"] != landing.dtypes_of(m):
            wrong[m.name] = f"declared clauses or dtypes changed since measured: {landing.REFRESH}"
        elif problem := audit.landing_problems(m, row):
            wrong[m.name] = problem
    assert not wrong, f"mutants off their clauses: {json.dumps(wrong, indent=1)}"


def test_live_sample_lands_exactly() -> None:
    """Today's slice of the zoo (`audit.sample`: by UTC date, every mutant within a few
    days; CM_MUTANT_SAMPLE=all runs them all) against the whole suite, live, on its own
    dtypes and float32: exactly its declared clauses on its own dtypes, no other clause on
    float32, and the clauses the record says."""
    record = _record()["mutants"]
    which, chosen = audit.sample(MUTANTS)
    assert chosen, f"the live sample ({which}) is empty"
    wrong = {}
    for m in chosen:
        own = landing.dtypes_of(m)
        extra = [F32] if F32 not in own and _claims(m, F32) else []
        row = landing.measure(m, [*own, *extra])
        live = {c for c, d in row["violated"].items() if {*own, "-"} & set(d)}
        if problem := audit.landing_problems(m, row, own):
            wrong[m.name] = problem
        elif m.name in record and live != set(record[m.name]["violated"]):
            wrong[m.name] = {"live": sorted(live), "recorded": sorted(record[m.name]["violated"])}
    assert not wrong, f"live sample ({which}) off its clauses: {json.dumps(wrong, indent=1)}"


def test_no_survivor() -> None:
    """No mutant of MUTANTS survives a clause it declares (per the fresh record), and every
    held survivor (SURVIVORS, a known gap of the suite) still survives, live: once the
    suite catches one, it belongs in MUTANTS."""
    found = audit.survivors(MUTANTS, _record()["mutants"])
    assert not found, f"mutants surviving a clause they declare: {found}"
    caught = {}
    for survivor in SURVIVORS:
        result = runner.run(impl_option(survivor.name), survivor.breaks, ["float64", F32])
        if result.violated():
            caught[survivor.name] = sorted(result.violated())
    assert not caught, f"held survivors now caught (move them to MUTANTS): {caught}"


@pytest.mark.parametrize("variant", EQUIVALENTS, ids=[v.name for v in EQUIVALENTS])
def test_equivalent_variant_passes(variant: Variant) -> None:
    result = runner.run(
        impl_option(variant.name), variant.clauses, cached.claimed(variant.scheduler, None)
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
    defined = clauses.clauses()
    unknown = {m.name: c for m in MUTANTS for c in m.breaks if c not in defined}
    assert not unknown, f"mutants target clauses SPEC.md does not define: {unknown}"
    variants = [v for v in EQUIVALENTS if not v.name.endswith("_base")]
    assert len(MUTANTS) >= 25 and len(variants) >= 5
    targeted = {clauses.area(c) for m in MUTANTS for c in m.breaks}
    assert set(AREAS) <= targeted, f"no mutant targets {sorted(set(AREAS) - targeted)}"


def test_kill_matrix_lists_the_zoo() -> None:
    """KILL_MATRIX.md is generated; it must have been regenerated since the zoo changed."""
    text = KILL_MATRIX.read_text(encoding="utf-8")
    stale = [e.name for e in (*MUTANTS, *SURVIVORS, *EQUIVALENTS) if f"| {e.name} |" not in text]
    assert not stale, f"KILL_MATRIX.md lacks {stale}: run python -m tests.mutants.kill_matrix"


def test_kill_matrix_shows_no_survivor() -> None:
    """The kill matrix (kill_matrix.json, which KILL_MATRIX.md renders) kills every mutant
    on every clause it targets, holds no killed survivor and rejects no variant; and the
    markdown shows the measured marks."""
    rows = json.loads(kill_matrix.DATA.read_text(encoding="utf-8"))
    problems = audit.kill_matrix_problems(rows, MUTANTS, SURVIVORS)
    assert not problems, f"KILL_MATRIX.md: {problems}"
    text = KILL_MATRIX.read_text(encoding="utf-8")
    columns = _matrix_columns(text)
    unlike = [
        r["name"] for r in rows if r["kind"] == "mutant" and _matrix_line(r, columns) not in text
    ]
    assert not unlike, f"KILL_MATRIX.md's rows differ from kill_matrix.json for {unlike}"
    # A clause added to SPEC.md after the matrix was measured has no column: only one that no
    # mutant of the scheduler zoo can reach (a functional sampler's own clause) may be absent.
    absent = [c for c in clauses.clauses() if c not in columns and c not in FUNCTIONAL_ONLY]
    assert not absent, f"KILL_MATRIX.md has no column for {absent}: regenerate it"


#: Clauses only a functional sampler can break (the mutant zoo is of schedulers).
FUNCTIONAL_ONLY = ("XT-1",)


def _matrix_columns(text: str) -> list[str]:
    """The clauses KILL_MATRIX.md's matrix has columns for (its header row)."""
    header = next(line for line in text.splitlines() if line.startswith("| mutant | CFG-1"))
    return [c.strip() for c in header.strip("|").split("|")[1:]]


def _matrix_line(row: dict, columns: list[str]) -> str:
    r = kill_matrix.Row(**row)
    return f"| {r.name} | " + " | ".join(r.mark(c) for c in columns) + " |"


def test_spec_carries_the_sensitivity_figures() -> None:
    figures = json.loads(sensitivity.DATA.read_text(encoding="utf-8"))
    text = clauses.spec_text()
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
    original = clauses.spec_text()
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
