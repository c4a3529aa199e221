"""`reference/` in three subpackages whose imports point one way: the numpy reference imports
no other part of `reference`, the torch scheduler and the toy models build on it, nothing in
`reference` imports the suite; and a module loads only what it needs (`reference/__init__.py`
imports nothing)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import reference

ROOT = Path(__file__).resolve().parents[1]
#: Subpackage -> the parts of the repository its modules may import.
ALLOWED = {
    "numpy_reference": {"reference.numpy_reference"},
    "torch_scheduler": {"reference.torch_scheduler", "reference.numpy_reference"},
    "toy_models": {"reference.toy_models", "reference.numpy_reference"},
}


def repository_imports(path: Path) -> set[str]:
    """The modules of this repository (`reference`, `conformance`, `tests`) `path` imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return {n for n in names if n.split(".")[0] in ("reference", "conformance", "tests")}


def layering_errors(modules: dict[str, set[str]]) -> list[str]:
    """Imports that break `ALLOWED`, given subpackage/module -> its repository imports."""
    errors = []
    for module, imported in sorted(modules.items()):
        allowed = ALLOWED[module.split("/")[0]]
        for name in sorted(imported):
            if not any(name == a or name.startswith(a + ".") for a in allowed):
                errors.append(f"reference/{module} imports {name}")
    return errors


def reference_modules() -> dict[str, set[str]]:
    return {
        path.relative_to(ROOT / "reference").as_posix(): repository_imports(path)
        for sub in ALLOWED
        for path in sorted((ROOT / "reference" / sub).glob("*.py"))
    }


def test_imports_point_one_way() -> None:
    modules = reference_modules()
    assert {m.split("/")[0] for m in modules} == set(ALLOWED), sorted(modules)
    assert not layering_errors(modules), layering_errors(modules)
    assert not repository_imports(ROOT / "reference" / "__init__.py")


def test_a_wrong_import_is_caught() -> None:
    modules = reference_modules()
    for module, planted in (
        ("numpy_reference/formulas.py", "reference.torch_scheduler.scheduler"),
        ("toy_models/gaussian_mixture.py", "reference.torch_scheduler.noise"),
        ("torch_scheduler/scheduler.py", "conformance.truth.oracle"),
    ):
        wrong = {**modules, module: modules[module] | {planted}}
        assert layering_errors(wrong) == [f"reference/{module} imports {planted}"]


def test_a_module_loads_only_what_it_needs() -> None:
    """In a fresh interpreter, the formulas load without the scheduler, torch or the other
    subpackages (the imports above keep the rest apart)."""
    code = (
        "import sys, reference.numpy_reference.formulas; "
        "print(sorted(m for m in sys.modules if m.startswith('reference')), 'torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == (
        "['reference', 'reference.numpy_reference', 'reference.numpy_reference.formulas'] False"
    )


def test_the_top_level_name_is_the_numpy_reference() -> None:
    from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler

    assert reference.CMStochasticIterativeScheduler is CMStochasticIterativeScheduler
    with pytest.raises(AttributeError, match="no attribute 'formulas_typo'"):
        reference.formulas_typo  # noqa: B018
