"""Clause domains, checked on the suite's own draws in both directions: every case that a
clause's `Domain:` line in SPEC.md names is mapped here to a predicate on its test's
examples (or to the way the suite covers it otherwise, said in words), every phrase of the
line is mapped and nothing else; and every predicate holds for at least one example that
the suite itself runs: its pinned `@example`s and the derandomized draws of its `@given`,
made by hypothesis with the test's own seed (derandomize seeds from the test function's
source) and settings, under the suite's "ci" profile. `test_draws_are_the_suites_own`
checks that claim against a live run of the suite.
"""

from __future__ import annotations

import importlib
import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.internal.compat import int_from_bytes
from hypothesis.internal.reflection import function_digest

from conformance import truth
from conformance.inputs.cases import Case
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring import step_checks
from conformance.protocol import clauses
from tests.mutants import runner

Draw = dict[str, Any]
Predicate = Callable[[Draw], bool]
#: A case of a Domain line that is not a property of the drawn examples: the reason, in words.
Covered = str
#: The suite's profile: the draws below are the ones `pytest conformance` makes under it.
PROFILE = "ci"


def _ascending(case: Case) -> list[int]:
    return sorted(case.spec.indices(case.config["num_train_timesteps"]))


def _next_at_eps(case: Case) -> bool:
    """The next sigma is an evaluation point at sigma_min (index N - 1), not the appended one."""
    ramp = _ascending(case)
    return case.k + 1 < case.n and ramp[case.k + 1] == case.config["num_train_timesteps"] - 1


def _next_above_eps(case: Case) -> bool:
    ramp = _ascending(case)
    return case.k + 1 < case.n and ramp[case.k + 1] < case.config["num_train_timesteps"] - 1


def _c(pred: Callable[[Case], bool]) -> Predicate:
    return lambda draw: pred(draw["case"])


def _cp(pred: Callable[[Case], bool]) -> Predicate:
    return lambda draw: pred(draw["case_picks"][0])


def _cfg(draw: Draw) -> dict[str, Any]:
    """The config of a draw, whatever its shape (a Case, a (config, ...) pair, a config)."""
    if "config" in draw:
        return draw["config"]
    case = draw.get("case", draw.get("case_picks"))
    if isinstance(case, tuple):
        case = case[0]
    return case.config if isinstance(case, Case) else case


def _sigmas(draw: Draw) -> list[float]:
    """The evaluation sigmas of a (config, TimestepSpec) draw."""
    config, timesteps = draw["case"]
    return [float(s) for s in truth.schedule(config, timesteps).sigmas[:-1]]


def _s(pred: Callable[[float], bool]) -> Predicate:
    return lambda draw: pred(float(_cfg(draw)["s_noise"]))


def _n_of(draw: Draw) -> tuple[int, Any]:
    config, timesteps = draw["case"]
    return config["num_train_timesteps"], timesteps


DTYPES: Covered = "the suite's dtype parametrization (every claimed dtype), not a draw"
POSITIONS = {
    "first position": _c(lambda c: c.k == 0),
    "middle position": _c(lambda c: 0 < c.k < c.n - 1),
    "last position": _c(lambda c: c.n > 1 and c.k == c.n - 1),
}
FIRST_AND_MIDDLE = {
    "first position": _c(lambda c: c.k == 0),
    "middle position": _c(lambda c: c.k > 0),
}
BATCHES = {
    "batch of one": _c(lambda c: c.shape[0] == 1),
    "batch of more": _c(lambda c: c.shape[0] > 1),
}
CLAMP = {
    "clamp on": lambda d: bool(_cfg(d)["clip_denoised"]),
    "clamp off": lambda d: not _cfg(d)["clip_denoised"],
}
SIGMA_DATA = {
    "sigma_data 0.5": lambda d: _cfg(d)["sigma_data"] == 0.5,
    "sigma_data drawn": lambda d: _cfg(d)["sigma_data"] != 0.5,
}
DEFAULT_AND_DRAWN = {
    "the default config": lambda d: _cfg(d) == DEFAULT_CONFIG,
    "a drawn config": lambda d: _cfg(d) != DEFAULT_CONFIG,
}


def _grid(pred: Callable[[float, float, float, list[float]], bool]) -> Predicate:
    """A predicate on a (config, sigma grid) draw: pred(eps, sigma_max, sigma_data, grid)."""

    def holds(draw: Draw) -> bool:
        config, grid = draw["case"]
        values = [float(v) for v in grid]
        return pred(config["sigma_min"], config["sigma_max"], config["sigma_data"], values)

    return holds


SCALINGS = {
    "sigma = sigma_min (c_out = 0), just above it (sigma_min (1 + 2^-k): c_out a small difference), sigma_max, between": {
        "sigma_min": _grid(lambda eps, top, sd, g: eps in g),
        "just above sigma_min": _grid(
            lambda eps, top, sd, g: any(eps < v <= eps * 1.01 for v in g)
        ),
        "sigma_max": _grid(lambda eps, top, sd, g: top in g),
        "between": _grid(lambda eps, top, sd, g: any(eps * 1.01 < v < top for v in g)),
    },
    "sigma_data 0.5 and drawn": {
        "sigma_data 0.5": lambda d: d["case"][0]["sigma_data"] == 0.5,
        "sigma_data drawn": lambda d: d["case"][0]["sigma_data"] != 0.5,
    },
}


#: clause -> (its hypothesis test, {each phrase of its Domain line: the predicates on the
#: test's examples that reach it, or how the suite covers it otherwise}).
DOMAINS: dict[str, tuple[str, dict[str, dict[str, Predicate] | Covered]]] = {
    "SCHED-1": (
        "test_schedule.test_schedule_from_num_inference_steps",
        {
            "n = 1, 2, N and between": {
                "n = 1": lambda d: _n_of(d)[1].num_inference_steps == 1,
                "n = 2": lambda d: _n_of(d)[1].num_inference_steps == 2,
                "n = N": lambda d: _n_of(d)[1].num_inference_steps == _n_of(d)[0],
                "2 < n < N": lambda d: 2 < _n_of(d)[1].num_inference_steps < _n_of(d)[0],
            },
            "N // n exact and not": {
                "exact": lambda d: _n_of(d)[0] % _n_of(d)[1].num_inference_steps == 0,
                "not exact": lambda d: _n_of(d)[0] % _n_of(d)[1].num_inference_steps != 0,
            },
            "N = 2 and large N (201)": {
                "N = 2": lambda d: _n_of(d)[0] == 2,
                "N >= 201": lambda d: _n_of(d)[0] >= 201,
            },
            "the default config and drawn ones (rho 1 to 10, sigma ranges 1e-4 to 1e4)": (
                DEFAULT_AND_DRAWN
            ),
        },
    ),
    "SCHED-2": (
        "test_schedule.test_schedule_from_custom_timesteps",
        {
            "one index (0, N - 1, between), two, many": {
                "one index 0": lambda d: _n_of(d)[1].timesteps == (0,),
                "one index N - 1": lambda d: _n_of(d)[1].timesteps == (_n_of(d)[0] - 1,),
                "one index between": lambda d: (
                    len(_n_of(d)[1].timesteps) == 1
                    and 0 < _n_of(d)[1].timesteps[0] < _n_of(d)[0] - 1
                ),
                "two indices": lambda d: len(_n_of(d)[1].timesteps) == 2,
                "many indices": lambda d: len(_n_of(d)[1].timesteps) > 2,
            },
            "index 0 (sigma_max) and N - 1 (sigma_min) included and not": {
                "0 included": lambda d: 0 in _n_of(d)[1].timesteps,
                "0 not included": lambda d: 0 not in _n_of(d)[1].timesteps,
                "N - 1 included": lambda d: _n_of(d)[0] - 1 in _n_of(d)[1].timesteps,
                "N - 1 not included": lambda d: _n_of(d)[0] - 1 not in _n_of(d)[1].timesteps,
            },
            "N = 2": {"N = 2": lambda d: _n_of(d)[0] == 2},
        },
    ),
    "TIME-1": (
        "test_model_time.test_model_times_of_the_schedule",
        {
            "the first and last evaluation sigma (sigma_max, sigma(1) = sigma_min), times below "
            "and above 0 (sigma < 1 and > 1), the default and drawn configs": {
                "sigma_max reached": lambda d: 0 in _n_of(d)[1].indices(_n_of(d)[0]),
                "sigma_min reached": lambda d: _n_of(d)[0] - 1 in _n_of(d)[1].indices(_n_of(d)[0]),
                "sigma < 1": lambda d: min(_sigmas(d)) < 1.0,
                "sigma > 1": lambda d: max(_sigmas(d)) > 1.0,
                **DEFAULT_AND_DRAWN,
            },
        },
    ),
    "TIME-2": (
        "test_model_time.test_sigma_to_t",
        {
            "sigma_min and sigma_max of the default config, sigma = 1 (t = 0), sigmas from 1e-4 "
            "to 1e4": {
                "0.002": lambda d: DEFAULT_CONFIG["sigma_min"] in d["sigmas"],
                "80": lambda d: DEFAULT_CONFIG["sigma_max"] in d["sigmas"],
                "sigma = 1": lambda d: 1.0 in d["sigmas"],
                "sigma below 1e-3": lambda d: min(d["sigmas"]) < 1e-3,
                "sigma above 1e3": lambda d: max(d["sigmas"]) > 1e3,
            },
        },
    ),
    "CIN-1": (
        "test_scale_model_input.test_scale_model_input",
        {
            "first, middle and last position": POSITIONS,
            "one element and a batch": {
                "one element": _c(lambda c: math.prod(c.shape) == 1),
                "a batch": _c(lambda c: c.shape[0] > 1),
            },
            "every claimed dtype (the bound depends on u_D and u_P)": DTYPES,
        },
    ),
    "SCAL-1": (
        "test_scalings.test_boundary_scalings",
        {**SCALINGS, "float64 and float32 (P)": DTYPES},
    ),
    "SCAL-2": (
        "test_scalings.test_boundary_condition_exact_at_sigma_min",
        {
            "sigma_min as a float64 array and as the schedule's stored last sigma (when that is "
            "sigma_min; another value is SCHED-1's finding)": "both, in every example (the "
            "test's body asks for each)",
            "sigma_data 0.5 and drawn": SIGMA_DATA,
        },
    ),
    "SCAL-3": (
        "test_scalings.test_edm_scalings",
        {
            "as SCAL-1": {
                f"{phrase[:20]}...: {label}": p
                for phrase, preds in SCALINGS.items()
                for label, p in preds.items()
            }
        },
    ),
    "INDEX-1": (
        "test_index.test_index_for_timestep",
        {
            "every position of a schedule": "every position of every example (the test's loop)",
            "schedules of one and several timesteps": {
                "one timestep": _c(lambda c: c.n == 1),
                "several timesteps": _c(lambda c: c.n > 1),
            },
        },
    ),
    "INDEX-4": (
        "test_index.test_set_begin_index",
        {
            "begin index 0 and inner (first position and middle), followed by a sigma above "
            "sigma_min": {
                "begin index 0": _c(lambda c: c.k == 0),
                "inner begin index": _c(lambda c: c.k > 0),
                "followed by a sigma above sigma_min": _c(_next_above_eps),
            },
            "every claimed dtype": DTYPES,
        },
    ),
    "STEP-1": (
        "test_step.test_denoise",
        {
            "first, middle and last position": POSITIONS,
            "one-step (one timestep) and multistep": {
                "one-step": _c(lambda c: c.n == 1),
                "multistep": _c(lambda c: c.n > 1),
            },
            "the next sigma at sigma_min and above it": {
                "next sigma at sigma_min": _c(_next_at_eps),
                "next sigma above sigma_min": _c(_next_above_eps),
            },
            "batch of one and more, one axis and several": {
                **BATCHES,
                "one axis": _c(lambda c: len(c.shape) == 1),
                "several axes": _c(lambda c: len(c.shape) > 1),
            },
            "every claimed dtype (the bound depends on u_D and u_P)": DTYPES,
            "configs drawn over the whole domain": {
                "a drawn config": lambda d: (
                    _cfg(d) != {**DEFAULT_CONFIG, "s_noise": 0.0, "clip_denoised": False}
                ),
            },
        },
    ),
    "STEP-2": (
        "test_step.test_clamp",
        {
            "first and later position": FIRST_AND_MIDDLE,
            "elements beyond +1, beyond -1 and inside": "the values of the sample and model "
            "output, not of the example: not classified here",
            "every claimed dtype": DTYPES,
        },
    ),
    "STEP-3": (
        "test_step.test_renoise_scale",
        {
            "first and middle position": FIRST_AND_MIDDLE,
            "the next sigma at sigma_min (noise scale 0) and above it": {
                "next sigma at sigma_min": _c(_next_at_eps),
                "next sigma above sigma_min": _c(_next_above_eps),
            },
            "s_noise 0, 1, 1.011 and drawn": {
                "s_noise 0": _s(lambda s: s == 0.0),
                "s_noise 1": _s(lambda s: s == 1.0),
                "s_noise 1.011": _s(lambda s: s == 1.011),
                "s_noise drawn": _s(lambda s: s not in (0.0, 1.0, 1.011)),
            },
            "injected and reproduced noise": "the implementation's noise layer (its claims), "
            "not a draw",
            "clamp on and off": CLAMP,
            "every claimed dtype": DTYPES,
        },
    ),
    "STEP-4": (
        "test_step.test_last_step_adds_no_noise",
        {
            "schedules of two and more timesteps": {
                "two timesteps": _c(lambda c: c.n == 2),
                "more timesteps": _c(lambda c: c.n > 2),
            },
            "clamp on and off": CLAMP,
            "s_noise from 0.25 to 2": {
                "s_noise below 1": _s(lambda s: 0.25 <= s < 1.0),
                "s_noise above 1": _s(lambda s: 1.0 < s <= 2.0),
            },
            "injected, reproduced and own draws": "the implementation's noise layer (its "
            "claims), not a draw",
            "every claimed dtype": DTYPES,
        },
    ),
    "STEP-5": (
        "test_step.test_one_step_draws_no_noise",
        {
            "num_inference_steps = 1 and one custom index (0, N - 1, between)": {
                "num_inference_steps = 1": _c(lambda c: c.spec.num_inference_steps == 1),
                "custom index 0": _c(lambda c: c.spec.timesteps == (0,)),
                "custom index N - 1": _c(
                    lambda c: c.spec.timesteps == (c.config["num_train_timesteps"] - 1,)
                ),
                "custom index between": _c(
                    lambda c: (
                        c.spec.timesteps is not None
                        and 0 < c.spec.timesteps[0] < c.config["num_train_timesteps"] - 1
                    )
                ),
            },
            "every claimed dtype": DTYPES,
        },
    ),
    "STEP-8": (
        "test_step.test_inputs_not_modified",
        {
            "scale_model_input, step (model_output, sample, noise) and add_noise "
            "(original_samples, noise)": "each call, in every example (the test's body)",
            "every claimed dtype": DTYPES,
        },
    ),
    "STEP-9": (
        "test_step.test_output_contract",
        {
            "one element, one axis, batch 1, several axes": {
                "one element": lambda d: math.prod(d["shape"]) == 1,
                "one axis": lambda d: len(d["shape"]) == 1,
                "batch 1": lambda d: d["shape"][0] == 1 and math.prod(d["shape"]) > 1,
                "several axes": lambda d: len(d["shape"]) > 1,
            },
            "every claimed dtype and device": "the suite's dtype and device parametrization",
        },
    ),
    "NOISE-1": (
        "test_noise.test_injected_noise_used_as_given",
        {
            "first and middle position": FIRST_AND_MIDDLE,
            "two different z and z = 0": "three draws in every example (the test's body)",
            "s_noise from 0.25 to 2": {
                "s_noise below 1": _s(lambda s: 0.25 <= s < 1.0),
                "s_noise above 1": _s(lambda s: 1.0 < s <= 2.0),
            },
            "every claimed dtype": DTYPES,
        },
    ),
    "NOISE-2": (
        "test_noise.test_one_generator_per_batch_element",
        {
            "the first positions of a multistep run (the last's draw is scaled by 0: only the "
            "generator state sees it)": {"multistep": _c(lambda c: c.n > 1)},
            "one generator and one per batch element": "two tests: "
            "test_draws_reproduce_the_declared_convention and this one",
            "batch of one and more": BATCHES,
        },
    ),
    "ADD-1": (
        "test_add_noise.test_add_noise",
        {
            "one time per batch element, the same time repeated and distinct times": {
                "distinct times": lambda d: len(set(d["case_picks"][1])) > 1,
                "a time repeated": lambda d: len(set(d["case_picks"][1])) < len(d["case_picks"][1]),
            },
            "batch of one and more": {
                "batch of one": _cp(lambda c: c.shape[0] == 1),
                "batch of more": _cp(lambda c: c.shape[0] > 1),
            },
            "every claimed dtype": DTYPES,
        },
    ),
    "ADD-2": (
        "test_add_noise.test_add_noise_with_a_begin_index",
        {
            "before any step (img2img) and after one and more steps (inpainting)": {
                "before any step": lambda d: d["case_picks"][3] == 0,
                "after one step": lambda d: d["case_picks"][3] == 1,
                "after more steps": lambda d: d["case_picks"][3] > 1,
            },
            "begin index 0 and inner": {
                "begin index 0": lambda d: d["case_picks"][2] == 0,
                "inner begin index": lambda d: d["case_picks"][2] > 0,
            },
        },
    ),
}

#: Domain cases the suite's examples do not reach today (gaps of the suite, reported: a pinned
#: example in conformance/ closes each). Held here so that the test still fails on any other
#: case lost, and on these once reached (then they leave this list).
UNREACHED = {}

#: Clauses whose tests draw nothing: their Domain cases are the inputs the test enumerates.
ENUMERATED = {
    "CFG-2": "each argument and boundary, listed in test_config",
    "SCHED-3": "each rule, listed in test_schedule",
    "SCHED-4": "a used scheduler, every claimed dtype",
    "INDEX-2": "one schedule with a time twice",
    "INDEX-3": "the neighbours of each stored time",
    "INDEX-5": "the four values listed",
    "STEP-7": "a third step of a two-step schedule",
    "STEP-10": "two positions that add noise",
    "STEP-11": "the four shapes listed",
    "NOISE-3": "two positions that add noise, every claimed dtype",
    "NOISE-4": "the four shapes listed",
    "GOLD-1": "each case of the golden directory",
    "GOLD-2": "each case of the golden directory",
    "GOLD-3": "each case of the golden directory",
    "GOLD-4": "each case of the golden directory",
    "CONV-1": "each declaration the implementation makes",
    "XT-1": "the two time-point lists listed in test_initial_sample, every claimed dtype",
}


def domain_lines() -> dict[str, list[str]]:
    """Clause -> the phrases of its `Domain:` line in SPEC.md (split at "; " outside
    parentheses)."""
    text = clauses.spec_text()
    out = {}
    for clause in clauses.clauses():
        block = text.split(f"### {clause}:", 1)[1].split("\n### ", 1)[0]
        for line in block.splitlines():
            if line.startswith("Domain: "):
                out[clause] = _phrases(line[len("Domain: ") :].rstrip("."))
    return out


def _phrases(line: str) -> list[str]:
    phrases, depth, start = [], 0, 0
    for i, char in enumerate(line):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and line.startswith("; ", i):
            phrases.append(line[start:i])
            start = i + 2
    return [*phrases, line[start:]]


def _test_function(name: str) -> Any:
    """A test function of the suite, "module.function", as the suite runs it under PROFILE:
    `@given` takes its settings from the profile loaded when its module is imported, so a
    module this process imported under another profile is imported again under PROFILE (its
    marks are the suite plugin's, unknown to this session: their warnings are not this
    test's business)."""
    module, function = name.split(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        imported = importlib.import_module(f"conformance.{module}")
        test = getattr(imported, function)
        if hasattr(test, "hypothesis") and not _under_profile(test):
            previous = settings.get_current_profile_name()
            settings.load_profile(PROFILE)
            try:
                test = getattr(importlib.reload(imported), function)
            finally:
                settings.load_profile(previous)
    return test


def _settings_used(test: Any) -> tuple[int, bool, Any]:
    """What of a @given test's settings decides its examples."""
    used = test._hypothesis_internal_use_settings
    return used.max_examples, used.derandomize, used.database


def _under_profile(test: Any) -> bool:
    profile = settings.get_profile(PROFILE)
    return _settings_used(test) == (profile.max_examples, profile.derandomize, profile.database)


def suite_draws(test: Any) -> list[Draw]:
    """The examples `test` runs in the suite, in order: hypothesis runs the test itself (its
    settings, pinned examples and seed: the digest of its own source, as derandomize takes
    it) with a body that records the arguments instead of checking them."""
    handle = test.hypothesis
    original = handle.inner_test
    names = set(handle._given_kwargs)
    fixtures = [p for p in inspect.signature(original).parameters if p not in names]
    drawn: list[Draw] = []

    def record(*args: Any, **kwargs: Any) -> None:
        drawn.append({k: v for k, v in kwargs.items() if k in names})

    assert _under_profile(test), (
        f"{test.__name__} was imported under another profile than {PROFILE!r}: "
        f"{_settings_used(test)} (max_examples, derandomize, database)"
    )
    handle.inner_test = record
    test._hypothesis_internal_use_seed = int_from_bytes(function_digest(original))
    try:
        test(**dict.fromkeys(fixtures))
    finally:
        handle.inner_test = original
        test._hypothesis_internal_use_seed = None
    return drawn


def unreached(name: str, phrases: dict[str, dict[str, Predicate] | Covered]) -> set[str]:
    """The labels of `phrases` that no example of the suite's test `name` reaches."""
    draws = suite_draws(_test_function(name))
    return {
        label
        for cases in phrases.values()
        if not isinstance(cases, str)
        for label, holds in cases.items()
        if not any(holds(d) for d in draws)
    }


def mapping_problems(stated: dict[str, list[str]]) -> list[str]:
    """Where DOMAINS and ENUMERATED differ from the Domain lines `stated`, both ways."""
    problems = [
        f"{c}: its Domain line is checked nowhere here"
        for c in sorted(set(stated) - set(DOMAINS) - set(ENUMERATED))
    ]
    problems += [
        f"{c}: mapped here, but SPEC.md states no Domain line"
        for c in sorted((set(DOMAINS) | set(ENUMERATED)) - set(stated))
    ]
    for clause, (_, phrases) in DOMAINS.items():
        problems += [
            f"{clause}: {p!r} in SPEC.md, not mapped"
            for p in stated.get(clause, [])
            if p not in phrases
        ]
        problems += [
            f"{clause}: {p!r} mapped, not in SPEC.md"
            for p in phrases
            if clause in stated and p not in stated[clause]
        ]
    return problems


@pytest.mark.parametrize("clause", sorted(DOMAINS))
def test_draws_reach_every_case_of_the_domain(clause: str) -> None:
    name, phrases = DOMAINS[clause]
    missed = unreached(name, phrases)
    known = {label for c, label in UNREACHED if c == clause}
    assert missed <= known, f"{clause}: the examples of {name} never reach {sorted(missed - known)}"
    assert known <= missed, f"{clause}: {sorted(known - missed)} reached now: remove from UNREACHED"


def test_every_domain_case_of_the_spec_is_mapped() -> None:
    """Both directions: each clause with a Domain line is classified here (or its test draws
    nothing), each phrase of the line is mapped, and no phrase the line does not state."""
    problems = mapping_problems(domain_lines())
    assert not problems, f"Domain lines and their predicates differ: {problems}"


def test_mapping_check_catches_a_case_removed_or_added() -> None:
    """Planted: a Domain case dropped from SPEC.md's STEP-1 line, one added to STEP-2's, and
    a clause's line removed."""
    stated = domain_lines()
    stated["STEP-1"] = [p for p in stated["STEP-1"] if not p.startswith("one-step")]
    stated["STEP-2"] = [*stated["STEP-2"], "s_noise 0"]
    del stated["NOISE-4"]
    assert mapping_problems(stated) == [
        "NOISE-4: mapped here, but SPEC.md states no Domain line",
        "STEP-1: 'one-step (one timestep) and multistep' mapped, not in SPEC.md",
        "STEP-2: 's_noise 0' in SPEC.md, not mapped",
    ]
    stated["CFG-1"] = ["the defaults"]
    assert mapping_problems(stated)[0] == "CFG-1: its Domain line is checked nowhere here"


def test_reach_check_catches_a_case_no_example_reaches() -> None:
    """Planted: a case STEP-1's examples do not reach (a batch of seven), next to one they do."""
    phrases = {"batch": {"batch of seven": _c(lambda c: c.shape[0] == 7), **BATCHES}}
    assert unreached("test_step.test_denoise", phrases) == {"batch of seven"}


def test_enumerated_clauses_draw_nothing() -> None:
    """A clause listed as enumerated has tests without @given: else its draws need predicates."""
    drawing = [
        node
        for clause in ENUMERATED
        for node in runner.clause_tests().get(clause, ())
        if hasattr(_test_function(_dotted(node)), "hypothesis")
    ]
    assert not drawing, f"tests listed as enumerating their cases draw examples: {drawing}"


def _dotted(node: str) -> str:
    path, function = node.split("::")
    return f"{path.rsplit('/', 1)[1].removesuffix('.py')}.{function}"


def test_every_clause_states_its_level() -> None:
    text = clauses.spec_text()
    for clause in clauses.clauses():
        block = text.split(f"### {clause}:", 1)[1].split("\n### ", 1)[0]
        assert "\nLevel: " in block, f"{clause} states no Level: line"


def test_draws_are_the_suites_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples `suite_draws` classifies are the ones a run of the suite checks: STEP-1's
    test against the reference records the case of every example it runs (each example
    hands its case once to `step_checks.own_settings`, whatever else it computes)."""
    seen: list[Case] = []
    own = step_checks.own_settings

    def spy(impl: Any, case: Case) -> Case:
        seen.append(case)
        return own(impl, case)

    monkeypatch.setattr(step_checks, "own_settings", spy)
    drawn = [d["case"] for d in suite_draws(_test_function("test_step.test_denoise"))]
    seen.clear()
    run = runner.run("reference", ["STEP-1"], ["float64"])
    assert run.passed() == {"STEP-1"}, run.output[-2000:]
    assert seen == drawn, f"the suite ran {len(seen)} examples, {len(drawn)} classified here"
