"""The checks `tests/test_mutants.py` makes of the zoo's measured verdicts, as functions of the
measurements, so that a meta-test can plant a bad measurement and see each check fail:

- `landing_problems`: a landing row (`landing.measure`) that is not exactly the mutant's
  declared clauses (a cascade, a miss, a failure that is no clause violation);
- `staleness`: a landing record measured on other code (its fingerprint is not today's);
- `survivors`: mutants whose declared clauses were not all violated;
- `sample`: the rotating live sample of mutants that CI re-measures each run;
- `kill_matrix_problems`: a kill matrix (kill_matrix.json) showing a survivor, a killed
  survivor still listed as one, or a rejected variant.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.mutants import landing
from tests.mutants.zoo import Mutant

Row = Mapping[str, Any]
#: Mutants per live run: the whole suite on float64 and float32 takes about 20 s a mutant on
#: one idle core (CI's pytest runs serially; 35 s on this project's shared 2-core machine), so
#: that a run costs about a minute of CI's 15, and 18 consecutive days cover the zoo of 53.
PER_RUN = 3
#: `CM_MUTANT_SAMPLE=all`, `=3` (slice 3) or `=name,name`: which mutants the live sample runs
#: (default: today's slice, by UTC date).
SAMPLE_VARIABLE = "CM_MUTANT_SAMPLE"


def landing_problems(mutant: Mutant, row: Row, own: Iterable[str] | None = None) -> dict | None:
    """What is wrong with a row: the clauses violated must be exactly `mutant.breaks` (on
    the dtypes `own`, default the row's; "-" is a dtype-free test), no other clause may be
    violated on any dtype of the row, and nothing may fail without its clause's violation."""
    own = set(row["dtypes"] if own is None else own) | {"-"}
    violated = {c for c, d in row["violated"].items() if own & set(d)}
    anywhere = set(row["violated"])
    failed = set(row["failed"])
    errors = {c for c, d in row["failed"].items() if set(d) - set(row["violated"].get(c, ()))}
    if violated == set(mutant.breaks) and anywhere <= set(mutant.breaks) and not errors:
        return None
    return {
        "declared": sorted(mutant.breaks),
        "violated": {c: row["violated"][c] for c in sorted(anywhere)},
        "missed": sorted(set(mutant.breaks) - violated),
        "cascade": sorted(anywhere - set(mutant.breaks)),
        "failed without a violation": sorted(errors),
        "messages": {
            c: row["messages"].get(c, "")[:300]
            for c in sorted((failed | set(mutant.breaks)) ^ violated)
        },
    }


def staleness(record: Row, today: Row) -> str:
    """Why `record` was not measured on today's code ("" when it was), with the command
    that refreshes it."""
    recorded = record.get("fingerprint") or {}
    if recorded.get("digest") == today["digest"]:
        return ""
    if not recorded:
        what = "it carries no fingerprint"
    else:
        before, now = recorded.get("inputs", {}), today["inputs"]
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        more = f" and {len(changed) - 12} more" if len(changed) > 12 else ""
        what = f"fingerprint {recorded.get('digest')}, today {today['digest']}; changed: "
        what += ", ".join(changed[:12]) + more
    return (
        f"tests/mutants/landing.json was measured on other code ({what}): "
        f"run `{landing.REFRESH}` and commit the record"
    )


def survivors(mutants: Sequence[Mutant], rows: Mapping[str, Row]) -> list[str]:
    """The mutants whose record shows a declared clause not violated (or no record)."""
    out = []
    for m in mutants:
        row = rows.get(m.name)
        if row is None or not set(m.breaks) <= set(row["violated"]):
            out.append(m.name)
    return out


def slices(mutants: Sequence[Mutant]) -> list[list[Mutant]]:
    """The zoo dealt into slices of at most `PER_RUN` (every `count`-th mutant): every
    mutant is in exactly one, and a slice depends on the zoo alone."""
    count = max(1, math.ceil(len(mutants) / PER_RUN))
    return [list(mutants[i::count]) for i in range(count)]


def sample(
    mutants: Sequence[Mutant], choice: str | None = None, day: datetime.date | None = None
) -> tuple[str, list[Mutant]]:
    """(which, the mutants) the live sample runs: `choice` as `SAMPLE_VARIABLE` reads,
    else the slice of `day` (default today, UTC): slice (days since 1970) mod the count,
    so that consecutive days cover the zoo."""
    choice = os.environ.get(SAMPLE_VARIABLE, "") if choice is None else choice
    if choice == "all":
        return "all", list(mutants)
    if choice and not choice.isdigit():
        names = choice.split(",")
        unknown = sorted(set(names) - {m.name for m in mutants})
        if unknown:
            raise ValueError(f"{SAMPLE_VARIABLE}: no mutant named {unknown}")
        return choice, [m for m in mutants if m.name in names]
    parts = slices(mutants)
    if choice:
        i = int(choice) % len(parts)
    else:
        day = day or datetime.datetime.now(datetime.timezone.utc).date()
        i = (day - datetime.date(1970, 1, 1)).days % len(parts)
    return f"slice {i} of {len(parts)}", parts[i]


def kill_matrix_problems(
    rows: Sequence[Row], mutants: Sequence[Mutant], survivors_: Sequence[Mutant]
) -> list[str]:
    """What a kill matrix shows wrong: a mutant not killed on every clause it targets (a
    survivor not held as one), a held survivor that is killed (it belongs in MUTANTS), a
    variant rejected, or an entry of the zoo the matrix lacks."""
    by_name = {r["name"]: r for r in rows}
    problems = []
    for m in mutants:
        r = by_name.get(m.name)
        if r is None:
            problems.append(f"{m.name}: not in the matrix")
        elif missed := [c for c in m.breaks if c not in r["violated"]]:
            problems.append(f"{m.name}: survives {missed} (a `!` in KILL_MATRIX.md)")
    for m in survivors_:
        r = by_name.get(m.name)
        if r is None:
            problems.append(f"survivor {m.name}: not in the matrix")
        elif r["violated"]:
            problems.append(
                f"survivor {m.name}: killed on {sorted(r['violated'])}: move it to MUTANTS"
            )
    for r in rows:
        if r["kind"] == "variant" and r["failed"]:
            problems.append(f"variant {r['name']}: rejected on {sorted(r['failed'])}")
    return problems
