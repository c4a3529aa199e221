"""The mutant zoo: implementations with one planted bug each, correct variants written
differently, and the tools that run the conformance suite against them.

- `base.py`: the torch scheduler with its formulas behind small hooks (`TorchBase`), and the
  adapters that give a mutant the claims of the implementation it was made from;
- `zoo.py`: the mutants, one small subclass per realistic bug, each naming the SPEC.md
  clauses it must fail;
- `equivalents.py`: correct implementations written differently, which must pass;
- `registry.py`: every one of them by name, for `--impl=tests.mutants.registry:impl.NAME`;
- `runner.py`: runs chosen clauses of the suite in-process and reads its JSON report;
- `kill_matrix.py`: writes KILL_MATRIX.md (mutant x clause, the whole suite per mutant);
- `sensitivity.py`: the smallest relative perturbation each numeric clause detects, by
  bisection, written into conformance/SPEC.md.

`tests/test_mutants.py` runs the CI checks.
"""
