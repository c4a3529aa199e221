"""The README's "Gate a functional sampler" example runs as written, its adapter is about 20
lines, and the suite's verdict on it is the one the README states."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.functional.test_zoo import PROFILE
from tests.mutants import runner

README = Path(__file__).resolve().parents[2] / "README.md"


def example() -> str:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- BEGIN functional -->", 1)[1].split("<!-- END functional -->", 1)[0]
    block = re.sub(r"<!-- example: \w+ -->\n```python\n.*?```", "", block, flags=re.DOTALL)
    found = re.findall(r"```python\n(.*?)```", block, flags=re.DOTALL)
    assert len(found) == 1, "the functional block of README.md must hold one python example"
    return found[0]


@pytest.fixture
def readme_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    package = tmp_path / "my_cm"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "conformance.py").write_text(example())
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_cm.conformance"
    for name in [m for m in sys.modules if m == "my_cm" or m.startswith("my_cm.")]:
        del sys.modules[name]


def test_the_adapter_is_about_twenty_lines() -> None:
    source = example()
    adapter = source[source.index("def adapter()") :]
    assert len(adapter.strip().splitlines()) <= 20


def test_readme_example_gets_the_verdict_the_readme_states(readme_module: str) -> None:
    result = runner.run(
        f"{readme_module}:adapter",
        ["CFG-1", "SCHED-1", "STEP-3", "STEP-4", "CONV-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert set(result.violated()) == {"STEP-4"}, {c: result.messages(c) for c in result.failed()}
    assert any(
        m.startswith(
            "STEP-4 violated (SHOULD) on cpu/float64: noise scale after the last evaluation"
        )
        for m in result.messages("STEP-4")
    ), result.messages("STEP-4")
    assert {"CFG-1", "SCHED-1", "STEP-3", "CONV-1"} <= result.passed()
