"""The suite's verdict on the functional zoo, clause by clause: a conforming sampler passes
every clause it can be checked on, and a deviating one fails the clauses of its departure
(each with its own ClauseViolation) and no others.

Each member runs in-process (`tests/mutants/runner.py`) against the clauses a functional
sampler can be checked on, on every dtype it claims, with a few hypothesis examples per
test (the explicit examples of each test always run): about 5 s per member on two cores.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from tests.functional.zoo import ZOO, Member
from tests.mutants import runner

PROFILE = "functional-zoo"
#: Few generated examples: the explicit examples pin each departure, the generated ones
#: vary the config around them.
settings.register_profile(
    PROFILE,
    settings.get_profile("ci"),
    max_examples=4,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)


def verdict(name: str, member: Member) -> runner.SuiteRun:
    claimed = member.adapter().capabilities.dtypes
    return runner.run(
        f"{member.adapter.__module__}:{name}",
        member.checked,
        claimed,
        extra=[f"--hypothesis-profile={PROFILE}", *member.options],
    )


@pytest.mark.parametrize("name", sorted(ZOO))
def test_verdict_per_clause(name: str) -> None:
    member = ZOO[name]
    result = verdict(name, member)
    violated = result.violated()
    missed = {
        clause: sorted(set(dtypes) - violated.get(clause, set()))
        for clause, dtypes in member.fails.items()
        if set(dtypes) - violated.get(clause, set())
    }
    assert not missed, (
        f"{name} ({member.departure}) was not caught on {missed}; "
        f"suite said { ({c: result.messages(c)[:1] or ['passed'] for c in missed}) }"
    )
    allowed = {*member.fails, *member.may_fail}
    extra = {c: result.messages(c)[:1] for c in result.failed() if c not in allowed}
    assert not extra, f"{name} ({member.departure or 'conforming'}) also failed {extra}"
    loud = sorted({c["clause"] for c in result.cells if c["clause"] in member.should and c["status"] == "failed"})  # fmt: skip
    assert not loud, f"{name}: {loud} failed as MUST, expected a SHOULD warning"
    unchecked = [c for c in member.must_pass if c not in result.passed()]
    assert not unchecked, f"{name}: {unchecked} did not pass (skipped or failed)"
    skipped_as_declared = [c for c in member.skips if c in result.passed() or c in result.failed()]
    assert not skipped_as_declared, f"{name}: {skipped_as_declared} ran, expected skipped"


@pytest.mark.parametrize(
    ("factory", "says"),
    [
        ("jax_style_declared_edm_time", "model time t = 250 log(sigma + 1e-44): at evaluation 0"),
        ("edm_declared_c_in_inside", "c_in inside the network (declared)"),
    ],
)
def test_a_wrong_declaration_fails_conv1(factory: str, says: str) -> None:
    result = runner.run(
        f"tests.functional.zoo:{factory}",
        ["CONV-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    messages = result.messages("CONV-1")
    assert "CONV-1" in result.violated() and any(says in m for m in messages), messages


#: diffusers' API, which a functional sampler does not have.
SCHEDULER_WORDS = ("scale_model_input", "step(...)", "set_timesteps", "injected noise")


@pytest.mark.parametrize(
    ("factory", "clause", "dtypes", "says"),
    [
        # a float64 result for a float32 sample (as ECT's sampler computes)
        ("float64_output", "STEP-9", ["float32"], "the sample it stepped to"),
        ("tau", "STEP-3", ["float64"], "handed through its noise hook 'draws'"),
    ],
)
def test_messages_name_what_a_functional_sampler_has(
    factory: str, clause: str, dtypes: list[str], says: str
) -> None:
    """Its evaluations, its time points in its own convention, its noise hook."""
    result = runner.run(
        f"tests.functional.zoo:{factory}",
        [clause],
        dtypes,
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    messages = result.messages(clause)
    assert messages and all(says in m for m in messages), messages
    shown = [ln for ln in result.output.splitlines() if "worst input" in ln or "violated" in ln]
    assert any(" evaluation " in ln for ln in shown), shown
    said = [w for w in SCHEDULER_WORDS if any(w in ln for ln in shown)]
    assert not said, f"{factory}'s {clause} messages name {said}: {shown[:2]}"


def test_the_count_of_evaluations_is_conv1_s_or_sched1_s() -> None:
    """Given time points, another count of evaluations is a convention that does not hold
    (CONV-1 names the count expected and seen); with a step count n, the points it evaluates
    are its own grid's, held to SCHED-1 (n points), and CONV-1 says so."""
    from conformance.functional import ConventionError
    from tests.functional.zoo_generator import generator_denoises_twice
    from tests.functional.zoo_public import grid_one_too_many

    with pytest.raises(ConventionError, match=r"expected 3 evaluations, one per evaluation point \(the sampler was given \[0, 22, 39, 39\]\), seen 6"):  # fmt: skip
        generator_denoises_twice().check_conventions("cpu", "float64")
    held = grid_one_too_many().check_conventions("cpu", "float64")
    assert "time points (steps): 4 evaluations for n = 3 steps (the count is the schedule's: SCHED-1)" in held  # fmt: skip
    result = runner.run(
        "tests.functional.zoo:grid_one_too_many",
        ["SCHED-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    says = "of grid_one_too_many with n = 2 steps (time_points='steps'): returned a torch.Tensor with shape (4,), expected (3,)"  # fmt: skip
    assert any(says in m for m in result.messages("SCHED-1")), result.messages("SCHED-1")
