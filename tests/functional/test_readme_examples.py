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
    "drawn": (None, ["XT-1", "STEP-3", "CONV-1"]),
    "first_point": (None, ["XT-1", "STEP-3", "CONV-1"]),
    "required": (None, ["CFG-1", "STEP-3", "CONV-1"]),
    "sigmas_zero": (None, ["STEP-3", "STEP-4", "CONV-1"]),
}


def examples() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    return dict(re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", text, flags=re.DOTALL))


def test_every_example_is_run() -> None:
    assert set(examples()) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_and_passes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs, clauses = EXAMPLES[name]
    if needs:
        pytest.importorskip(needs)
    package = tmp_path / "my_cm_examples"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / f"{name}.py").write_text(examples()[name])
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        result = runner.run(
            f"my_cm_examples.{name}:adapter",
            clauses,
            ["float64"],
            extra=[f"--hypothesis-profile={PROFILE}"],
        )
    finally:
        for module in [m for m in sys.modules if m.startswith("my_cm_examples")]:
            del sys.modules[module]
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert set(clauses) <= result.passed()
