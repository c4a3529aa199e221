"""What an implementer touches: the adapter protocol (`adapter`), its value types (`values`),
the array bridges (`bridges`), declared deviations (`deviations`), the clause violation a
failing check raises (`violation`) and the clauses of SPEC.md (`clauses`). Nothing here imports
the rest of the suite (pyproject.toml's import contracts, checked in .ci/run)."""
