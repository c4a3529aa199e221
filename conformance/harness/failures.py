"""The block a failing clause prints, for a person to read: what pytest shows in place of a
traceback for a clause violation (the harness's frames say nothing about the implementation),
what the run's summary repeats per failing clause, and what the JSON report and the Markdown
summary carry.

One block per violation: a head as the message begins (the clause, where, the quantity; a
behavioural finding whole), the clause's level and title, then for a numeric check the worst
input, expected and actual in plain numbers, the error against its bound and the factor
between them, how many elements are out and the diagnosis whole; where the implementation
raised, its own frames; the other failed checks of the same test in one line each.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from conformance.protocol import clauses
from conformance.protocol.violation import ClauseViolation

#: The other failed checks of a test listed in its block (the rest are counted).
OTHERS_SHOWN = 3
#: The implementation's frames shown where it raised (the innermost).
FRAMES_SHOWN = 6
SUITE = Path(__file__).resolve().parent.parent  # the conformance package


def block(violation: ClauseViolation, *, frames: bool = True) -> str:
    """The readable block of a violation (a combined one lists its others briefly).
    `frames`: where the implementation raised, when it did (its file paths: not for the
    JSON report, which names no path of the machine)."""
    where = "/".join(x for x in (violation.device, violation.dtype) if x)
    tag = " (SHOULD)" if violation.level == "SHOULD" else ""
    title = clauses.clauses().get(violation.clause, "")
    facts = violation.facts
    # The head is the message's own beginning (a behavioural finding whole: it is short).
    head = f"{violation.clause} violated{tag}{' on ' + where if where else ''}: {violation.what}"
    if not facts:
        head += f": {_own_detail(violation)}"
    lines = [head, f"  clause:     {violation.level}, {title} (conformance/SPEC.md)"]
    if facts:
        if facts.get("input"):
            lines.append(f"  worst input: {facts['input']}")
        else:
            lines.append(f"  worst element: index {facts['index']}")
        lines += [
            f"  expected:   {facts['expected']}",
            f"  actual:     {facts['actual']}",
            f"  error:      {facts['error']}, bound {facts['bound']}: a factor {facts['factor']}",
            f"  out of bound: {facts['out_of_bound']}",
        ]
        if facts.get("known"):
            lines.append(f"  bound note: {facts['known']}")
        if facts.get("diagnosis"):
            lines.append(f"  diagnosis:  {facts['diagnosis']}")
    if frames:
        lines += _raised_at(violation)
    others = list(violation.exceptions[1:])
    if others:
        lines.append(
            f"  {len(others)} other failed check{'s' if len(others) > 1 else ''} of this test:"
        )
        for other in others[:OTHERS_SHOWN]:
            lines.append(f"    - {_brief(other)}")
        if len(others) > OTHERS_SHOWN:
            lines.append(f"    - and {len(others) - OTHERS_SHOWN} more (-v shows each)")
    return "\n".join(lines)


def blocks_verbose(violation: ClauseViolation) -> str:
    """The block, then every other failed check of the test in full (`-v`)."""
    text = block(violation)
    for i, other in enumerate(violation.exceptions[1:], start=2):
        text += f"\n[{i}] " + block(other).replace("\n", "\n    ")
    return text


def _raised_at(violation: ClauseViolation) -> list[str]:
    """Where the implementation raised, for a violation made of its exception: the frames of
    its traceback outside the suite (and outside hypothesis), the innermost last."""
    cause = violation.__cause__
    if cause is None or isinstance(cause, ClauseViolation) or cause.__traceback__ is None:
        return []
    frames = [
        f
        for f in traceback.extract_tb(cause.__traceback__)
        if not Path(f.filename).resolve().is_relative_to(SUITE) and "hypothesis" not in f.filename
    ]
    if not frames:
        return []
    lines = [f"  raised at (innermost last; {type(cause).__name__}):"]
    for frame in frames[-FRAMES_SHOWN:]:
        lines.append(f"    {frame.filename}:{frame.lineno} in {frame.name}")
        if frame.line:
            lines.append(f"      {frame.line}")
    return lines


def _own_detail(violation: ClauseViolation) -> str:
    """A behavioural violation's detail (for a combined one, its worst check's only)."""
    if violation.exceptions:
        return violation.exceptions[0].detail
    return violation.detail


def _brief(violation: ClauseViolation) -> str:
    facts = violation.facts
    if not facts:
        return f"{violation.what}: {violation.detail.splitlines()[0]}"
    text = f"{violation.what}: error {facts['error']}, a factor {facts['factor']} over its bound"
    if facts.get("input"):
        text += f"; input {facts['input']}"
    return text
