"""Members of the functional zoo modelled on public research samplers (`public_samplers.py`):
conventions of theirs the suite once failed as departures, and departures it once filed
under the wrong clause, each with the verdict it must give now. Registered into `ZOO` by
`zoo.py` (import this module through it)."""

from __future__ import annotations

from functools import partial

from conformance.functional import RAW_SIGMA, FunctionalSampler
from conformance.protocol.bridges import TorchBridge
from tests.functional import public_samplers as ps
from tests.functional.zoo import BOTH, CHECKED, GIVEN_SIGMAS, HOOK, INSIDE_DENOISER, Member

__all__ = [
    "first_point",
    "first_point_undeclared",
    "grid_one_too_many",
    "network_edm_c_skip",
    "network_first_point",
    "network_first_point_undeclared",
    "network_steps",
    "network_steps_c_out",
]

DIFFUSERS_NAMES = {k: k for k in ("num_train_timesteps", "sigma_min", "sigma_max", "rho")}
WITH_XT1 = (*CHECKED, "XT-1")


def _sigma_list(sample, name: str, callable: str, **kw) -> FunctionalSampler:  # noqa: A002
    """Evaluation sigmas alone (sigma_min fixed at the spec's), draws by a noise function."""
    network = {"model_time": RAW_SIGMA, "c_in": False} if callable == "network" else {}
    return FunctionalSampler(
        sample, name=name, callable=callable, time_points="sigmas_only", noise="function",
        bridge=TorchBridge(), dtypes=BOTH, **network, **kw,
    )  # fmt: skip


def first_point() -> FunctionalSampler:
    return _sigma_list(
        ps.first_point_denoiser, "first_point", "denoiser", x_T="drawn_at_first_point"
    )


def first_point_undeclared() -> FunctionalSampler:
    return _sigma_list(ps.first_point_denoiser, "first_point_undeclared", "denoiser", x_T="drawn")


def network_edm_c_skip() -> FunctionalSampler:
    return _sigma_list(partial(ps.network_loop, skip=ps.edm_c_skip), "edm_c_skip", "network")


def network_first_point() -> FunctionalSampler:
    loop = partial(ps.network_loop, first_point=True)
    return _sigma_list(loop, "network_first_point", "network", x_T="drawn_at_first_point")


def network_first_point_undeclared() -> FunctionalSampler:
    loop = partial(ps.network_loop, first_point=True)
    return _sigma_list(loop, "network_first_point_undeclared", "network", x_T="drawn")


def grid_one_too_many() -> FunctionalSampler:
    return FunctionalSampler(
        ps.grid_one_too_many, name="grid_one_too_many", callable="denoiser",
        time_points="steps", noise="function", bridge=TorchBridge(), dtypes=("float64",),
        parameters=DIFFUSERS_NAMES,
        defaults={"num_train_timesteps": 40, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0},
    )  # fmt: skip


def network_steps(shift: bool = True) -> FunctionalSampler:
    return FunctionalSampler(
        partial(ps.network_steps, shift=shift), name="network_steps" + "_c_out" * (not shift),
        callable="network", time_points="steps", noise="function", model_time=RAW_SIGMA,
        c_in=False, bridge=TorchBridge(), dtypes=BOTH,
        parameters={**DIFFUSERS_NAMES, "clip_denoised": "clip_denoised"},
        defaults={"num_train_timesteps": 40, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0,
                  "clip_denoised": True},
    )  # fmt: skip


def network_steps_c_out() -> FunctionalSampler:
    return network_steps(shift=False)


DENOISER = (*HOOK, *GIVEN_SIGMAS, *INSIDE_DENOISER)
NETWORK = (*HOOK, *GIVEN_SIGMAS, "CIN-1")
# t = sigma is declared (TIME-1); STEP-9 draws custom time points only (skipped, the reason)
OWN_GRID = (*HOOK, "CIN-1", "TIME-1", "STEP-9")
UNDECLARED = "x_T drawn at the first time point, declared at sigma_max"
PUBLIC_ZOO = {
    # S2: x_T = sigma_1 z is a convention (declared), Algorithm 1's on a grid from sigma_max
    "first_point": Member(first_point, None, DENOISER, clauses=WITH_XT1),
    "first_point_undeclared": Member(
        first_point_undeclared, UNDECLARED, DENOISER, {"CONV-1": BOTH}, clauses=WITH_XT1
    ),
    # S3: a wrong c_skip is STEP-1's alone; the model time it was applied at is right
    "network_edm_c_skip": Member(
        network_edm_c_skip, "EDM's c_skip, not the boundary's", NETWORK, {"STEP-1": BOTH}
    ),
    "network_first_point": Member(network_first_point, None, NETWORK, clauses=WITH_XT1),
    "network_first_point_undeclared": Member(
        network_first_point_undeclared, UNDECLARED, NETWORK, {"CONV-1": BOTH}, clauses=WITH_XT1
    ),
    # S7: n + 1 points for n steps is its schedule's departure (SCHED-1), not a convention's
    "grid_one_too_many": Member(
        grid_one_too_many,
        "n + 1 points of its own grid for n steps",
        # the step clauses skip: the steps cannot be read (SCHED-1's finding, the reason says)
        (*HOOK, *INSIDE_DENOISER, "STEP-3", "STEP-4", "STEP-9", "NOISE-2"),
        {"SCHED-1": ("-",)},
        may_fail=("SCHED-2", "GOLD-1"),
    ),
    # G1: a network sampler on its own grid (a step count): its sigmas read from the model
    # time it saw, its scalings through the recorded loop (STEP-1), its grid SCHED's
    "network_steps": Member(network_steps, None, OWN_GRID),
    "network_steps_c_out": Member(
        network_steps_c_out,
        "c_out without the boundary shift",
        OWN_GRID,
        {"STEP-1": BOTH},
    ),  # fmt: skip
}
