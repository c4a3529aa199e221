"""The suite's layers (`[tool.importlinter]` in pyproject.toml, checked by `lint-imports` in
.ci/run): the contract that keeps the clause modules on top lists them by name (import-linter
takes no `test_*` pattern), so every clause module must be in it; and the protocol's modules,
imported alone in a fresh interpreter, load nothing of the suite but the protocol (what an
implementer imports pulls in no harness, no measuring, no implementation)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_every_clause_module_is_in_the_contract_that_keeps_them_on_top() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    listed = next(set(c["forbidden_modules"]) for c in contracts if "clause modules" in c["name"])
    on_disk = {f"conformance.{p.stem}" for p in (REPO / "conformance").glob("test_*.py")}
    assert listed == on_disk, (
        f"clause modules not listed: {sorted(on_disk - listed)}; "
        f"listed but gone: {sorted(listed - on_disk)}"
    )


def loaded_by(module: str) -> list[str]:
    """The modules of the suite that importing `module` alone loads."""
    code = (
        f"import json, sys, {module}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'conformance')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("conformance.protocol.values", set()),
        ("conformance.protocol.violation", {"conformance.protocol.clauses"}),
        (
            "conformance.protocol.adapter",
            {
                "conformance.protocol.bridges",
                "conformance.protocol.clauses",
                "conformance.protocol.deviations",
                "conformance.protocol.values",
                "conformance.protocol.violation",
            },
        ),
    ],
)
def test_the_protocol_loads_nothing_of_the_suite_but_itself(module: str, allowed: set) -> None:
    expected = {"conformance", "conformance.protocol", module} | allowed
    assert set(loaded_by(module)) == expected
