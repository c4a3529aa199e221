"""What an implementer touches: the adapter protocol and its value types, the array bridges,
declared deviations, and the clauses of SPEC.md. Nothing here imports the rest of the suite."""
