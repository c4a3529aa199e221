"""The gate itself: `pytest conformance --impl=NAME` passes for the three built-in
implementations (diffusers with its declared deviations), so that the project's test
command gates them in CI. Each run is a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("impl", ["reference", "torch", "diffusers"])
def test_builtin_implementation_passes_the_suite(
    impl: str, tmp_path: Path, conformance_report
) -> None:
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "conformance",
            f"--impl={impl}",
            f"--conformance-report={report}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = done.stdout[-4000:]
    assert done.returncode == 0, f"--impl={impl} fails the suite:\n{summary}\n{done.stderr[-2000:]}"
    data = conformance_report(report)
    cells = data["counts"]["cells"]
    assert data["verdict"] == "pass" and cells["failed"] == cells["error"] == 0
    assert cells["passed"] > 0
    if impl == "diffusers":  # its deviations are shown, not passed
        assert cells["known deviation"] > 0
        assert all(d["reason"] and d["measured"] for d in data["deviations"])
    else:
        assert cells["known deviation"] == 0
