"""The clauses of conformance/SPEC.md: ids and titles, read from the document itself so
that the tests, the report and the text cannot drift apart.

A clause is a level-3 heading `### AREA-N: title`; everything up to the next heading is
its text (formula, exact value, tolerance and derivation). Its normative level (RFC 2119)
is a line `Level: MUST` or `Level: SHOULD` (followed by the reason) in that text; a clause
without one is MUST.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

HEADING = re.compile(r"^###\s+([A-Z]+-\d+):\s*(.+?)\s*$", re.MULTILINE)
LEVEL = re.compile(r"^\**Level:?\**:?\s*\**(MUST|SHOULD)\b", re.MULTILINE)
LEVELS = ("MUST", "SHOULD")


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


@lru_cache(maxsize=1)
def levels() -> dict[str, str]:
    """Clause id -> "MUST" or "SHOULD" (RFC 2119), from each clause's `Level:` line."""
    text = spec_text()
    headings = list(HEADING.finditer(text))
    found: dict[str, str] = {}
    for i, match in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        level = LEVEL.search(text, match.end(), end)
        found[match.group(1)] = level.group(1) if level else "MUST"
    return found


def level(clause: str) -> str:
    """The normative level of `clause` ("MUST" for a clause that states none)."""
    return levels().get(clause, "MUST")
