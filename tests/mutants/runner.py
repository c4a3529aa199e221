"""Running chosen clauses of the conformance suite in-process, and reading its verdict.

`run(impl, clauses, dtypes)` runs `pytest conformance --impl=IMPL` restricted to the test
functions that check the given clauses (found by their `@pytest.mark.clause` marker in the
source) and to the given dtypes, on the CPU, and returns the suite's JSON report
(`--conformance-report`) as a `SuiteRun`. It runs in this process (`pytest.main`): torch,
mpmath and the suite are imported once for all runs. The hypothesis profile "mutants" is
the suite's "ci" profile without the shrink phase: a failing example is reported as found
(the verdict is the same, the run much shorter). The caller's hypothesis profile is restored
after each run. The suite's test modules are imported afresh by each run and the caller's
copies put back after it: `@given` takes its settings from the profile loaded when its module
is imported, so a module kept from a run under another profile (the functional zoo's, say)
would run, or be read, with that profile's number of examples.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings

from conformance.harness import plugin as _plugin  # noqa: F401  (imported once, kept across runs)
from conformance.inputs.strategies import register_profiles
from conformance.protocol.adapter import Adapter

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "conformance"
PROFILE = "mutants"

#: An adapter made in this process (a perturbed class, say), reached as `--impl=...:PROBE`.
PROBE: Adapter | None = None

register_profiles()
settings.register_profile(
    PROFILE, settings.get_profile("ci"), phases=(Phase.explicit, Phase.reuse, Phase.generate)
)


@lru_cache(maxsize=1)
def clause_tests() -> dict[str, tuple[str, ...]]:
    """Clause id -> the suite's test functions that check it ("path::name"), read from the
    `@pytest.mark.clause("ID")` decorators of conformance/test_*.py."""
    found: dict[str, list[str]] = {}
    for path in sorted(SUITE.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and ast.unparse(decorator.func) == "pytest.mark.clause"
                    and decorator.args
                    and isinstance(decorator.args[0], ast.Constant)
                ):
                    found.setdefault(decorator.args[0].value, []).append(f"{path}::{node.name}")
    return {clause: tuple(ids) for clause, ids in found.items()}


def targets(clauses: Iterable[str] | None) -> list[str]:
    """The node ids that check `clauses` (None: the whole suite)."""
    if clauses is None:
        return [str(SUITE)]
    table = clause_tests()
    missing = [c for c in clauses if c not in table]
    if missing:
        raise KeyError(f"no test of the suite checks {missing}; known: {sorted(table)}")
    return list(dict.fromkeys(node for c in clauses for node in table[c]))


def commit() -> str:
    """The short hash of HEAD, for a record ("unknown" outside a git checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class SuiteRun:
    """The suite's verdict on one implementation."""

    impl: str
    exit_code: int
    report: dict[str, Any]
    seconds: float
    output: str

    @property
    def cells(self) -> list[dict[str, Any]]:
        return self.report.get("clauses", [])

    def failed(self) -> dict[str, set[str]]:
        """Clause -> the dtypes ("-" for dtype-free tests) on which it failed."""
        out: dict[str, set[str]] = {}
        for cell in self.cells:
            if _failing(cell["status"]):
                out.setdefault(cell["clause"], set()).add(cell["dtype"])
        return out

    def violated(self) -> dict[str, set[str]]:
        """Clause -> dtypes on which it failed with its own ClauseViolation (the message
        begins "ID violated"), not with an error of the suite or an unrelated exception."""
        out: dict[str, set[str]] = {}
        for cell in self.cells:
            if _failing(cell["status"]) and any(
                m.startswith(f"{cell['clause']} violated") for m in _failure_texts(cell)
            ):
                out.setdefault(cell["clause"], set()).add(cell["dtype"])
        return out

    def passed(self) -> set[str]:
        """Clauses that passed on every dtype they ran on (skips aside)."""
        statuses: dict[str, set[str]] = {}
        for cell in self.cells:
            statuses.setdefault(cell["clause"], set()).add(cell["status"])
        return {c for c, s in statuses.items() if "passed" in s and s <= {"passed", "skipped"}}

    def messages(self, clause: str) -> list[str]:
        """The failure messages of `clause`, every dtype."""
        return [m for cell in self.cells if cell["clause"] == clause for m in _failure_texts(cell)]


def _failing(status: str) -> bool:
    """A cell that failed, MUST or SHOULD (whatever name the report gives the SHOULD status)."""
    return status not in ("passed", "skipped", "known deviation")


def _failure_texts(cell: dict[str, Any]) -> list[str]:
    """The messages of a report cell's failed tests (a message is a string, or a dict with
    "status" and "message")."""
    texts = []
    for note in cell.get("messages", []):
        if isinstance(note, dict):
            if _failing(str(note.get("status"))):
                texts.append(str(note.get("message", "")))
        elif _failing(cell["status"]):
            texts.append(str(note))
    return texts


def run(
    impl: str,
    clauses: Iterable[str] | None = None,
    dtypes: Iterable[str] | None = None,
    *,
    quiet: bool = True,
    extra: Iterable[str] = (),
) -> SuiteRun:
    """The suite (or the tests of `clauses`) against `--impl=impl` on the CPU, in-process."""
    with tempfile.TemporaryDirectory(prefix="cm-mutants-") as tmp:
        report_path = Path(tmp) / "report.json"
        args = [
            *targets(None if clauses is None else list(clauses)),
            f"--impl={impl}",
            "--device=cpu",
            "--conformance-claims=trust",  # clauses, not start-up probes, are what is measured
            f"--conformance-report={report_path}",
            f"--hypothesis-profile={PROFILE}",
            "-p",
            "no:cacheprovider",
            "-q",
            "--tb=line",
            f"--rootdir={REPO}",
            *extra,
        ]
        for dtype in dtypes or ():
            args += ["--dtype", dtype]
        previous = settings.get_current_profile_name()
        sink = io.StringIO()
        start = time.perf_counter()
        try:
            with (
                _own_test_modules(),
                contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext(),
            ):
                code = int(pytest.main(args))
        finally:
            settings.load_profile(previous)
        seconds = time.perf_counter() - start
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(
            f"the suite did not run against {impl} (exit code {code}):\n{sink.getvalue()[-3000:]}"
        )
    return SuiteRun(impl, code, report, seconds, sink.getvalue())


def _suite_test_module(name: str) -> bool:
    return name.startswith("conformance.test_")


@contextlib.contextmanager
def _own_test_modules() -> Iterator[None]:
    """The suite's test modules (conformance/test_*.py) imported afresh inside, under the
    run's profile; the caller's copies (or none) back afterwards."""
    package = sys.modules["conformance"]
    kept = {name: module for name, module in sys.modules.items() if _suite_test_module(name)}
    for name in kept:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in [n for n in sys.modules if _suite_test_module(n)]:
            del sys.modules[name]
            if name.count(".") == 1:  # the package's attribute, as `from conformance import`
                vars(package).pop(name.split(".")[1], None)
        sys.modules.update(kept)
        for name, module in kept.items():
            if name.count(".") == 1:
                setattr(package, name.split(".")[1], module)


def run_adapter(
    adapter: Adapter, clauses: Iterable[str] | None = None, dtypes: Iterable[str] | None = None
) -> SuiteRun:
    """`run` for an adapter object rather than an importable name."""
    global PROBE
    PROBE = adapter
    try:
        return run(f"{__name__}:PROBE", clauses, dtypes)
    finally:
        PROBE = None
