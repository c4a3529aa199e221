"""Where each mutant lands: the whole suite against each mutant of the zoo, on the dtypes
its entry names, and the clauses it violates. One bug, one clause (SPEC.md, "Verdicts"):
`tests/test_mutants.py` requires each mutant to violate exactly the clauses it declares
(`Mutant.breaks`), and nothing to fail without a clause violation.

    python -m tests.mutants.landing                       # all of them (about 25 minutes)
    python -m tests.mutants.landing --only clamp_ignored  # re-measure some, merge them in

writes tests/mutants/landing.json: per mutant, the clauses violated and failed (with their
dtypes), the first message of each, the suite commit and the seconds it took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.mutants import runner
from tests.mutants.base import adapter_for
from tests.mutants.kill_matrix import _commit
from tests.mutants.registry import impl_option
from tests.mutants.zoo import MUTANTS, Mutant

DATA = Path(__file__).resolve().parent / "landing.json"


def dtypes_of(mutant: Mutant) -> list[str]:
    """The mutant's dtypes that its implementation claims."""
    claims = adapter_for(mutant.scheduler, "probe").capabilities.dtypes
    return [d for d in mutant.dtypes if d in claims]


def measure(mutant: Mutant) -> dict[str, Any]:
    start = time.perf_counter()
    result = runner.run(impl_option(mutant.name), None, dtypes_of(mutant))
    failed = result.failed()
    return {
        "breaks": list(mutant.breaks),
        "dtypes": dtypes_of(mutant),
        "violated": {c: sorted(d) for c, d in result.violated().items()},
        "failed": {c: sorted(d) for c, d in failed.items()},
        "messages": {c: (result.messages(c) or [""])[0][:600] for c in sorted(failed)},
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="re-measure only these (repeatable)")
    args = parser.parse_args(argv)
    recorded = json.loads(DATA.read_text(encoding="utf-8")) if DATA.exists() else {}
    rows = recorded.get("mutants", {}) if args.only else {}
    for mutant in MUTANTS:
        if args.only and mutant.name not in args.only:
            continue
        rows[mutant.name] = row = measure(mutant)
        extra = sorted(set(row["violated"]) - set(mutant.breaks))
        missed = sorted(set(mutant.breaks) - set(row["violated"]))
        print(f"{mutant.name}: {row['seconds']} s; extra {extra}; missed {missed}", file=sys.stderr)
    names = [m.name for m in MUTANTS]
    data = {"commit": _commit(), "mutants": {n: rows[n] for n in names if n in rows}}
    DATA.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {DATA}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
