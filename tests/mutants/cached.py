"""Each mutant's run on its own clauses, made once per test session: the kill check
(`tests/test_mutants.py`) and the diagnosis checks (`tests/test_suite_diagnoses.py`) read
the same run, so that asserting the messages costs no second run.
"""

from __future__ import annotations

from functools import cache

from tests.mutants import runner
from tests.mutants.base import adapter_for
from tests.mutants.registry import impl_option
from tests.mutants.zoo import MUTANTS, Mutant

BY_NAME = {m.name: m for m in MUTANTS}


def claimed(scheduler: type, dtypes: tuple[str, ...] | None) -> list[str]:
    """`dtypes` (default: every one) that the scheduler's adapter claims."""
    claims = adapter_for(scheduler, "probe").capabilities.dtypes
    return [d for d in (dtypes or claims) if d in claims]


@cache
def own_clauses_run(name: str) -> runner.SuiteRun:
    """The mutant against the tests of the clauses it declares, on its own dtypes."""
    mutant: Mutant = BY_NAME[name]
    return runner.run(impl_option(name), mutant.breaks, claimed(mutant.scheduler, mutant.dtypes))


def full_message(run: runner.SuiteRun, clause: str, dtype: str = "float64") -> str:
    """The first failure message of `clause` on `dtype` in full: the report keeps its first
    400 characters, the run's output the whole line."""
    (cell,) = [c for c in run.cells if c["clause"] == clause and c["dtype"] in (dtype, "-")][:1]
    short = next(m["message"] for m in cell["messages"] if m["status"] != "passed")
    head = short[:-3] if short.endswith("...") else short
    tail = head.split("diagnosis:", 1)[-1]
    for line in run.output.splitlines():
        if tail in line and not line.endswith("..."):
            return head + line.split(tail, 1)[1]
    return short
