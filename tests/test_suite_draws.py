"""The suite's examples depend on the suite alone: a derandomized run draws the same examples
whether or not the user has imported a module of unrelated literals (public_samplers S1:
Hypothesis mixes the literals of every local module into its draws, and one tuple next to an
adapter turned a pass into a warning; `conformance.inputs.strategies` draws without them).

One subprocess (about 5 s), so that the import order is ours: it takes Hypothesis's own
lookup of local constants before the suite replaces it, records the draws of STEP-4's test
(`tests.test_suite_domains.suite_draws`) around the import of one module of literals with the
suite's lookup, then restores Hypothesis's and does the same around a second module: the
planted twin, which shows that the comparison sees the literals when they are drawn.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.mutants import runner

REPO = Path(__file__).resolve().parents[1]
#: The clause of S1's reproduction: its test draws integers (N, time points) and floats
#: (sigma_min, sigma_max, rho), the kinds of literal Hypothesis mixes in.
CLAUSE = "STEP-4"
#: A user's module of literals, as in S1 (whose own, 0.75, 12.5, 1e-3 and 250, the project's
#: modules hold already), and a second one for the twin: literals no module of the project
#: holds, so that Hypothesis would add them to what it mixes in (checked).
LITERALS = {
    "user_literals": 'UNRELATED = (0.37, 7.25, 2.5e-3, 613, 29, "latents")\n',
    "other_literals": 'UNRELATED = (0.6137, 7.391, 3.1e-3, 887, 41, "prompt")\n',
}

PROBE = """
import json, sys, warnings

from hypothesis.internal.conjecture import providers

hypothesis_lookup = getattr(providers, "_get_local_constants", None)  # before the suite's

from tests.test_suite_domains import _test_function, suite_draws


def pool():
    return len(hypothesis_lookup()) if hypothesis_lookup is not None else 0


warnings.simplefilter("ignore")
test = _test_function(sys.argv[1])
sys.path.insert(0, sys.argv[2])
out = {"suite": [repr(suite_draws(test))], "new_constants": {}}
known = pool()
import user_literals
out["new_constants"]["user_literals"] = pool() - known
out["suite"].append(repr(suite_draws(test)))
if hypothesis_lookup is not None:
    providers._get_local_constants = hypothesis_lookup
    out["hypothesis"] = [repr(suite_draws(test))]
    known = pool()
    import other_literals
    out["new_constants"]["other_literals"] = pool() - known
    out["hypothesis"].append(repr(suite_draws(test)))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def draws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The probe's draws: per lookup, [before the import, after it]."""
    folder = tmp_path_factory.mktemp("literals")
    for name, text in LITERALS.items():
        (folder / f"{name}.py").write_text(text, encoding="utf-8")
    node = runner.clause_tests()[CLAUSE][0]
    path, function = node.split("::")
    name = f"{Path(path).stem}.{function}"
    env = dict(os.environ, HYPOTHESIS_STORAGE_DIRECTORY=str(folder / ".hypothesis"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", PROBE, name, str(folder)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_draws_do_not_depend_on_the_users_literals(draws: dict[str, Any]) -> None:
    if "hypothesis" in draws:
        assert draws["new_constants"]["user_literals"] > 0, "no new literal: choose others"
    before, after = draws["suite"]
    assert before == after, (
        f"{CLAUSE}: the examples changed when a module of unrelated literals was imported "
        f"(before: {before[:300]}; after: {after[:300]})"
    )


def test_literal_check_sees_hypothesis_local_constants(draws: dict[str, Any]) -> None:
    """Planted: with Hypothesis's own lookup back, the same comparison tells the draws
    apart (else the check above would pass whatever the suite did)."""
    if "hypothesis" not in draws:
        pytest.skip("this Hypothesis has no local constants to mix in")
    assert draws["new_constants"]["other_literals"] > 0, "no new literal: choose others"
    before, after = draws["hypothesis"]
    assert before != after, f"{CLAUSE}: the draws with Hypothesis's local constants ignored them"
