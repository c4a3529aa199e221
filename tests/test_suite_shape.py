"""The clause tests read like their clauses: a test is its clause marker, its strategy and its
body. The plugin (`conformance.harness.plugin`) gives every clause test what each once
carried by hand: the settings that let `@given` share the `measure` fixture among its
examples, and the collection of violations that raises what the checks found at the end.
Checked on the source of conformance/test_*.py (the decorators each clause test carries, and
no module-level copy of either), and on a run: a violation the checks only collected still
fails its clause.
"""

from __future__ import annotations

import ast
import statistics
from pathlib import Path

from tests.mutants import runner
from tests.mutants.registry import impl_option

SUITE = Path(__file__).resolve().parents[1] / "conformance"
#: The median number of decorators of a clause test: the marker, the strategy, and one
#: more (a `requires` marker or a pinned `@example`).
MEDIAN_DECORATORS = 3
#: What the plugin applies: no clause module defines, imports or applies these.
PLUGINS_JOB = ("collect_violations", "fixture_settings", "settings")


def _name(decorator: ast.expr) -> str:
    return ast.unparse(decorator.func if isinstance(decorator, ast.Call) else decorator)


def decorators(folder: Path) -> dict[str, list[str]]:
    """Each clause test of `folder`'s test_*.py ("module::function") -> its decorators."""
    found = {}
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef):
                names = [_name(d) for d in node.decorator_list]
                if "pytest.mark.clause" in names:
                    found[f"{path.name}::{node.name}"] = names
    return found


def plugins_job_done_by_hand(folder: Path) -> list[str]:
    """Where a module of `folder` names what the plugin applies ("module:line: name")."""
    found = []
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.alias):
                name = node.asname or node.name
            else:
                continue
            if name in PLUGINS_JOB:
                found.append(f"{path.name}:{node.lineno}: {name}")
    return found


def test_median_clause_test_carries_at_most_three_decorators() -> None:
    counts = {test: len(names) for test, names in decorators(SUITE).items()}
    assert counts, f"no clause test found in {SUITE}"
    median = statistics.median(counts.values())
    most = sorted(counts.items(), key=lambda item: -item[1])[:5]
    assert median <= MEDIAN_DECORATORS, (
        f"clause tests carry a median of {median} decorators, at most {MEDIAN_DECORATORS} "
        f"expected; the most: {most}"
    )


def test_no_clause_module_does_the_plugins_job() -> None:
    found = plugins_job_done_by_hand(SUITE)
    assert not found, f"settings or violation collection by hand (the plugin applies them): {found}"


def test_shape_checks_catch_the_ceremony(tmp_path: Path) -> None:
    """Planted: a module written the old way, with its settings copy and the collection applied
    by hand (six decorators on its test)."""
    (tmp_path / "test_planted.py").write_text(
        "from hypothesis import HealthCheck, example, given, settings\n"
        "from conformance.measuring.checks import collect_violations\n"
        "fixture_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])\n"
        "@pytest.mark.clause('STEP-1')\n"
        "@pytest.mark.requires('denoise')\n"
        "@collect_violations\n"
        "@fixture_settings\n"
        "@given(case=cases())\n"
        "@example(case=default_case())\n"
        "def test_denoise(impl, measure, case):\n"
        "    pass\n",
        encoding="utf-8",
    )
    assert [len(names) for names in decorators(tmp_path).values()] == [6]
    found = plugins_job_done_by_hand(tmp_path)
    assert {line.split(": ")[1] for line in found} == set(PLUGINS_JOB), found
    assert len(found) == 6, found  # two imports, the copy and its call, the two decorators


def test_a_violation_only_collected_still_fails_its_clause() -> None:
    """SCAL-1 against c_out off by 0.1 %: its checks collect the violation and raise nothing;
    the plugin's collection raises it at the end of the test (without it the test would pass),
    and the settings it applies keep `@given` from refusing the `measure` fixture."""
    run = runner.run(impl_option("c_out_tenth_percent"), ["SCAL-1"], ["float64"])
    assert run.violated() == {"SCAL-1": {"float64"}}, run.output[-2000:]
