"""The suite's machinery for functional samplers, piece by piece: draws counted from the
caller's generator, two runs that share their draws before the position checked, NaN never
equal, diagnoses that call only what is offered (SPEC.md, "Interface conventions" and
"Verdicts"). The clause-level verdicts are `tests/functional/test_zoo.py`'s."""

from __future__ import annotations

import numpy as np

from conformance import truth
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring import drivers, step_checks
from conformance.measuring.checks import Measure
from conformance.protocol.values import StepInputs, TimestepSpec
from tests.functional import zoo_generator
from tests.mutants import runner

SPEC = TimestepSpec(timesteps=(39, 22, 0))


def _inputs(adapter, n: int = 3) -> list[StepInputs]:
    rng = np.random.default_rng(1)
    x_T = adapter.asarray(80.0 * rng.standard_normal((2, 3)), "float64", "cpu")
    return [
        StepInputs(adapter.asarray(rng.standard_normal((2, 3)), "float64", "cpu"), x_T)
        for _ in range(n)
    ]


def test_draws_counted_from_the_callers_generator() -> None:
    """One draw of the convention per step, the last included; twice per step; none after
    the last evaluation: each read from the generator's state at every network call."""
    for name, expected in (
        ("generator", [1, 1, 1]),
        ("generator_draws_twice", [2, 2, 2]),
        ("generator_skips_last_draw", [1, 1, 0]),
    ):
        adapter = getattr(zoo_generator, name)()
        results = adapter.run_steps(DEFAULT_CONFIG, SPEC, "cpu", _inputs(adapter), seed=4)
        assert [r.draws for r in results] == expected, name


def test_two_runs_share_their_draws_before_the_position() -> None:
    """STEP-3's two runs of a sampler drawing from its own generator reach position 1 with
    the same sample and draw differently there (the generator restarted at evaluation 1)."""
    adapter = zoo_generator.generator()
    measure = Measure(adapter, "STEP-3", "cpu", "float64")
    exact = truth.schedule(DEFAULT_CONFIG, SPEC)
    inputs = [
        (drivers.normal(2 * j + 1, (2, 3)), drivers.normal(2 * j, (2, 3), float(exact.sigmas[j])))
        for j in range(3)
    ]
    runs = [
        drivers.run(
            adapter,
            measure,
            DEFAULT_CONFIG,
            SPEC,
            "cpu",
            "float64",
            inputs,
            seed=seed,
            same_draws_as=100,
            until=1,
        )  # fmt: skip
        for seed in (5, 6)
    ]
    assert np.array_equal(runs[0].x[1].exact, runs[1].x[1].exact)
    assert not step_checks.chained(*runs, 1)
    assert not np.array_equal(runs[0].z[1], runs[1].z[1])
    # The known draw at position 1 is the one the sampler used: prev_1 - prev_2 = s g (z_1 - z_2)
    d = adapter.to_numpy(runs[0].prev[1]) - adapter.to_numpy(runs[1].prev[1])
    g = truth.noise_scale(DEFAULT_CONFIG, float(exact.sigmas[2]))
    np.testing.assert_allclose(d, g * (runs[0].z[1] - runs[1].z[1]), rtol=1e-12, atol=1e-12)


def test_nan_never_compares_equal() -> None:
    measure = Measure(zoo_generator.generator(), "STEP-5", "cpu", "float64")
    assert not measure.exact(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), "two NaN outputs")
    assert measure.violations and "1 of 2 elements out of bound" in str(measure.violations[0])


def test_diagnosis_calls_no_primitive_not_offered() -> None:
    """An all-NaN output of a functional sampler (no scalings function): the diagnosis uses
    the oracle's scalings and says so, instead of reporting the not-offered call."""
    adapter = zoo_generator.generator()
    origin = step_checks.nonfinite_origin(adapter, DEFAULT_CONFIG, 0.002, 6, 6, None)
    assert "raised" not in origin and "not offered" not in origin, origin
    assert "the oracle's" in origin and "STEP-3/STEP-4" in origin, origin


def test_cfg1_reports_every_value_that_differs_in_one_message() -> None:
    """sigma_min and the clamp (MUST) and sigma_max (per dataset: SHOULD) in one message."""
    result = runner.run(
        "tests.functional.zoo_generator:generator_other_defaults", ["CFG-1"], ["float64"]
    )
    (message,) = result.messages("CFG-1")
    for says in (
        "sigma_min is 0.003, expected 0.002",
        "sigma_max is 120.0, expected 80.0 (SHOULD: the paper fixes it per dataset)",
        "clip_denoised is False, expected True",
    ):
        assert says in message, message
    assert message.startswith("CFG-1 violated:"), message  # MUST: sigma_min and the clamp


def test_golden_trajectories_run_through_a_functional_sampler() -> None:
    """GOLD-3 (OpenAI's recorded outputs and draws) and GOLD-4 (the toy network) through the
    sampler's own loop: a conforming sampler passes both; one that re-noises with tau fails
    STEP-3, and GOLD-3 and GOLD-4, which see that departure on OpenAI's inputs, defer to it
    (one bug, one failure), naming it and the scale fitted; a sampler drawing from its own
    generator is skipped with the reason."""
    clauses = ["GOLD-3", "GOLD-4"]
    conforming = runner.run("tests.functional.zoo:edm", clauses, ["float64"])
    assert conforming.passed() >= set(clauses), conforming.cells
    departing = runner.run("tests.functional.zoo:tau", clauses, ["float64"])
    assert not departing.violated() and departing.passed() >= set(clauses), departing.cells
    for cell in departing.cells:
        if cell["clause"] in clauses and cell["dtype"] == "float64":
            what = cell["worst"]["what"]
            assert "not comparable" in what and "STEP-3's finding" in what, what
            assert "(= s tau to " in what, what  # the diagnosis: the scale fitted, matched
    generator = runner.run(
        "tests.functional.zoo_generator:generator", [*clauses, "CFG-1"], ["float64"]
    )
    golden_cells = [c for c in generator.cells if c["clause"] in clauses]
    assert golden_cells and all(c["status"] == "skipped" for c in golden_cells), golden_cells
    assert "recorded draws cannot be handed" in str(golden_cells), golden_cells
