"""How an implementation's output is held to the truth: the error bounds per dtype (`bounds`),
the checks that compare and record (`checks`), the drivers that run an implementation's step
(`drivers`), and the step clauses' expected values and diagnoses (`step_checks`)."""
