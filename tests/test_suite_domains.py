"""Clause domains: the cases each clause's statement distinguishes (SPEC.md, "Domain:" under
each clause) are reached by its test's strategy and pinned examples.

For each hypothesis-driven test of the suite, the pinned `@example`s and 25 derandomized
draws of its own `@given` strategies (the suite's profile draws 25) are classified by the
predicates below; every predicate must hold for at least one of them.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from conformance import (
    spec,
)
from conformance.cases import Case

Draw = dict[str, Any]
DRAWS = 25


def _ascending(case: Case) -> list[int]:
    return sorted(case.spec.indices(case.config["num_train_timesteps"]))


def _next_at_eps(case: Case) -> bool:
    """The next sigma is an evaluation point at sigma_min (index N - 1), not the appended one."""
    ramp = _ascending(case)
    return case.k + 1 < case.n and ramp[case.k + 1] == case.config["num_train_timesteps"] - 1


def _next_above_eps(case: Case) -> bool:
    ramp = _ascending(case)
    return case.k + 1 < case.n and ramp[case.k + 1] < case.config["num_train_timesteps"] - 1


def _c(pred: Callable[[Case], bool]) -> Callable[[Draw], bool]:
    return lambda draw: pred(draw["case"])


def _cp(pred: Callable[[Case], bool]) -> Callable[[Draw], bool]:
    return lambda draw: pred(draw["case_picks"][0])


POSITIONS = {
    "first position": _c(lambda c: c.k == 0),
    "middle position": _c(lambda c: 0 < c.k < c.n - 1),
    "last position": _c(lambda c: c.n > 1 and c.k == c.n - 1),
}
BATCHES = {
    "batch of one": _c(lambda c: c.shape[0] == 1),
    "batch of more": _c(lambda c: c.shape[0] > 1),
}

#: clause -> (its hypothesis test, {case the statement distinguishes: predicate on a draw}).
DOMAINS: dict[str, tuple[Any, dict[str, Callable[[Draw], bool]]]] = {
    "STEP-1": (
        "test_step.test_denoise",
        {
            **POSITIONS,
            **BATCHES,
            "one-step": _c(lambda c: c.n == 1),
            "multistep": _c(lambda c: c.n > 1),
            "next sigma at sigma_min": _c(_next_at_eps),
            "next sigma above sigma_min": _c(_next_above_eps),
            "one axis": _c(lambda c: len(c.shape) == 1),
            "several axes": _c(lambda c: len(c.shape) > 1),
        },
    ),
    "STEP-2": (
        "test_step.test_clamp",
        {"first position": _c(lambda c: c.k == 0), "later position": _c(lambda c: c.k > 0)},
    ),
    "STEP-3": (
        "test_step.test_renoise_scale",
        {
            "first position": _c(lambda c: c.k == 0),
            "middle position": _c(lambda c: c.k > 0),
            "next sigma at sigma_min": _c(_next_at_eps),
            "next sigma above sigma_min": _c(_next_above_eps),
            "s_noise 0": _c(lambda c: c.config["s_noise"] == 0.0),
            "s_noise 1": _c(lambda c: c.config["s_noise"] == 1.0),
            "s_noise other": _c(lambda c: c.config["s_noise"] not in (0.0, 1.0)),
            "clamp on": _c(lambda c: c.config["clip_denoised"]),
            "clamp off": _c(lambda c: not c.config["clip_denoised"]),
        },
    ),
    "STEP-4": (
        "test_step.test_last_step_adds_no_noise",
        {
            "two timesteps": _c(lambda c: c.n == 2),
            "more timesteps": _c(lambda c: c.n > 2),
            "clamp on": _c(lambda c: c.config["clip_denoised"]),
            "clamp off": _c(lambda c: not c.config["clip_denoised"]),
        },
    ),
    "STEP-5": (
        "test_step.test_one_step_draws_no_noise",
        {
            "num_inference_steps = 1": _c(lambda c: c.spec.num_inference_steps == 1),
            "one custom index": _c(lambda c: c.spec.timesteps is not None),
        },
    ),
    "CIN-1": ("test_scale_model_input.test_scale_model_input", {**POSITIONS, **BATCHES}),
    "INDEX-4": (
        "test_index.test_set_begin_index",
        {"begin index 0": _c(lambda c: c.k == 0), "inner begin index": _c(lambda c: c.k > 0)},
    ),
    "NOISE-1": (
        "test_noise.test_injected_noise_used_as_given",
        {"first position": _c(lambda c: c.k == 0), "middle position": _c(lambda c: c.k > 0)},
    ),
    "NOISE-2": (
        "test_noise.test_one_generator_per_batch_element",
        {**BATCHES, "multistep": _c(lambda c: c.n > 1)},
    ),
    "ADD-1": (
        "test_add_noise.test_add_noise",
        {
            "batch of one": _cp(lambda c: c.shape[0] == 1),
            "batch of more": _cp(lambda c: c.shape[0] > 1),
            "distinct times": lambda d: len(set(d["case_picks"][1])) > 1,
            "a time repeated": lambda d: len(set(d["case_picks"][1])) < len(d["case_picks"][1]),
        },
    ),
    "ADD-2": (
        "test_add_noise.test_add_noise_with_a_begin_index",
        {
            "before any step": lambda d: d["case_picks"][3] == 0,
            "after steps": lambda d: d["case_picks"][3] > 0,
            "begin index 0": lambda d: d["case_picks"][2] == 0,
            "inner begin index": lambda d: d["case_picks"][2] > 0,
        },
    ),
    "SCHED-1": (
        "test_schedule.test_schedule_from_num_inference_steps",
        {
            "n = 1": lambda d: d["case"][1].num_inference_steps == 1,
            "n = N": lambda d: (
                d["case"][1].num_inference_steps == d["case"][0]["num_train_timesteps"]
            ),
            "1 < n < N": lambda d: (
                1 < d["case"][1].num_inference_steps < d["case"][0]["num_train_timesteps"]
            ),
            "N // n exact": lambda d: (
                d["case"][0]["num_train_timesteps"] % d["case"][1].num_inference_steps == 0
            ),
            "N // n not exact": lambda d: (
                d["case"][0]["num_train_timesteps"] % d["case"][1].num_inference_steps != 0
            ),
        },
    ),
    "SCHED-2": (
        "test_schedule.test_schedule_from_custom_timesteps",
        {
            "one index": lambda d: len(d["case"][1].timesteps) == 1,
            "several indices": lambda d: len(d["case"][1].timesteps) > 1,
            "index 0 (sigma_max)": lambda d: 0 in d["case"][1].timesteps,
            "index N - 1 (sigma_min)": lambda d: (
                d["case"][0]["num_train_timesteps"] - 1 in d["case"][1].timesteps
            ),
            "N = 2": lambda d: d["case"][0]["num_train_timesteps"] == 2,
        },
    ),
    "TIME-1": (
        "test_model_time.test_model_times_of_the_schedule",
        {
            "sigma_min reached": lambda d: (
                d["case"][0]["num_train_timesteps"] - 1 in d["case"][1].timesteps
            ),
            "sigma_max reached": lambda d: 0 in d["case"][1].timesteps,
        },
    ),
    "TIME-2": (
        "test_model_time.test_sigma_to_t",
        {
            "sigma = 1 (t = 0)": lambda d: 1.0 in d["sigmas"],
            "sigma < 1": lambda d: min(d["sigmas"]) < 1.0,
            "sigma > 1": lambda d: max(d["sigmas"]) > 1.0,
        },
    ),
    "SCAL-1": (
        "test_scalings.test_boundary_scalings",
        {
            "sigma_min": lambda d: d["case"][0]["sigma_min"] in d["case"][1],
            "sigma_max": lambda d: d["case"][0]["sigma_max"] in d["case"][1],
            "sigma_data 0.5": lambda d: d["case"][0]["sigma_data"] == 0.5,
            "sigma_data drawn": lambda d: d["case"][0]["sigma_data"] != 0.5,
        },
    ),
    "SCAL-2": (
        "test_scalings.test_boundary_condition_exact_at_sigma_min",
        {
            "sigma_data 0.5": lambda d: d["config"]["sigma_data"] == 0.5,
            "sigma_data drawn": lambda d: d["config"]["sigma_data"] != 0.5,
        },
    ),
}


def _test_function(name: str) -> Any:
    """A test function of the suite, "module.function" (its marks are the suite plugin's,
    unknown to this session: their warnings are not this test's business)."""
    module, function = name.split(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return getattr(importlib.import_module(f"conformance.{module}"), function)


def _draws(test: Any) -> list[Draw]:
    """The pinned examples of `test` and DRAWS derandomized draws of its strategies."""
    strategies = test.hypothesis._given_kwargs
    drawn: list[Draw] = []

    @settings(
        max_examples=DRAWS,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(**strategies)
    def collect(**kwargs: Any) -> None:
        drawn.append(kwargs)

    collect()
    return [e.kwargs for e in test.hypothesis_explicit_examples] + drawn


@pytest.mark.parametrize("clause", sorted(DOMAINS))
def test_strategies_reach_every_case_of_the_domain(clause: str) -> None:
    name, cases = DOMAINS[clause]
    test = _test_function(name)
    draws = _draws(test)
    missed = [label for label, holds in cases.items() if not any(holds(d) for d in draws)]
    assert not missed, f"{clause}: {len(draws)} examples of {test.__name__} never reach {missed}"


def test_every_clause_states_its_level_and_every_domain_is_checked() -> None:
    text = spec.spec_text()
    for clause in spec.clauses():
        block = text.split(f"### {clause}:", 1)[1].split("\n### ", 1)[0]
        assert "\nLevel: " in block, f"{clause} states no Level: line"
    stated = {
        c
        for c in spec.clauses()
        if "\nDomain: " in text.split(f"### {c}:", 1)[1].split("\n### ", 1)[0]
    }
    assert set(DOMAINS) <= stated, f"domains checked but not stated: {set(DOMAINS) - stated}"
