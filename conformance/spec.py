"""The clauses of conformance/SPEC.md: ids and titles, read from the document itself so
that the tests, the report and the text cannot drift apart.

A clause is a level-3 heading `### AREA-N: title`; everything up to the next heading is
its text (formula, exact value, tolerance and derivation).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

HEADING = re.compile(r"^###\s+([A-Z]+-\d+):\s*(.+?)\s*$", re.MULTILINE)


@lru_cache(maxsize=1)
def spec_text() -> str:
    return resources.files("conformance").joinpath("SPEC.md").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def clauses() -> dict[str, str]:
    """Clause id -> title, in the order of SPEC.md."""
    found: dict[str, str] = {}
    for match in HEADING.finditer(spec_text()):
        clause, title = match.groups()
        if clause in found:
            raise ValueError(f"SPEC.md defines clause {clause} twice")
        found[clause] = title
    return found


def area(clause: str) -> str:
    return clause.split("-")[0]
