"""The fingerprint of what decides a mutant's verdict, stored with the landing record so that
a record measured on other code reads as stale (`tests/test_mutants.py`).

What decides a verdict: the suite's sources (every module under conformance/), the
reference modules they and the mutant zoo import (found by following imports from them),
the mutant zoo and its runner (base, zoo, registry, runner, landing), the golden files the
GOLD clauses replay, the clause headings and `Level:` lines of SPEC.md (the only parts
of it the suite reads), and the hypothesis profile the mutants run under.

What does not: comments, docstrings (except those of the suite's test functions, which
hypothesis's derandomized seed is computed from), SPEC.md's prose, README files, and the
installed libraries' versions (CI installs the newest; the live sample in
`tests/test_mutants.py` runs the mutants on whatever is installed).
"""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hypothesis import settings

from conformance.protocol import clauses

REPO = Path(__file__).resolve().parents[2]
#: The mutant zoo's own modules; each is followed for the reference modules it imports.
ZOO = tuple(
    REPO / "tests" / "mutants" / f"{name}.py"
    for name in ("base", "zoo", "registry", "runner", "landing")
)
#: Packages whose modules are followed (imports of anything else are the environment's).
PACKAGES = ("conformance", "reference", "tests")


def module_path(name: str) -> Path | None:
    """The file of a dotted module name inside this repository, if it is one."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(path: Path) -> set[Path]:
    """The repository modules `path` imports (`import a.b`, `from a import b`, relative)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, node.module] if node.module else parent)
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # a.b.c imports a and a.b too
            hit = module_path(".".join(parts[:i]))
            if hit is not None:
                found.add(hit)
    return found


def sources() -> list[Path]:
    """Every Python module that decides a verdict: conformance/, the zoo, and what they import
    from the repository, transitively."""
    todo = [*sorted((REPO / "conformance").rglob("*.py")), *ZOO]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(imported(path) - seen)
    return sorted(seen)


def golden_files() -> list[Path]:
    """The golden trajectories and their manifest (README.md aside)."""
    return sorted(p for p in (REPO / "golden").iterdir() if p.suffix in (".json", ".safetensors"))


def _docstring_lines(tree: ast.AST, keep_tests: bool) -> set[int]:
    """Line numbers of docstrings, but those of test functions when `keep_tests`."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if keep_tests and getattr(node, "name", "").startswith("test"):
            continue
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            lines.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines


def normalized(path: Path) -> str:
    """A module's code without comments, blank lines or docstrings: its tokens, one line each
    (stable across Python versions, unlike an AST dump)."""
    text = path.read_text(encoding="utf-8")
    drop = _docstring_lines(ast.parse(text), keep_tests=path.name.startswith("test_"))
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    kept = [
        f"{tokenize.tok_name[t.type]} {t.string}"
        for t in tokens
        if t.type not in (tokenize.COMMENT, tokenize.NL) and t.start[0] not in drop
    ]
    return "\n".join(kept)


def spec_structure() -> str:
    """What the suite reads of SPEC.md: each clause and its level."""
    return "\n".join(f"{c} {clauses.level(c)} {title}" for c, title in clauses.clauses().items())


def profile(name: str) -> str:
    """The settings of a hypothesis profile that change which examples run."""
    p = settings.get_profile(name)
    return (
        f"max_examples={p.max_examples} derandomize={p.derandomize} "
        f"database={'none' if p.database is None else 'yes'} "
        f"phases={sorted(phase.name for phase in p.phases)}"
    )


def parts(profile_name: str) -> dict[str, str]:
    """Each input of the fingerprint by name, as hashed."""
    out = {str(p.relative_to(REPO)): normalized(p) for p in sources()}
    for p in golden_files():
        out[str(p.relative_to(REPO))] = hashlib.sha256(p.read_bytes()).hexdigest()
    out["SPEC.md clauses"] = spec_structure()
    out[f"hypothesis profile {profile_name}"] = profile(profile_name)
    return out


def digest(items: Iterable[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for name, text in sorted(items):
        h.update(name.encode() + b"\0" + hashlib.sha256(text.encode()).digest())
    return h.hexdigest()[:16]


def fingerprint(profile_name: str) -> dict[str, Any]:
    """{"digest": one hash of everything, "inputs": each input's own short hash}: the record
    keeps both, so that a stale record says which inputs changed."""
    p = parts(profile_name)
    return {
        "digest": digest(p.items()),
        "inputs": {
            name: hashlib.sha256(text.encode()).hexdigest()[:12] for name, text in p.items()
        },
    }
