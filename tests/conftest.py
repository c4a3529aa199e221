"""Shared setup of the project's tests: hypothesis profiles, the golden directory, and the
reader of conformance reports (each one validated against the shipped JSON Schema)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import settings

from conformance.harness import report
from conformance.inputs.strategies import register_profiles
from conformance.truth import golden

register_profiles()
# "ci" unless HYPOTHESIS_PROFILE says otherwise; `--hypothesis-profile=NAME` overrides both.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def golden_copy(tmp_path: Path) -> Path:
    """A private copy of the golden directory, safe to corrupt."""
    target = tmp_path / "golden"
    shutil.copytree(golden.default_golden_dir(), target)
    return target


def read_report(path: Path) -> dict[str, Any]:
    """A conformance report written by a test run: strict JSON (no NaN or Infinity), valid
    against `conformance/harness/report_schema.json`."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{path.name}: {constant} is not JSON")

    data = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
    jsonschema.Draft202012Validator(report.schema()).validate(data)
    return data


@pytest.fixture
def conformance_report() -> Callable[[Path], dict[str, Any]]:
    """`read_report`, for tests that run the suite with `--conformance-report`."""
    return read_report
