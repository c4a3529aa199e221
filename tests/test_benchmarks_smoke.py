"""The benchmark script runs and reports ratios (benchmarks/bench_scheduler.py).

Smallest settings (one tiny shape, one round, 1 ms blocks, no torch.compile): a few seconds,
most of them imports. Nothing here asserts on a time; performance figures come from the
script's full run (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALLEST = ["--shapes", "1x3x8x8", "--dtypes", "float32", "--rounds", "1", "--block-time", "0.001"]
# A table row: name, median with its unit, then optionally "<ratio> x <what>" and "<pct>%".
ROW = re.compile(
    r"^  (?P<name>(step|loop|set_timesteps) [\w =]+?)\s+(?P<median>[\d.]+) (us|ms|s)\s"
    r".*?(?:(?P<ratio>[\d.]+) x (?P<against>[\w ]+?))?\s*(?:(?P<limit>[\d.]+)%)?$"
)


@pytest.fixture(scope="module")
def output() -> str:
    pytest.importorskip("diffusers")
    command = [sys.executable, "-m", "benchmarks.bench_scheduler", *SMALLEST, "--no-compile"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def rows(text: str) -> dict[str, re.Match]:
    return {m["name"].strip(): m for m in map(ROW.match, text.splitlines()) if m}


def test_prints_ratios_against_diffusers(output):
    table = rows(output)
    for name in ("step ours", "set_timesteps ours", "loop ours"):
        assert name in table, f"no row {name!r} in:\n{output}"
        ratio = float(table[name]["ratio"])
        assert table[name]["against"] == "diffusers"
        assert math.isfinite(ratio) and ratio > 0, table[name].group(0)


def test_prints_fractions_of_the_bandwidth_limit(output):
    table = rows(output)
    assert "GB/s" in output
    for name in ("step ours", "step diffusers", "step ours noise=z"):
        assert table[name]["limit"] is not None, table[name].group(0)
        assert float(table[name]["limit"]) > 0


def test_targets_and_cuda_are_accounted_for(output):
    assert "Targets on cpu:" in output
    assert "1x3x64x64 float32: not measured, not checked" in output  # tiny shape only
    assert "no CUDA device" in output or "Targets on cuda" in output
