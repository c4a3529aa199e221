"""The harness without pytest: one test phase classified into an `Outcome` record
(`conformance.harness.records.classify`), deviations matched (`conformance.protocol.deviations`), and the
report and its table built from records (`conformance.harness.report`), strict JSON valid against
the shipped schema. Plain function calls, no subprocess."""

from __future__ import annotations

import json
import math
import random

import jsonschema
import numpy as np
import pytest

from conformance.harness import markdown, records, report
from conformance.measuring.checks import Measure, Worst
from conformance.protocol import clauses, deviations
from conformance.protocol.deviations import Deviation
from conformance.protocol.violation import ClauseViolation

NUMERIC = Deviation("STEP-1", "float32 scalars", "ratio 1e5", max_ratio=1e6)
BEHAVIOURAL = Deviation("INDEX-3", "indexes an empty result", "IndexError", match="IndexError")


def violation(clause: str = "STEP-1", ratio: float = 10.0, **extra: object) -> ClauseViolation:
    made = ClauseViolation(
        clause,
        "cpu",
        "float32",
        "denoised",
        f"worst error exceeds its bound by a factor {ratio}",
        max_abs_error=1e-6,
        max_rel_error=1e-6,
        bound=1e-7,
        ratio=ratio,
    )
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def classify(**kwargs: object) -> records.Outcome:
    base = dict(nodeid="conformance/test_step.py::test_denoise[float32-cpu]", clause="STEP-1")
    base.update(device="cpu", dtype="float32", phase="call", outcome="failed")
    return records.classify(**{**base, **kwargs})


# -- classification ---------------------------------------------------------------------------


def test_must_violation_fails_with_its_figures() -> None:
    out = classify(exception=violation(ratio=6.5))
    assert out.status == "failed" and out.level == "MUST"
    assert out.ratio == 6.5 and out.max_abs_error == 1e-6
    assert out.message.startswith("STEP-1 violated on cpu/float32: denoised")


def test_should_violation_is_a_warning_unless_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clauses, "level", lambda clause: "SHOULD" if clause == "STEP-1" else "MUST")
    assert classify(exception=violation()).status == "warning"
    assert classify(exception=violation(), strict=True).status == "failed"
    # The violation's own level wins over the clause's.
    assert classify(exception=violation(level="MUST")).status == "failed"


def test_check_that_raised_is_an_error_naming_the_exception() -> None:
    out = classify(exception=TypeError("step() got an unexpected keyword argument 'noise'"))
    assert out.status == "error" and out.exception == "TypeError"
    assert out.message == "TypeError: step() got an unexpected keyword argument 'noise'"
    assert out.ratio is None


def test_hang_is_a_failure() -> None:
    from conformance.harness.timeout import ImplementationHang

    out = classify(exception=ImplementationHang("STEP-1 on cpu/float32: ran past 3 s"))
    assert out.status == "failed" and out.exception == "ImplementationHang"


def test_declared_deviation_explains_only_what_it_covers() -> None:
    out = classify(exception=violation(ratio=1e5), declared=[NUMERIC])
    assert out.status == "known deviation" and out.deviation["clause"] == "STEP-1"
    assert classify(exception=violation(ratio=1e7), declared=[NUMERIC]).status == "failed"
    # A group of violations is explained only if every one of them is.
    group = Exception("two")  # as hypothesis raises several failures (ExceptionGroup)
    group.exceptions = (violation(ratio=1e5), violation(ratio=1e7))  # type: ignore[attr-defined]
    assert classify(exception=group, declared=[NUMERIC]).status == "failed"


def test_behavioural_deviation_matches_the_exception_text() -> None:
    error = IndexError("index 0 is out of bounds for dimension 0 with size 0")
    out = classify(clause="INDEX-3", exception=error, declared=[BEHAVIOURAL])
    assert out.status == "known deviation"
    assert deviations.covering_all([BEHAVIOURAL], [], "ValueError: no") is None


def test_absorbed_deviation_makes_a_passed_test_a_known_deviation() -> None:
    out = classify(outcome="passed", absorbed=[(NUMERIC, violation(ratio=1e5))])
    assert out.status == "known deviation" and out.ratio == 1e5
    stale = classify(outcome="passed", declared=[NUMERIC])
    assert stale.status == "passed" and stale.message == "declared deviation not observed"


def test_skip_keeps_its_reason_and_bound_note_comes_from_the_worst() -> None:
    out = classify(outcome="skipped", text="reference does not claim generator_list")
    assert out.status == "skipped" and out.message == "reference does not claim generator_list"
    worst = Worst(0.5, 1e-7, 2e-7, "final sample", known_difference="OpenAI's own last-step noise")
    out = classify(outcome="passed", clause="GOLD-3", worst=worst)
    assert out.bound_note == "OpenAI's own last-step noise"
    assert out.worst.known_difference == "OpenAI's own last-step noise"
    data = report.build([out], run_info())
    cell = data["clauses"][0]
    assert cell["bound_note"] == cell["worst"]["note"] == "OpenAI's own last-step noise"
    lines = report.summary_lines(data)
    # Half its bound or more, where the bound is the known difference: marked and explained.
    assert next(line for line in lines if line.startswith("GOLD-3 ")).split()[1:] == ["ok", "0.5*"]
    assert (
        "* GOLD-3 cpu/float32 is at its bound by design, not near failing: "
        "OpenAI's own last-step noise" in lines
    )


def test_record_round_trips_through_plain_data() -> None:
    out = classify(exception=violation(), worst=Worst(math.inf, math.inf, 1e-7, "x"))
    wire = json.loads(json.dumps(out.as_dict()))  # what xdist carries, and back
    assert records.Outcome.from_dict(wire) == out


# -- the report --------------------------------------------------------------------------------


def run_info(**kwargs: object) -> report.RunInfo:
    base = dict(
        suite_version="0.1.0",
        implementation={
            "name": "demo",
            "version": "1",
            "loaded": "demo.Scheduler",
            "impl_option": "demo",
            "capabilities": {
                "devices": ["cpu"],
                "dtypes": ["float32"],
                "injected_noise": True,
                "noise_convention": None,
                "stateful": True,
            },
        },
        devices=[{"name": "cpu", "available": True, "reason": "", "detail": "x86_64"}],
        dtypes=["float32"],
        declared=[NUMERIC.as_dict(), BEHAVIOURAL.as_dict()],
        started="2026-01-01T00:00:00+00:00",
        duration_s=1.5,
        exit_status=1,
        hypothesis_profile="conformance-ci",
        filters={
            "devices": None,
            "dtypes": None,
            "keyword": None,
            "markers": None,
            "claims": "check",
        },
        platform={"system": "Linux", "release": "6", "machine": "x86_64", "versions": {}},
    )
    return report.RunInfo(**{**base, **kwargs})


def sample_records() -> list[records.Outcome]:
    inf_worst = Worst(math.inf, math.nan, 1e-7, "prev_sample")
    return [
        classify(exception=violation(ratio=math.inf), worst=inf_worst),
        classify(
            nodeid="conformance/test_step.py::test_clamp[float32-cpu]",
            outcome="passed",
            clause="STEP-2",
            worst=Worst(0.25, 1e-8, 4e-8, "clamped"),
        ),
        classify(
            nodeid="conformance/test_step.py::test_denoise2[float32-cpu]",
            exception=violation(ratio=1e5),
            declared=[NUMERIC],
        ),
        classify(
            nodeid="conformance/test_index.py::test_bad[cpu]",
            clause="INDEX-3",
            dtype=None,
            exception=IndexError("index 0"),
            declared=[BEHAVIOURAL],
        ),
        classify(
            nodeid="conformance/test_noise.py::test_x[float32-cpu]",
            clause="NOISE-1",
            exception=KeyError("sigmas"),
        ),
        classify(
            nodeid="conformance/test_noise.py::test_y[float32-cpu]",
            clause="NOISE-2",
            outcome="skipped",
            text="does not claim it",
        ),
    ]


def test_report_is_strict_json_valid_against_the_schema() -> None:
    data = report.build(sample_records(), run_info())
    text = report.dumps(data)  # allow_nan=False: a NaN left anywhere would raise here
    jsonschema.Draft202012Validator(report.schema()).validate(json.loads(text))
    assert "NaN" not in text and "Infinity" not in text
    cells = {(c["clause"], c["dtype"]): c for c in data["clauses"]}
    step1 = cells[("STEP-1", "float32")]
    assert step1["status"] == "failed"  # failed beats known deviation in one cell
    assert step1["worst"]["ratio"] is None and step1["worst"]["text"] == "inf"
    # Format 3: the worst ratio, error and bound in one place; the excess apart, named so.
    assert not {"ratio", "ratio_text", "max_abs_error", "max_rel_error"} & set(step1)
    assert step1["beyond_bound"] == {"max_abs_error": 1e-6, "max_rel_error": 1e-6}
    assert step1["failure"].startswith("STEP-1 violated on cpu/float32: denoised: worst error")
    assert cells[("STEP-2", "float32")]["worst"]["ratio"] == 0.25
    assert cells[("STEP-2", "float32")]["beyond_bound"] is None
    assert cells[("NOISE-1", "float32")]["exception"] == "KeyError"
    assert cells[("INDEX-3", "-")]["status"] == "known deviation"
    assert data["verdict"] == "fail"
    assert data["counts"]["tests"] == {
        "failed": 1,
        "error": 1,
        "warning": 0,
        "known deviation": 2,
        "passed": 1,
        "skipped": 1,
    }
    assert data["counts"]["cells"]["failed"] == 1 and data["counts"]["cells"]["passed"] == 1
    observed = {d["clause"]: d["observed"] for d in data["deviations"]}
    assert observed == {"STEP-1": True, "INDEX-3": True}  # explained a test of a failed cell


def test_report_does_not_depend_on_the_order_records_arrive_in() -> None:
    """What pytest-xdist changes: the order in which the controller receives records."""
    shuffled = sample_records()
    random.Random(3).shuffle(shuffled)
    info = run_info()
    assert report.build(shuffled, info) == report.build(sample_records(), info)


def test_verdicts() -> None:
    skipped = [r for r in sample_records() if r.status == "skipped"]
    assert report.build(skipped, run_info())["verdict"] == "nothing tested"
    assert report.build([], run_info())["verdict"] == "nothing tested"
    passing = [r for r in sample_records() if r.status in ("passed", "known deviation")]
    assert report.build(passing, run_info())["verdict"] == "pass"


def test_table_shows_statuses_and_groups_deviations_by_reason() -> None:
    data = report.build(sample_records(), run_info())
    lines = report.summary_lines(data)
    text = "\n".join(lines)
    assert "conformance of demo 1 (suite 0.1.0): FAIL" in text
    assert "cells (clause x device x dtype): 1 passed, 1 known deviation," in text
    row = next(line for line in lines if line.startswith("NOISE-1"))
    assert "ERR KeyError" in row
    assert next(line for line in lines if line.startswith("STEP-1 ")).split()[1:] == ["FAIL", "inf"]
    assert "  INDEX-3 (1 of 1 observed): indexes an empty result" in lines
    assert not any("IndexError. indexes" in line for line in lines)  # full text only with -v
    verbose = report.summary_lines(data, verbose=1)
    assert "  INDEX-3 (all dtypes; observed): IndexError. indexes an empty result" in verbose
    at = lines.index("ERROR NOISE-1 cpu/float32:")
    assert lines[at + 1] == "  KeyError: 'sigmas'"


def test_a_cell_that_failed_without_going_beyond_a_bound_shows_no_ratio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A behavioural failure (CFG-1's `clip_denoised is False, expected True`, STEP-9's wrong
    dtype) in a test whose numeric checks held reads `FAIL`, not `FAIL 0` ("failed, worst
    error 0 of its bound"); a SHOULD one `warn`; a numeric failure keeps its figure."""
    monkeypatch.setattr(clauses, "level", lambda clause: "SHOULD" if clause == "CFG-2" else "MUST")

    def behavioural(clause: str, worst: Worst) -> records.Outcome:
        made = ClauseViolation(clause, "cpu", "float32", "config", "clip_denoised is False")
        return classify(
            nodeid=f"conformance/test_config.py::t_{clause}",
            clause=clause,
            exception=made,
            worst=worst,
        )

    data = report.build(
        [
            behavioural("CFG-1", Worst(0.0, 0.0, 0.0, "defaults")),  # only `ok` checks
            behavioural("STEP-9", Worst(0.0, 0.0, 1e-7, "scaled")),  # values exact, dtype wrong
            behavioural("CFG-2", Worst(0.5, 1e-8, 2e-8, "defaults")),  # SHOULD, held at 0.5
            classify(exception=violation(ratio=6.5), worst=Worst(6.5, 6.5e-7, 1e-7, "denoised")),
        ],
        run_info(),
    )
    shown = {c["clause"]: report.cell_text(c) for c in data["clauses"]}
    assert shown == {"CFG-1": "FAIL", "STEP-9": "FAIL", "CFG-2": "warn", "STEP-1": "FAIL 6.5"}
    assert "| `CFG-1` | MUST | `FAIL` |" in markdown.render(data)


def test_node_ids_are_the_same_wherever_the_suite_is_installed() -> None:
    a = classify(nodeid="../venv/lib/python3.11/site-packages/conformance/test_step.py::t[x]")
    b = classify(nodeid="conformance/test_step.py::t[x]")
    ids = [report.build([r], run_info())["clauses"][0]["tests"][0]["nodeid"] for r in (a, b)]
    assert ids == ["conformance/test_step.py::t[x]"] * 2


# -- what a person reads ------------------------------------------------------------------------


def planted_failure(diagnosis: str) -> records.Outcome:
    """A STEP-1 check failing as a c_out 0.1 % too large makes it fail, through `Measure`."""
    checks = Measure(None, "STEP-1", "cpu", "float64")
    expected = np.array([0.0019999840001919972, 0.5])
    checks.close(
        expected * 1.001,
        expected,
        1e-15,
        "denoised",
        bound_text="step bound, float64",
        where="position 0 of set_timesteps(...)",
        diagnose=lambda worst, bad: diagnosis,
    )
    assert checks.violations
    return classify(
        dtype="float64", exception=ClauseViolation.combine(checks.violations), worst=checks.worst
    )


def test_a_failure_reads_as_one_block_in_plain_numbers_with_its_diagnosis_whole() -> None:
    diagnosis = "scalings fitted on the output: c_out " + "1.001 times the expected; " * 30
    out = planted_failure(diagnosis)
    block = out.failure
    assert "np.float64" not in block and "np.float64" not in out.message
    assert block.splitlines()[:3] == [
        "STEP-1 violated on cpu/float64: denoised",
        f"  clause:     MUST, {clauses.clauses()['STEP-1']} (conformance/SPEC.md)",
        "  worst input: index 1 of position 0 of set_timesteps(...)",
    ]
    assert "  expected:   0.5" in block and "  actual:     0.5005" in block
    assert "  error:      0.0005, bound 1e-15 (step bound, float64): a factor 5e+11" in block
    assert f"  diagnosis:  {diagnosis}" in block  # whole, however long
    lines = report.summary_lines(report.build([out], run_info(dtypes=["float64"])))
    at = lines.index("FAILED STEP-1 cpu/float64:")
    assert lines[at + 1 :] == ["  " + line for line in block.splitlines()]


def test_a_run_that_tested_nothing_still_prints_its_verdict_line() -> None:
    lines = report.summary_lines(report.build([], run_info()))
    assert "conformance of demo 1 (suite 0.1.0): NOTHING TESTED" in lines
    assert lines[-1].startswith("nothing was tested")


# -- the Markdown summary and the plot ----------------------------------------------------------


def test_markdown_summary_holds_the_verdict_versions_table_and_failures() -> None:
    from conformance.harness import markdown

    data = report.build(sample_records(), run_info(platform={"versions": {"numpy": "2.0"}}))
    md = markdown.render(data)
    assert md.startswith("## Conformance of demo 1: FAIL\n")
    assert "- versions: numpy 2.0" in md
    assert "| clause | level | cpu/any | cpu/float32 |" in md
    assert "| `STEP-1` | MUST |  | `FAIL inf` |" in md
    assert "| `STEP-2` | MUST |  | `ok 0.25` |" in md
    assert "| `INDEX-3` | SHOULD | `dev` |  |" in md
    step1 = next(c for c in data["clauses"] if c["clause"] == "STEP-1")
    assert f"```text\n{step1['failure']}\n```" in md
    assert "**ERROR NOISE-1**" in md and "KeyError: 'sigmas'" in md


def test_plot_places_each_cell_at_its_worst_ratio(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from conformance.harness import plot

    data = report.build(sample_records(), run_info())
    clauses, columns, values, labels = plot.grid(data)
    cell = {
        (c, col): (values[i][j], labels[i][j])
        for i, c in enumerate(clauses)
        for j, col in enumerate(columns)
    }
    assert cell[("STEP-2", "cpu/float32")] == (0.25, "ok 0.25")
    assert cell[("STEP-1", "cpu/float32")] == (math.inf, "FAIL inf")
    assert cell[("NOISE-2", "cpu/float32")] == (None, "skip")
    out = plot.draw(data, tmp_path / "conformance.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.main([str(_written(data, tmp_path)), "-o", str(tmp_path / "p.svg")]) == 0
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")


def _written(data, tmp_path):
    path = tmp_path / "report.json"
    report.write(data, path)
    return path


def test_two_figures_of_one_quantity_name_the_factor_between_them() -> None:
    """STEP-4 compares the noise scale per unit of s_noise and its diagnosis gives the scale
    itself: the message says that one is s_noise times the other."""
    from conformance.measuring import step_checks

    config = {"s_noise": 0.440588, "sigma_min": 40.0, "sigma_max": 80.0}
    text = step_checks.scale_diagnosis(2819.8, config, None, "position 1")
    fitted = 0.440588 * 2819.8
    assert text.startswith(f"noise scale after the last evaluation: fitted {fitted:.6g} (= ")
    assert "s_noise 0.440588 x 2819.8, the figure compared, per unit of s_noise" in text


def _implementation_that_raises(x: float) -> float:
    return {0.5: x}[x + 1]  # a KeyError from the implementation's own code


def test_a_call_that_raised_shows_the_implementations_frames_not_the_harness() -> None:
    from conformance.harness import failures

    checks = Measure(None, "ADD-1", "cpu", "float64")
    with pytest.raises(ClauseViolation) as raised:
        checks.call("add_noise", _implementation_that_raised_wrapper)
    text = failures.block(raised.value)
    assert text.startswith("ADD-1 violated on cpu/float64: add_noise: raised KeyError: 1.5\n")
    at = text.splitlines().index("  raised at (innermost last; KeyError):")
    frames = text.splitlines()[at + 1 :]
    assert frames and all("test_suite_records.py" in f for f in frames[::2]), frames
    assert "return {0.5: x}[x + 1]" in text
    assert "measure.py" not in text and "conformance/harness" not in text
    # The JSON report names no path of the machine: the record's block has no frames.
    assert "raised at" not in failures.block(raised.value, frames=False)


def _implementation_that_raised_wrapper() -> float:
    return _implementation_that_raises(0.5)
