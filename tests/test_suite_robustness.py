"""A suite that survives what it tests: an implementation that raises, hangs, returns the
wrong type, dtype or shape, returns NaN or writes into its inputs gives failing tests with
clear messages, and the run ends (pytester, subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "conformance"

BROKEN = """
import time

import numpy as np

from conformance.protocol.values import Capabilities
from conformance.implementations.numpy_adapter import NumpySchedulerAdapter
from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler as Reference


class Raises(Reference):
    def step(self, *args, **kwargs):
        raise RuntimeError("boom")


class Hangs(Reference):
    def step(self, *args, **kwargs):
        time.sleep(600)


class ReturnsList(Reference):
    def step(self, *args, **kwargs):
        return (super().step(*args, **kwargs).prev_sample.tolist(),)


class WrongShape(Reference):
    def step(self, *args, **kwargs):
        return (super().step(*args, **kwargs).prev_sample.ravel(),)


class WrongDtype(Reference):
    def step(self, *args, **kwargs):
        return (super().step(*args, **kwargs).prev_sample.astype(np.float32),)


class HangsOnce(Reference):
    # Its first step hangs; the first step after that takes 2.5 s, then it is quick.

    calls = 0

    def step(self, *args, **kwargs):
        HangsOnce.calls += 1
        if HangsOnce.calls == 1:
            time.sleep(600)
        elif HangsOnce.calls == 2:
            time.sleep(2.5)
        return super().step(*args, **kwargs)


class NaNs(Reference):
    def step(self, *args, **kwargs):
        return (super().step(*args, **kwargs).prev_sample * np.nan,)


class WritesIntoSample(Reference):
    def step(self, model_output, timestep, sample, *args, **kwargs):
        out = super().step(model_output, timestep, sample, *args, **kwargs)
        sample *= 0.5
        return out


def adapter(cls):
    return lambda: NumpySchedulerAdapter(
        cls,
        name=cls.__name__,
        version="0",
        capabilities=Capabilities(devices=("cpu",), dtypes=("float64",), injected_noise=True),
    )


raises, hangs, returns_list, wrong_shape, wrong_dtype, nans, writes_into_sample = (
    adapter(c) for c in (Raises, Hangs, ReturnsList, WrongShape, WrongDtype, NaNs, WritesIntoSample)
)
hangs_once = adapter(HangsOnce)
"""

CASES = [
    # (factory, test selection, lines the output must hold)
    (
        "raises",
        "denoise",
        ["*STEP-1 violated on cpu/float64: the loop body *: raised RuntimeError: boom*"],
    ),
    (
        "hangs",
        "denoise or renoise",
        [
            "*ImplementationHang: STEP-1 on cpu/float64: the test ran past its time limit of 3 s*",
            "*ImplementationHang: STEP-3 on cpu/float64: the test ran past its time limit of 3 s*",
        ],
    ),
    (
        "returns_list",
        "output_contract",
        [
            "*STEP-9 violated on cpu/float64: step(...).prev_sample at position 0: returned builtins.list*"
        ],
    ),
    (
        "wrong_shape",
        "output_contract",
        [
            "*STEP-9 violated on cpu/float64: *: returned a numpy.ndarray with shape (*), expected (*"
        ],
    ),
    (
        "wrong_dtype",
        "output_contract",
        [
            "*STEP-9 violated on cpu/float64: *: returned a numpy.ndarray with dtype float32, expected float64"
        ],
    ),
    (
        "nans",
        "output_contract or denoise",
        [
            "*STEP-9 violated on cpu/float64: *: * elements are NaN or inf for finite inputs",
            "*STEP-1 violated on cpu/float64: *",
            "*out of bound: * elements, * of them non-finite (NaN or inf) where the truth is finite",
        ],
    ),
    (
        "writes_into_sample",
        "inputs_not_modified",
        [
            "*STEP-8 violated on cpu/float64: sample at position 0: was modified by scale_model_input or step"
        ],
    ),
]


@pytest.mark.parametrize(("factory", "selection", "lines"), CASES, ids=[c[0] for c in CASES])
def test_broken_implementation_fails_with_a_clear_message(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    factory: str,
    selection: str,
    lines: list[str],
) -> None:
    pytester.makepyfile(broken=BROKEN)
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{pytester.path}")
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    result = pytester.runpytest_subprocess(
        str(SUITE / "test_step.py"),
        f"--impl=broken:{factory}",
        "-k",
        selection,
        "--conformance-timeout=3",
        "--conformance-warmup=0",
        "-p",
        "no:cacheprovider",
        timeout=120,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(lines, consecutive=False)
    # The run ends with the summary, which names each failing clause.
    result.stdout.fnmatch_lines(["conformance of * 0 (suite *): FAIL"])


def test_a_hang_leaves_the_next_clause_its_limit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STEP-1 hangs and fails alone; STEP-9, whose first step then takes 2.5 s, still has its
    full limit of 3 s and passes. The first test has the first call's allowance on top of
    its limit, and the header says so."""
    pytester.makepyfile(broken=BROKEN)
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{pytester.path}")
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    result = pytester.runpytest_subprocess(
        str(SUITE / "test_step.py"),
        "--impl=broken:hangs_once",
        "-k",
        "denoise or output_contract",
        "--conformance-timeout=3",
        "--conformance-warmup=1",
        "-p",
        "no:cacheprovider",
        timeout=120,
    )
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*time limit per test: 3 s; the first test 1 s more for the implementation's first "
            "call*",
            "*ImplementationHang: STEP-1 on cpu/float64: the test ran past its time limit of 3 s "
            "(--conformance-timeout) and the first test's 1 s for the first call*",
        ],
        consecutive=False,
    )
    outcomes = result.parseoutcomes()
    assert (outcomes.get("failed"), outcomes.get("passed")) == (1, 1), out[-3000:]
