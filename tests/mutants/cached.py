"""Each mutant's run on its own clauses, made once per test session: the kill check
(`tests/test_mutants.py`) and the diagnosis checks (`tests/test_suite_diagnoses.py`) read
the same run, so that asserting the messages costs no second run. The run prints every
failed check's block in full (`--verbosity=1`), not the worst alone, for the diagnoses.
"""

from __future__ import annotations

import re
import textwrap
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
    return runner.run(
        impl_option(name),
        mutant.breaks,
        claimed(mutant.scheduler, mutant.dtypes),
        extra=["--verbosity=1"],  # after the runner's -q: every failed check's block in full
    )


def failure_blocks(run: runner.SuiteRun, clause: str, dtype: str = "float64") -> list[str]:
    """The failure blocks of `clause` on `dtype` (or dtype-free), the worst check first: the
    report's block, then each failed check of the test in full as the run prints it
    (`--verbosity=1`), each dedented to begin with "CLAUSE violated"."""
    cells = [c for c in run.cells if c["clause"] == clause and c["dtype"] in (dtype, "-")]
    blocks = [c["failure"] for c in cells if c.get("failure")]
    head = re.compile(
        rf"^(\s*)(?:\[\d+\] )?({re.escape(clause)} violated(?: \(SHOULD\))? on "
        rf"cpu(?:/{re.escape(dtype)})?: .*)$"
    )
    lines = run.output.splitlines()
    for i, line in enumerate(lines):
        match = head.match(line)
        if not match:
            continue
        body, depth = [], len(match.group(1))
        for following in lines[i + 1 :]:
            indent = len(following) - len(following.lstrip())
            if not following.strip() or indent <= depth:
                break
            body.append(following)
        block = "\n".join([match.group(2), *textwrap.dedent("\n".join(body)).splitlines()])
        blocks.append(block.replace("\n", "\n  ") if body else block)
    return list(dict.fromkeys(blocks))
