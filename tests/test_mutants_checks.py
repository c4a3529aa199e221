"""Meta-tests of tests/test_mutants.py's checks: each one fails on a planted bad measurement
(a mutant made to cascade or to survive, a stale record, a kill matrix showing a survivor),
and the live sample covers the whole zoo across consecutive days. No suite runs here: the
checks are functions of the measurements (`tests/mutants/audit.py`).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from hypothesis import settings

from tests.mutants import audit, fingerprint, kill_matrix, landing, runner
from tests.mutants.zoo import MUTANTS, SURVIVORS, Mutant

BY_NAME = {m.name: m for m in MUTANTS}


def _exact_row(mutant: Mutant) -> dict:
    """A row that lands exactly: every declared clause violated on float64, nothing else."""
    violated = {c: ["float64"] for c in mutant.breaks}
    return {
        "breaks": list(mutant.breaks),
        "dtypes": ["float64"],
        "violated": violated,
        "failed": dict(violated),
        "messages": {c: f"{c} violated" for c in mutant.breaks},
    }


def test_landing_check_passes_an_exact_landing() -> None:
    m = BY_NAME["c_out_tenth_percent"]
    assert audit.landing_problems(m, _exact_row(m)) is None


def test_landing_check_catches_a_cascade() -> None:
    m = BY_NAME["c_out_tenth_percent"]
    row = _exact_row(m)
    row["violated"]["STEP-3"] = row["failed"]["STEP-3"] = ["float64"]
    problem = audit.landing_problems(m, row)
    assert problem is not None and problem["cascade"] == ["STEP-3"], problem


def test_landing_check_catches_a_cascade_on_float32_only() -> None:
    """The live sample adds float32 to a float64 mutant: a clause violated there alone is a
    cascade all the same."""
    m = BY_NAME["noise_variance"]
    row = _exact_row(m)
    row["dtypes"] = ["float64", "float32"]
    row["violated"]["NOISE-1"] = row["failed"]["NOISE-1"] = ["float32"]
    problem = audit.landing_problems(m, row, ["float64"])
    assert problem is not None and problem["cascade"] == ["NOISE-1"], problem


def test_landing_check_catches_a_miss() -> None:
    m = BY_NAME["clamp_ignored"]
    row = _exact_row(m)
    del row["violated"]["STEP-2"], row["failed"]["STEP-2"]
    problem = audit.landing_problems(m, row)
    assert problem is not None and problem["missed"] == ["STEP-2"], problem


def test_landing_check_catches_a_miss_on_its_own_dtype() -> None:
    """A clause violated on float32 only does not count for a float64 mutant's landing."""
    m = BY_NAME["clamp_ignored"]
    row = _exact_row(m)
    row["violated"]["STEP-2"] = row["failed"]["STEP-2"] = ["float32"]
    problem = audit.landing_problems(m, row, ["float64"])
    assert problem is not None and problem["missed"] == ["STEP-2"], problem


def test_landing_check_catches_a_failure_without_a_violation() -> None:
    m = BY_NAME["clamp_ignored"]
    row = _exact_row(m)
    row["failed"]["STEP-2"] = ["float64", "float32"]  # an error of the suite on float32
    problem = audit.landing_problems(m, row)
    assert problem is not None and problem["failed without a violation"] == ["STEP-2"], problem


def test_staleness_passes_todays_record() -> None:
    today = {"digest": "abc", "inputs": {"conformance/test_step.py": "1"}}
    assert audit.staleness({"fingerprint": today}, today) == ""


def test_staleness_names_the_input_changed_and_the_refresh() -> None:
    before = {"digest": "abc", "inputs": {"conformance/test_step.py": "1", "SPEC.md": "2"}}
    today = {"digest": "abd", "inputs": {"conformance/test_step.py": "9", "SPEC.md": "2"}}
    message = audit.staleness({"fingerprint": before}, today)
    assert "changed: conformance/test_step.py)" in message and landing.REFRESH in message
    assert "no fingerprint" in audit.staleness({}, today)


def _module(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return fingerprint.normalized(path)


MODULE = '''"""A module."""
X = 1  # a comment


def f(x):
    """Doubles."""
    return 2 * x


def test_f():
    """Seeds hypothesis."""
    assert f(1) == 2
'''


def test_fingerprint_ignores_comments_and_docstrings(tmp_path: Path) -> None:
    base = _module(tmp_path, "a.py", MODULE)
    reworded = MODULE.replace("A module.", "Another module.").replace("Doubles.", "Twice x.")
    assert _module(tmp_path, "b.py", reworded.replace("# a comment", "# reworded\n\n")) == base


@pytest.mark.parametrize(
    "old, new",
    [("X = 1", "X = 2"), ("2 * x", "2.0 * x"), ("Seeds hypothesis.", "Seeds it otherwise.")],
    ids=["a constant", "an operator's operand", "a test function's docstring (its seed)"],
)
def test_fingerprint_follows_code(tmp_path: Path, old: str, new: str) -> None:
    base = _module(tmp_path, "test_a.py", MODULE)
    assert _module(tmp_path, "test_b.py", MODULE.replace(old, new)) != base


def test_fingerprint_covers_what_decides_verdicts() -> None:
    """The suite, the reference modules it imports (the oracle, the formulas the mutants
    reach), the zoo, the golden files, SPEC.md's clauses and the profile; no documentation."""
    inputs = set(landing.current_fingerprint()["inputs"])
    needed = {
        "conformance/test_step.py",
        "conformance/measuring/step_checks.py",
        "conformance/harness/plugin.py",
        "conformance/truth/oracle.py",
        "reference/numpy_reference/formulas.py",
        "reference/torch_scheduler/scheduler.py",
        "tests/mutants/zoo.py",
        "tests/mutants/runner.py",
        "SPEC.md clauses",
        f"hypothesis profile {runner.PROFILE}",
    }
    assert needed <= inputs, sorted(needed - inputs)
    assert any(i.startswith("golden/") and i.endswith(".safetensors") for i in inputs)
    docs = [i for i in inputs if i.endswith(".md") or "README" in i or i.startswith("docs")]
    assert not docs, docs


def test_fingerprint_follows_the_profile() -> None:
    settings.register_profile("mutants-fewer", settings.get_profile(runner.PROFILE), max_examples=5)
    assert fingerprint.profile("mutants-fewer") != fingerprint.profile(runner.PROFILE)


def test_survivor_check_catches_a_survivor() -> None:
    rows = {m.name: _exact_row(m) for m in MUTANTS}
    assert audit.survivors(MUTANTS, rows) == []
    del rows["s_noise_ignored"]["violated"]["STEP-3"]
    rows.pop("uniform_noise")
    assert audit.survivors(MUTANTS, rows) == ["s_noise_ignored", "uniform_noise"]


def _matrix() -> list[dict]:
    return json.loads(kill_matrix.DATA.read_text(encoding="utf-8"))


def test_kill_matrix_check_catches_a_survivor() -> None:
    rows = _matrix()
    (row,) = [r for r in rows if r["name"] == "clamp_ignored"]
    del row["violated"]["STEP-2"]
    problems = audit.kill_matrix_problems(rows, MUTANTS, SURVIVORS)
    assert problems == ["clamp_ignored: survives ['STEP-2'] (a `!` in KILL_MATRIX.md)"]
    assert kill_matrix.Row(**row).mark("STEP-2") == kill_matrix.MISSED


def test_kill_matrix_check_catches_a_killed_survivor_and_a_rejected_variant() -> None:
    rows = _matrix()
    held = Mutant("held", MUTANTS[0].scheduler, ("SCAL-1",), gap="planted")
    rows.append({**rows[0], "name": "held", "kind": "survivor", "violated": {"SCAL-1": ["-"]}})
    variant = next(r for r in rows if r["kind"] == "variant")
    variant["failed"] = {"STEP-1": ["float64"]}
    problems = audit.kill_matrix_problems(rows, MUTANTS, (*SURVIVORS, held))
    assert problems == [
        "survivor held: killed on ['SCAL-1']: move it to MUTANTS",
        f"variant {variant['name']}: rejected on ['STEP-1']",
    ]


def test_live_sample_covers_the_zoo_across_consecutive_days() -> None:
    parts = audit.slices(MUTANTS)
    assert sorted(m.name for p in parts for m in p) == sorted(m.name for m in MUTANTS)
    assert max(len(p) for p in parts) <= audit.PER_RUN
    start = datetime.date(2026, 12, 7)
    seen = set()
    for d in range(len(parts)):
        _, chosen = audit.sample(MUTANTS, "", start + datetime.timedelta(days=d))
        seen.update(m.name for m in chosen)
    assert seen == {m.name for m in MUTANTS}


def test_live_sample_choice() -> None:
    assert audit.sample(MUTANTS, "all")[1] == list(MUTANTS)
    chosen = audit.sample(MUTANTS, "clamp_ignored,rho_ignored")[1]
    assert [m.name for m in chosen] == ["clamp_ignored", "rho_ignored"]
    assert audit.sample(MUTANTS, "1")[1] == audit.slices(MUTANTS)[1]
    with pytest.raises(ValueError, match="no mutant named"):
        audit.sample(MUTANTS, "nosuch")
