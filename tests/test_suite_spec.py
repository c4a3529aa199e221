"""SPEC.md and the suite agree: every clause is checked by a test, every test names a clause
of SPEC.md, and every clause states its rule; the tolerances are tight enough to catch the
planted errors SPEC.md promises (checked on the bounds themselves, at the default config)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from conformance import truth
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring import bounds
from conformance.protocol import clauses
from conformance.protocol.values import TimestepSpec

SUITE = Path(__file__).resolve().parents[1] / "conformance"


def _clauses_of_tests() -> dict[str, list[str]]:
    """Test function -> the ids of its `@pytest.mark.clause(...)` decorators."""
    found: dict[str, list[str]] = {}
    for path in sorted(SUITE.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                ids = [
                    d.args[0].value
                    for d in node.decorator_list
                    if isinstance(d, ast.Call) and ast.unparse(d.func) == "pytest.mark.clause"
                ]
                found[f"{path.name}::{node.name}"] = ids
    return found


def test_every_test_names_exactly_one_known_clause() -> None:
    known = clauses.clauses()
    bad = {t: ids for t, ids in _clauses_of_tests().items() if len(ids) != 1 or ids[0] not in known}
    assert not bad, f"tests without exactly one clause of SPEC.md: {bad}"


def test_every_clause_is_checked_by_a_test() -> None:
    checked = {ids[0] for ids in _clauses_of_tests().values() if ids}
    unchecked = [c for c in clauses.clauses() if c not in checked]
    assert not unchecked, f"clauses of SPEC.md no test checks: {unchecked}"


#: A clause's `Test:` line: the line under its heading, naming its tests as
#: `conformance/test_<area>.py::test_name`, comma-separated.
TEST_LINE = re.compile(r"^###\s+([A-Z]+-\d+):.*\nTest:(.*)$", re.MULTILINE)
POINTER = re.compile(r"`conformance/(test_\w+\.py::test_\w+)`")


def named_tests(spec_text: str) -> dict[str, list[str]]:
    """Clause id -> the tests its `Test:` line names (`test_step.py::test_renoise_scale`)."""
    return {m[1]: POINTER.findall(m[2]) for m in TEST_LINE.finditer(spec_text)}


def pointer_errors(spec_text: str, marked: dict[str, list[str]]) -> list[str]:
    """What is wrong with SPEC.md's `Test:` lines, given each test's clause markers: a clause
    without the line, a named test that does not exist or does not carry the clause's
    marker, a test with the marker that the line leaves out."""
    named = named_tests(spec_text)
    errors = []
    for clause in clauses.clauses():
        if not named.get(clause):
            errors.append(f"{clause}: no `Test:` line under its heading")
            continue
        for test in named[clause]:
            if test not in marked:
                errors.append(f"{clause}: names {test}, which does not exist")
            elif clause not in marked[test]:
                errors.append(f"{clause}: names {test}, whose marker is {marked[test]}")
        carrying = sorted(t for t, ids in marked.items() if clause in ids)
        left_out = [t for t in carrying if t not in named[clause]]
        if left_out:
            errors.append(f"{clause}: its `Test:` line leaves out {left_out}")
    return errors


def test_every_clause_names_its_tests() -> None:
    """SPEC.md's `Test:` lines and the clause markers agree, so a reader goes from a clause
    to its test in one hop."""
    errors = pointer_errors(clauses.spec_text(), _clauses_of_tests())
    assert not errors, "SPEC.md's `Test:` lines are off:\n" + "\n".join(errors)


def test_a_wrong_test_pointer_is_caught() -> None:
    """The check above fails on a renamed test, a test of another clause, a missing line and
    a test left out (so that it cannot pass on a SPEC.md it does not read)."""
    text, marked = clauses.spec_text(), _clauses_of_tests()
    line = "Test: `conformance/test_step.py::test_renoise_scale`"
    assert line in text and not pointer_errors(text, marked)
    wrong = {
        "renamed": line.replace("test_renoise_scale", "test_renoise"),
        "another clause": line.replace("test_renoise_scale", "test_clamp"),
        "missing": "",
    }
    for case, replacement in wrong.items():
        errors = pointer_errors(
            text.replace(line + "\n", replacement + "\n" if replacement else ""), marked
        )
        assert errors and all(e.startswith("STEP-3:") for e in errors), (case, errors)
    marked_twice = {**marked, "test_step.py::test_new": ["STEP-3"]}
    assert pointer_errors(text, marked_twice) == [
        "STEP-3: its `Test:` line leaves out ['test_step.py::test_new']"
    ]


def test_every_clause_states_its_rule() -> None:
    text = clauses.spec_text()
    for clause in clauses.clauses():
        body = re.split(rf"^### {re.escape(clause)}:.*$", text, flags=re.MULTILINE)[1]
        body = re.split(r"^##", body, flags=re.MULTILINE)[0]
        assert len(body.split()) >= 8, f"{clause} has no text in SPEC.md"


def _default_step(dtype: str, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A first step of the default schedule [80, sigma(22/39)] on typical inputs."""
    rng = np.random.default_rng(seed)
    x, F, z = 80.0 * rng.standard_normal(256), rng.standard_normal(256), rng.standard_normal(256)
    exact = truth.schedule(DEFAULT_CONFIG, TimestepSpec(timesteps=(22, 0)))
    bound, _ = bounds.step_bound(DEFAULT_CONFIG, exact.ramps[0], exact.ramps[1], x, F, z, dtype)
    return x, F, z, bound


@pytest.mark.parametrize(("dtype", "delta"), [("float32", 1e-5), ("float64", 1e-11)])
def test_step_bound_catches_the_promised_relative_errors(dtype: str, delta: float) -> None:
    """SPEC.md, "Tight enough": a relative error delta in c_out or in the noise scale moves
    prev_sample by delta |c_out F| or delta s g |z|, beyond the bound on most elements."""
    x, F, z, bound = _default_step(dtype)
    sigma = truth.schedule(DEFAULT_CONFIG, TimestepSpec(timesteps=(22, 0))).sigmas
    _, c_out = truth.boundary_scalings(DEFAULT_CONFIG, sigma[:1])
    g = truth.noise_scale(DEFAULT_CONFIG, float(sigma[1]))
    assert np.mean(delta * abs(c_out[0]) * np.abs(F) > bound) > 0.25
    assert np.mean(delta * g * np.abs(z) > bound) > 0.25


def test_schedule_bound_catches_a_float16_rounded_schedule() -> None:
    exact = truth.schedule(DEFAULT_CONFIG, TimestepSpec(num_inference_steps=40))
    sigmas = exact.sigmas[:-1]
    halved = sigmas.astype(np.float16).astype(np.float64)
    bound = bounds.schedule_rel_bound(DEFAULT_CONFIG, exact.ramps) * sigmas
    assert np.mean(np.abs(halved - sigmas) > bound) > 0.9
