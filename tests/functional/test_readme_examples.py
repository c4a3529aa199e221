"""Each convention example of the README's "What to declare" (`<!-- example: NAME -->`) runs
as written and gets a passing verdict on the clauses it exercises."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.functional.test_zoo import PROFILE
from tests.mutants import runner

README = Path(__file__).resolve().parents[2] / "README.md"
#: example -> (a module it needs, the clauses run)
EXAMPLES = {
    "global": (None, ["STEP-3", "STEP-4", "CONV-1"]),
    "jax": ("jax", ["STEP-3", "CONV-1"]),
    "own_grid": (
        None,
        ["SCHED-1", "GOLD-1", "CONV-1"],
    ),  # its grid; the step clauses draw custom lists
    "grid_n_plus_1": (None, ["SCHED-1", "GOLD-1", "STEP-3", "CONV-1"]),
    "drawn": (None, ["XT-1", "STEP-3", "CONV-1"]),
    "first_point": (None, ["XT-1", "STEP-3", "CONV-1"]),
    "required": (None, ["CFG-1", "STEP-3", "CONV-1"]),
    "sigmas_zero": (None, ["STEP-3", "STEP-4", "CONV-1"]),
    "generator_x_T": (None, ["XT-1", "STEP-3", "NOISE-2", "CONV-1"]),
    "network_steps": (None, ["SCHED-1", "STEP-1", "CONV-1"]),
    "embedding": (None, ["STEP-1", "STEP-3", "CONV-1"]),
}


def examples() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    return dict(re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", text, flags=re.DOTALL))


def test_every_example_is_run() -> None:
    assert set(examples()) == set(EXAMPLES)


#: example -> (text, the text with a bug planted, the clause it must fail): the examples'
#: checks can fail.
PLANTED = {
    "generator_x_T": ("x = sigma_max * z()", "x = z()", "XT-1"),
    "grid_n_plus_1": ('grid="n+1"', 'grid="n"', "SCHED-1"),
    "network_steps": ("out = (sigma - sigma_min) * sd", "out = sigma * sd", "STEP-1"),
    "embedding": ("math.exp(4 * math.atan2", "math.exp(3 * math.atan2", "CONV-1"),
}


def verdict(
    name: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> runner.SuiteRun:
    """The example `source`, written as the README's module, on its clauses."""
    needs, clauses = EXAMPLES[name]
    if needs:
        pytest.importorskip(needs)
    package = tmp_path / "my_cm_examples"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        return runner.run(
            f"my_cm_examples.{name}:adapter",
            clauses,
            ["float64"],
            extra=[f"--hypothesis-profile={PROFILE}"],
        )
    finally:
        for module in [m for m in sys.modules if m.startswith("my_cm_examples")]:
            del sys.modules[module]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_and_passes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = verdict(name, examples()[name], tmp_path, monkeypatch)
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert set(EXAMPLES[name][1]) <= result.passed()


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_example_with_a_planted_bug_fails_its_clause(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, planted, clause = PLANTED[name]
    source = examples()[name]
    assert source.count(text) == 1, f"{name}: the README no longer reads {text!r}"
    result = verdict(name, source.replace(text, planted), tmp_path, monkeypatch)
    assert clause in result.violated(), {c: result.messages(c) for c in result.failed()}
