"""Every file path and every dotted name that the project's docs, docstrings and comments
point to exists, so that a pointer cannot outlive a move.

Paths: any `conformance/...`, `reference/...`, `tests/...`, `notebooks/...`, `golden/...`,
`benchmarks/...` or `.ci/...` written in a Markdown file, a Python module, pyproject.toml, a
notebook or `.ci/run` names a file or folder of the checkout (or, written as a stem or a
prefix, the start of one: `golden/colorization_ts_0_22_39`, `conformance/test_`). Dotted names
in backquotes (`conformance.functional.FunctionalSampler`) import and resolve.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = r"(?:conformance|reference|tests|notebooks|golden|benchmarks|\.ci)"
PATH = re.compile(rf"(?<![\w/.\-]){PREFIXES}/[\w./\-]*[\w/]")
DOTTED = re.compile(r"`((?:conformance|reference|tests|benchmarks)(?:\.\w+)+)(?:\(.*?\))?`")
#: Paths of other repositories that the docs cite, with whose they are.
ELSEWHERE = {
    # diffusers' own test module for the class (README, "Drop-in for diffusers")
    "tests/schedulers/test_scheduler_consistency_model.py",
}
SKIP_PARTS = {".git", ".venv", "__pycache__", ".hypothesis", "build", "dist"}
SUFFIXES = {".md", ".py", ".toml", ".ipynb"}


def documents() -> list[Path]:
    """The checkout's docs, modules, notebooks and CI script (this module excepted: it names
    a missing path on purpose)."""
    found = [ROOT / ".ci" / "run"]
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_PARTS and not d.endswith(".egg-info")]
        found += [Path(folder) / f for f in files if Path(f).suffix in SUFFIXES]
    return sorted(p for p in found if p != Path(__file__).resolve())


def exists(pointer: str) -> bool:
    """A file or folder of the checkout, or the start of one's name."""
    target = ROOT / pointer.rstrip(".")
    if target.exists():
        return True
    return target.parent.is_dir() and any(
        p.name.startswith(target.name) for p in target.parent.iterdir()
    )


def resolves(dotted: str) -> bool:
    """`a.b.c` is a module, or a module and attributes of it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_the_scan_sees_the_docs() -> None:
    """The scan reaches the files that hold most pointers (else the tests below pass empty)."""
    names = {p.relative_to(ROOT).as_posix() for p in documents()}
    docs = {"README.md", "CONTRIBUTING.md", "conformance/SPEC.md", "pyproject.toml", ".ci/run"}
    assert docs <= names, names
    assert exists("conformance/SPEC.md") and not exists("conformance/entry_point.py")
    assert resolves("conformance.functional.FunctionalSampler")
    assert not resolves("conformance.functional.NoSuchThing")


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    missing = sorted({m.group(0) for m in PATH.finditer(text)} - ELSEWHERE)
    missing = [p for p in missing if "*" not in p and not exists(p)]
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"


@pytest.mark.parametrize(
    "doc",
    [p for p in documents() if p.suffix == ".md"],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_every_dotted_name_a_doc_names_resolves(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    broken = sorted({m.group(1) for m in DOTTED.finditer(text) if not resolves(m.group(1))})
    assert not broken, f"{doc.relative_to(ROOT)} names what does not import: {broken}"
