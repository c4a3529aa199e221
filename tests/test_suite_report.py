"""The conformance report: `--conformance-report PATH` (JSON) and the summary table that ends
every run; known deviations shown, never passed silently (pytester, subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import __version__
from conformance.protocol import clauses

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "conformance"


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{pytester.path}")
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    return pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider", timeout=300)


def test_report_of_a_passing_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, conformance_report
) -> None:
    out = pytester.path / "report.json"
    result = _run(
        pytester,
        monkeypatch,
        str(SUITE / "test_config.py"),
        str(SUITE / "test_scalings.py"),
        "--impl=reference",
        f"--conformance-report={out}",
    )
    assert result.ret == pytest.ExitCode.OK
    report = conformance_report(out)
    assert report["format"] == "cm-conformance-report/3"
    assert report["verdict"] == "pass" and report["exit_status"] == 0
    assert report["started"].endswith("+00:00") and report["duration_s"] > 0
    assert report["run"]["filters"]["dtypes"] is None and report["run"]["golden"] == "packaged"
    assert report["suite"] == {"name": "cm-conformance", "version": __version__}
    impl = report["implementation"]
    assert impl["name"] == "reference" and impl["version"] == "0.1.0"
    assert impl["capabilities"]["dtypes"] == ["float64"]
    assert report["platform"]["versions"]["python"]
    assert report["run"]["hypothesis_profile"] == "conformance-ci"
    assert report["devices"][0]["name"] == "cpu" and report["devices"][0]["available"]
    assert report["dtypes"] == ["float64"]
    cells = {(c["clause"], c["device"], c["dtype"]): c for c in report["clauses"]}
    for key in [("CFG-1", "-", "-"), ("CFG-2", "-", "-"), ("SCAL-2", "cpu", "-")]:
        assert cells[key]["status"] == "passed", cells[key]
    scal = cells[("SCAL-1", "cpu", "float64")]
    assert scal["status"] == "passed" and scal["title"] == clauses.clauses()["SCAL-1"]
    worst = scal["worst"]
    assert 0 < worst["ratio"] <= 1 and worst["error"] <= worst["bound"]
    assert report["counts"]["cells"]["failed"] == 0
    assert report["counts"]["tests"]["passed"] > report["counts"]["cells"]["passed"]
    # The readable summary ends the run: one row per clause, a column per device/dtype.
    result.stdout.fnmatch_lines(
        [
            "conformance of reference 0.1.0 (suite *): PASS",
            "  cells (clause x device x dtype): * passed, 0 known deviations, 0 warnings, 0 failed*",
            "  tests: * passed, *",
            "clause *cpu/float64*",
            "SCAL-1 * ok *",
        ]
    )


def test_report_of_known_deviations_and_failures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, conformance_report
) -> None:
    out = pytester.path / "report.json"
    result = _run(
        pytester,
        monkeypatch,
        str(SUITE / "test_index.py"),
        "--impl=diffusers",
        "--device=cpu",
        "--dtype=float64",
        f"--conformance-report={out}",
    )
    assert result.ret == pytest.ExitCode.OK  # deviations are declared: xfail, not pass
    report = conformance_report(out)
    assert report["run"]["filters"] == {
        "devices": ["cpu"],
        "dtypes": ["float64"],
        "keyword": None,
        "markers": None,
        "claims": "check",
    }
    cells = {(c["clause"], c["dtype"]): c for c in report["clauses"]}
    index3 = cells[("INDEX-3", "-")]
    assert index3["status"] == "known deviation"
    assert index3["deviation"]["clause"] == "INDEX-3"
    assert "IndexError" in index3["messages"][0]["message"]
    index5 = cells[("INDEX-5", "-")]  # diffusers' set_begin_index accepts bad values
    assert index5["status"] == "known deviation"
    # INDEX-4 compares diffusers' step with its own (its float32 schedule is SCHED's finding);
    # where a drawn config makes its noise scale NaN (the square root of a negative rounding
    # error after the last evaluation), both runs are NaN: the declared NaN deviation.
    index4 = cells[("INDEX-4", "float64")]
    assert index4["status"] == "known deviation", index4
    assert "non-finite" in index4["messages"][0]["message"], index4["messages"][0]
    assert index4["deviation"]["clause"] == "INDEX-4"
    declared = {(d["clause"], d["observed"]) for d in report["deviations"]}
    assert ("INDEX-3", True) in declared and ("STEP-7", False) in declared
    assert report["counts"]["cells"]["known deviation"] >= 2
    # Deviations grouped by reason, one line each; the full text with -v.
    result.stdout.fnmatch_lines(
        [
            "*INDEX-3 * dev*",
            "known deviations: * declarations *observed in 3 cells; -v for each in full",
            "  INDEX-3 (1 of 1 observed): index_for_timestep indexes an empty nonzero() result",
        ]
    )
    assert result.stdout.str().count("indexes an empty nonzero() result") == 1
    # xfailed: INDEX-3 (IndexError), INDEX-4 (NaN) and INDEX-5's bad begin indices (accepted
    # silently), each a declared deviation of diffusers.
    result.assert_outcomes(xfailed=3, passed=2)


def test_a_dtype_that_some_tests_do_not_check_skips_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # test_scalings.py checks float64/float32 only: with --dtype float16 its tests must skip
    # with the reason, not leave an empty parameter set for the report to crash on.
    result = _run(
        pytester,
        monkeypatch,
        str(SUITE / "test_scalings.py"),
        str(SUITE / "test_golden.py"),
        "--impl=torch",
        "--dtype=float16",
        "-rs",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*none of them is selected*"])
    assert "INTERNALERROR" not in result.stdout.str()
