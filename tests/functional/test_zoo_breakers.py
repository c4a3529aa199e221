"""Meta-tests of the functional zoo's reach: every clause a functional sampler can be checked
on is broken by some member (`tests/functional/test_zoo.py` runs each member's exact
verdict), each breaker declares what Algorithm 1 says its departure breaks, and the branch
of STEP-2 that checks the clamp alone (no run without the clamp to compare with: a sampler
that always clamps) is seen failing.
"""

from __future__ import annotations

from tests.functional import zoo_breakers
from tests.functional.zoo import CHECKED, ZOO
from tests.mutants import runner


def test_every_checked_clause_is_broken_by_a_member() -> None:
    """CONV-1 is broken by the wrong declarations of test_zoo.py; a clause the suite does
    not run on a functional sampler today is held in NOT_RUN, with its reason."""
    held = {c for clauses in zoo_breakers.NOT_RUN.values() for c in clauses}
    broken = {c for member in ZOO.values() for c in member.fails}
    unbroken = sorted(set(CHECKED) - broken - held - {"CONV-1"})
    assert not unbroken, f"no member of the functional zoo breaks {unbroken}"
    now_broken = sorted(held & broken)
    assert not now_broken, f"{now_broken} are broken now: remove them from NOT_RUN"


def test_breakers_declare_algorithm_1_and_their_cascades_apart() -> None:
    for name, member in zoo_breakers.BREAKERS.items():
        intended = zoo_breakers.ALGORITHM_1[name]
        not_run = zoo_breakers.NOT_RUN.get(name, {})
        cascades = zoo_breakers.CASCADES.get(name, {})
        assert set(intended) - set(not_run) <= set(member.fails), name
        assert set(member.fails) - set(intended) == set(cascades), name
        assert not set(cascades) & set(intended), f"{name}: a cascade is also intended"


def test_clamp_checked_alone_fails_where_no_run_without_it() -> None:
    """upper_clamp clamps from above only. Declared as always clamping (no clip_denoised
    parameter), STEP-2 has no run without the clamp on the same inputs and checks the clamp
    itself (nothing beyond +-1; an element whose true denoised value lies beyond +-1 is +-1):
    that branch fails too, on a value below -1 passed through."""
    result = runner.run("tests.functional.zoo:upper_clamp_always", ["STEP-2"], ["float64"])
    assert "STEP-2" in result.violated(), result.output[-3000:]
    alone = [
        line
        for line in result.output.splitlines()
        if "prev_sample within [-1, 1]" in line
        or "elements whose denoised value lies beyond +-1, clamped to +-1" in line
    ]
    assert alone, result.output[-3000:]
