"""Where each mutant lands: the whole suite against each mutant of the zoo, on the dtypes
its entry names, and the clauses it violates. One bug, one clause (SPEC.md, "Verdicts"):
`tests/test_mutants.py` requires each mutant to violate exactly the clauses it declares
(`Mutant.breaks`), and nothing to fail without a clause violation.

    python -m tests.mutants.landing --jobs 2              # all of them (about 7 minutes, 2 cores)
    python -m tests.mutants.landing --only clamp_ignored  # re-measure some, merge them in

writes tests/mutants/landing.json: per mutant, the clauses violated and failed (with their
dtypes), the first message of each and the seconds it took; and the fingerprint of what
decided them (`fingerprint.py`). A record whose fingerprint is not today's is stale, and
`tests/test_mutants.py` says so with the command above. `--only` keeps the other rows,
and so refreshes the fingerprint only when nothing else changed: after a change to the
suite, re-measure them all.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tests.mutants import fingerprint, runner
from tests.mutants.base import adapter_for
from tests.mutants.registry import impl_option
from tests.mutants.zoo import MUTANTS, Mutant

DATA = Path(__file__).resolve().parent / "landing.json"
#: What refreshes the record (every mutant, two processes).
REFRESH = "python -m tests.mutants.landing --jobs 2"


def dtypes_of(mutant: Mutant) -> list[str]:
    """The mutant's dtypes that its implementation claims."""
    claims = adapter_for(mutant.scheduler, "probe").capabilities.dtypes
    return [d for d in mutant.dtypes if d in claims]


def measure(mutant: Mutant, dtypes: list[str] | None = None) -> dict[str, Any]:
    """The whole suite against `mutant` on `dtypes` (default: its own), as a record row."""
    dtypes = dtypes_of(mutant) if dtypes is None else dtypes
    start = time.perf_counter()
    result = runner.run(impl_option(mutant.name), None, dtypes)
    failed = result.failed()
    return {
        "breaks": list(mutant.breaks),
        "dtypes": dtypes,
        "violated": {c: sorted(d) for c, d in result.violated().items()},
        "failed": {c: sorted(d) for c, d in failed.items()},
        "messages": {c: (result.messages(c) or [""])[0][:600] for c in sorted(failed)},
        "seconds": round(time.perf_counter() - start, 1),
    }


def _measure_named(name: str) -> tuple[str, dict[str, Any]]:
    """`measure` by name, in a worker process."""
    (mutant,) = [m for m in MUTANTS if m.name == name]
    return name, measure(mutant)


def current_fingerprint() -> dict[str, Any]:
    return fingerprint.fingerprint(runner.PROFILE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="re-measure only these (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="processes to measure in (default 1)")
    args = parser.parse_args(argv)
    recorded = json.loads(DATA.read_text(encoding="utf-8")) if DATA.exists() else {}
    rows = recorded.get("mutants", {}) if args.only else {}
    names = [m.name for m in MUTANTS if not args.only or m.name in args.only]
    breaks = {m.name: m.breaks for m in MUTANTS}
    start = time.perf_counter()
    # The slowest first (as last recorded), so that the processes finish together.
    names.sort(key=lambda n: -recorded.get("mutants", {}).get(n, {}).get("seconds", 0))
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for name, row in pool.map(_measure_named, names):
            rows[name] = row
            extra = sorted(set(row["violated"]) - set(breaks[name]))
            missed = sorted(set(breaks[name]) - set(row["violated"]))
            print(f"{name}: {row['seconds']} s; extra {extra}; missed {missed}", file=sys.stderr)
    data = {
        "commit": runner.commit(),
        "fingerprint": current_fingerprint(),
        "mutants": {m.name: rows[m.name] for m in MUTANTS if m.name in rows},
    }
    DATA.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {DATA} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
