"""The members of the functional zoo that break the clauses no other member breaks (TIME-1,
STEP-2, STEP-8, STEP-9, STEP-10, NOISE-2, NOISE-3): each sampler of `breaker_samplers.py`
behind a `FunctionalSampler`, with the clauses Algorithm 1 says its departure breaks.

`tests/functional/zoo.py` imports this module at its end (import that one, not this): the
adapters become its attributes (reached as `--impl=tests.functional.zoo:<name>`) and the
`Member`s entries of its `ZOO`. `ALGORITHM_1` keeps, per member, the clauses of its
departure alone; where the suite's verdict on a functional sampler reaches further (a
wrong model time is, for a network, a wrong sigma), `Member.fails` says what it gives today
and `CASCADES` lists the difference, so that a suite that learns to isolate the departure
shows up as a failure of `tests/functional/test_zoo.py` (a clause expected to fail passes).
"""

from __future__ import annotations

import sys

from conformance.functional import FunctionalSampler
from conformance.protocol.bridges import TorchBridge
from tests.functional import breaker_samplers as bs
from tests.functional.zoo import BOTH, HOOK, INSIDE_DENOISER, OPENAI_NAMES, ZOO, Member

__all__ = [
    "float32_draws",
    "float32_time",
    "float64_output",
    "global_rng",
    "in_place",
    "uniform_draws",
    "upper_clamp",
    "upper_clamp_always",
]

DEFAULTS = {"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0, "num_train_timesteps": 40}


def _generator_member(fn, name: str) -> FunctionalSampler:
    """A denoiser sampler drawing from a seeded torch generator (its own draws)."""
    return FunctionalSampler(
        fn,
        name=name,
        callable="denoiser",
        time_points="ts",
        noise="generator",
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters={**OPENAI_NAMES, "s_noise": "s_noise"},
        defaults={**DEFAULTS, "s_noise": 1.0},
    )


def _network_member(fn, name: str) -> FunctionalSampler:
    """A network sampler (c_in, c_skip, c_out and the clamp its own), noise by randn_like."""
    return FunctionalSampler(
        fn,
        name=name,
        callable="network",
        time_points="ts",
        noise="randn_like",
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters={**OPENAI_NAMES, "sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
        defaults={**DEFAULTS, "sigma_data": 0.5, "clip_denoised": True},
    )


def global_rng() -> FunctionalSampler:
    return _generator_member(bs.global_rng_sampler, "global_rng")


def float32_draws() -> FunctionalSampler:
    return _generator_member(bs.float32_draws_sampler, "float32_draws")


def uniform_draws() -> FunctionalSampler:
    return _generator_member(bs.uniform_draws_sampler, "uniform_draws")


def in_place() -> FunctionalSampler:
    return _generator_member(bs.in_place_sampler, "in_place")


def float64_output() -> FunctionalSampler:
    return _generator_member(bs.float64_output_sampler, "float64_output")


def upper_clamp() -> FunctionalSampler:
    return _network_member(bs.upper_clamp_sampler, "upper_clamp")


def upper_clamp_always() -> FunctionalSampler:
    """upper_clamp with no clip_denoised parameter: it always clamps, so STEP-2 has no run
    without the clamp to compare with and checks the clamp itself."""
    adapter = _network_member(bs.upper_clamp_sampler, "upper_clamp_always")
    del adapter.parameters["clip_denoised"]
    adapter.fixed["clip_denoised"] = True
    adapter.defaults.pop("clip_denoised")
    return adapter


def float32_time() -> FunctionalSampler:
    return _network_member(bs.float32_time_sampler, "float32_time")


#: Per member, the clauses (with the dtypes) its departure breaks by Algorithm 1 and SPEC.md.
ALGORITHM_1: dict[str, dict[str, tuple[str, ...]]] = {
    "global_rng": {"STEP-10": BOTH, "NOISE-2": BOTH},
    "float32_draws": {"NOISE-2": ("float64",)},
    "uniform_draws": {"NOISE-2": BOTH, "NOISE-3": BOTH},
    "in_place": {"STEP-8": BOTH},
    "float64_output": {"STEP-9": ("float32",)},
    "upper_clamp": {"STEP-2": BOTH},
    "upper_clamp_always": {"STEP-2": BOTH},
    "float32_time": {"TIME-1": ("-",)},
}
#: Clauses the suite fails today beyond ALGORITHM_1: a functional sampler's departure seen
#: through what the suite can observe of it. A network's sigma is read from the model time
#: it sees, so a wrong time is a wrong sigma to the schedule's clauses and, on float64, to
#: the step clauses' truth; the STEP-3 check of a sampler with its own draws reproduces them
#: by the declared convention, so other draws are another re-noise to it; CFG-1 compares two
#: runs of one seed, which a sampler on the global RNG cannot repeat.
CASCADES: dict[str, dict[str, tuple[str, ...]]] = {
    "global_rng": {"CFG-1": ("-",)},
    "float32_draws": {"STEP-3": ("float64",)},
    "uniform_draws": {"STEP-3": ("float64",)},
    "float32_time": {
        "SCHED-1": ("-",),
        "SCHED-2": ("-",),
        "GOLD-1": ("-",),
        "CIN-1": ("float64",),
        "STEP-1": ("float64",),
        "STEP-3": ("float64",),
    },
}
#: Clauses of ALGORITHM_1 the suite does not run on a functional sampler today (skipped, with
#: the reason): held here, so that the member's expected verdict is today's.
NOT_RUN: dict[str, dict[str, str]] = {
    "uniform_draws": {
        "NOISE-3": "skipped for every functional sampler: it chains its own samples, so no "
        "position can be given its own x (per_position_inputs)",
    },
}

#: A denoiser's sampler: the scalings, the clamp and the model time are the suite's; NOISE-3
#: needs per-position inputs (NOT_RUN).
DENOISER_SKIPS = (*INSIDE_DENOISER, "NOISE-3")
BREAKERS: dict[str, Member] = {
    "global_rng": Member(
        global_rng, "draws from torch's global RNG, not the generator", DENOISER_SKIPS
    ),
    "float32_draws": Member(
        float32_draws, "noise drawn in float32 whatever the sample dtype", DENOISER_SKIPS
    ),
    "uniform_draws": Member(uniform_draws, "torch.rand for torch.randn", DENOISER_SKIPS),
    "in_place": Member(in_place, "the result written into the caller's x_T", DENOISER_SKIPS),
    "float64_output": Member(
        float64_output, "the final sample returned in float64", DENOISER_SKIPS
    ),
    "upper_clamp": Member(upper_clamp, "the clamp from above only", HOOK),
    "float32_time": Member(float32_time, "the model time computed in float32", HOOK),
}
for _name, _member in BREAKERS.items():
    _fails = {**ALGORITHM_1[_name], **CASCADES.get(_name, {})}
    for _clause in NOT_RUN.get(_name, {}):
        del _fails[_clause]
    BREAKERS[_name] = Member(_member.adapter, _member.departure, _member.skips, _fails)

ZOO.update(BREAKERS)
# The adapters as attributes of tests.functional.zoo also where this module is imported
# first (then zoo.py's `import *` at its end ran before they were defined).
for _name in __all__:
    setattr(sys.modules["tests.functional.zoo"], _name, globals()[_name])
