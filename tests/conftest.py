"""Shared setup of the project's tests: hypothesis profiles and the golden directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from conformance.strategies import register_profiles
from reference import golden

register_profiles()
# "ci" unless HYPOTHESIS_PROFILE says otherwise; `--hypothesis-profile=NAME` overrides both.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def golden_copy(tmp_path: Path) -> Path:
    """A private copy of the golden directory, safe to corrupt."""
    target = tmp_path / "golden"
    shutil.copytree(golden.default_golden_dir(), target)
    return target
