"""`--golden DIR` with any directory of the golden format: the GOLD clauses dispatch on each
case's kind and config, never on the names of the shipped cases, and skip a kind that the
directory lacks, with the reason (SPEC.md, "Golden files").

The directories are built from the shipped files (golden/, never edited) under other names
and in subsets; the suite runs in-process against the numpy reference.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conformance.truth import golden
from tests.mutants import runner
from tests.mutants.registry import impl_option

GOLD = ("GOLD-1", "GOLD-2", "GOLD-3", "GOLD-4")


def _directory(target: Path, keep: dict[str, str]) -> Path:
    """A golden directory holding the shipped cases `keep` (old name -> new name), each
    file copied under its new name, the manifest rewritten accordingly."""
    source = golden.default_golden_dir()
    target.mkdir()
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    cases = []
    for entry in manifest["cases"]:
        if entry["name"] not in keep:
            continue
        new = keep[entry["name"]]
        shutil.copyfile(source / entry["file"], target / f"{new}.safetensors")
        cases.append({**entry, "name": new, "file": f"{new}.safetensors"})
    manifest["cases"] = cases
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return target


def _statuses(result: runner.SuiteRun) -> dict[tuple[str, str], str]:
    statuses = {(c["clause"], c["dtype"]): c["status"] for c in result.cells}
    assert statuses, f"the run reported no cells: {result.output[-2000:]}"
    return statuses


def _clean(statuses: dict[tuple[str, str], str]) -> bool:
    """Nothing but passed and skipped cells (no failure, no error, no warning)."""
    return set(statuses.values()) <= {"passed", "skipped"}


def _run(directory: Path, impl: str = "reference", dtypes=None) -> runner.SuiteRun:
    return runner.run(impl, GOLD, dtypes, extra=[f"--golden={directory}", "-rs"])


def test_renamed_cases_run_every_golden_clause(tmp_path: Path) -> None:
    keep = {
        "schedule_default": "karras_grid_a",
        "scalings_default": "boundary_table_b",
        "cd_imagenet64_ts_0_22_39_f64": "run_one",
        "five_points_ts_0_8_16_24_32_39_f64": "run_two",
        "noclip_ts_0_22_39_f64": "run_three",
        "onestep_f32": "run_four",
    }
    result = _run(_directory(tmp_path / "renamed", keep))
    statuses = _statuses(result)
    ran = {clause for (clause, _), status in statuses.items() if status == "passed"}
    assert ran == set(GOLD), statuses
    assert _clean(statuses), result.output[-3000:]
    # Each sampler case ran under its new name.
    nodes = {t["nodeid"] for c in result.cells for t in c["tests"]}
    assert any("run_two" in n for n in nodes) and not any("five_points" in n for n in nodes)


def test_a_kind_the_directory_lacks_is_skipped_with_the_reason(tmp_path: Path) -> None:
    keep = {"batch1_odd_shape_ts_0_22_39_f64": "only_sampler"}
    result = _run(_directory(tmp_path / "samplers_only", keep))
    statuses = _statuses(result)
    assert statuses[("GOLD-1", "-")] == "skipped"
    assert statuses[("GOLD-2", "float64")] == "skipped"
    assert statuses[("GOLD-3", "float64")] == "passed"
    assert statuses[("GOLD-4", "float64")] == "passed"
    messages = [m["message"] for c in result.cells for m in c["messages"]]
    assert any("no case of kind 'schedule'" in m for m in messages), messages
    assert any("no case of kind 'scalings'" in m for m in messages), messages


@pytest.mark.parametrize("kind", ["schedule", "scalings"])
def test_a_directory_without_samplers_checks_what_it_has(tmp_path: Path, kind: str) -> None:
    name = {"schedule": "schedule_default", "scalings": "scalings_default"}[kind]
    result = _run(_directory(tmp_path / kind, {name: f"my_{kind}"}))
    statuses = _statuses(result)
    clause = {"schedule": "GOLD-1", "scalings": "GOLD-2"}[kind]
    assert "passed" in {s for (c, _), s in statuses.items() if c == clause}, statuses
    assert _clean(statuses), result.output[-3000:]
    assert {s for (c, _), s in statuses.items() if c in ("GOLD-3", "GOLD-4")} <= {"skipped"}


RENAMED = {
    "schedule_default": "karras_grid_a",
    "scalings_default": "boundary_table_b",
    "five_points_ts_0_8_16_24_32_39_f64": "run_two",
}


@pytest.mark.parametrize(
    "mutant, caught",
    [("ramp_over_n", {"GOLD-1"}), ("c_out_tenth_percent", {"GOLD-2"})],
)
def test_renamed_cases_catch_a_wrong_implementation(
    tmp_path: Path, mutant: str, caught: set[str]
) -> None:
    """The renamed directory fails a mutant on the GOLD clauses that see its bug (the ones it
    fails on the shipped directory, tests/mutants/zoo.py; GOLD-3 and GOLD-4 defer a wrong c_out
    to STEP-1) and on no other."""
    result = _run(_directory(tmp_path / "renamed", RENAMED), impl_option(mutant), ["float64"])
    assert set(result.violated()) == caught, (_statuses(result), result.output[-3000:])
    nodes = {t["nodeid"] for c in result.cells for t in c["tests"]}
    assert any("run_two" in n for n in nodes), nodes


def test_the_toy_network_replay_can_fail(tmp_path: Path) -> None:
    """GOLD-4 can fail, though no mutant of the zoo reaches it (a step departure is its STEP
    clause's, tests/mutants/KILL_MATRIX.md): with the toy network's A 0.1 % off in a copy's
    manifest, the reference's trajectories with that network no longer end where OpenAI's
    did, and GOLD-4 alone fails (GOLD-3 replays OpenAI's recorded network outputs)."""
    directory = _directory(tmp_path / "toy", {"cd_imagenet64_ts_0_22_39_f64": "run_one"})
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["toy_model"]["params"]["A"] *= 1.001
    path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    result = _run(directory, dtypes=["float64"])
    assert set(result.violated()) == {"GOLD-4"}, {c: result.messages(c) for c in result.failed()}
