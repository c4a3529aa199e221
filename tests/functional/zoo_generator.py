"""The generator path of the functional zoo: `generator_samplers.GeneratorSampler` (a network
sampler that draws from the caller's seeded torch generator) and its single faults, each
with the clauses it must fail (`tests/functional/test_zoo.py` requires exactly those).

Registered into `zoo.ZOO` by `zoo.py` (`members()`, which imports `zoo` only when called, so
that either module may be imported first); reached by the suite as
`--impl=tests.functional.zoo_generator:<name>`.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.functional import FunctionalSampler
from conformance.protocol.bridges import TorchBridge
from tests.functional import generator_samplers as gs

GENERATOR_NAMES = {"sigma_min": "t_min", "sigma_max": "t_max", "rho": "rho", "num_train_timesteps": "steps", "sigma_data": "sigma_data", "clip_denoised": "clip_denoised", "s_noise": "s_noise"}  # fmt: skip
GENERATOR_DEFAULTS = {"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0, "num_train_timesteps": 40, "sigma_data": 0.5, "clip_denoised": True, "s_noise": 1.0}  # fmt: skip
BOTH = ("float64", "float32")
#: Not offered by a functional sampler whose draws come from its own generator: per-position
#: inputs (NOISE-3 needs them); STEP-10 and NOISE-2 run on its generator.
GENERATOR_SKIPS = ("NOISE-3",)
#: What reads the loop from the recording, skipped when the recording cannot be read (the
#: network called more often than there are time points; a model time off its declared map).
READS_THE_LOOP = ("SCHED-1", "SCHED-2", "TIME-1", "GOLD-1", "CIN-1", "STEP-1", "STEP-2",
                  "STEP-3", "STEP-4", "STEP-5", "STEP-9", "STEP-10", "NOISE-2")  # fmt: skip
SCHEDULE = {"SCHED-1": ("-",), "SCHED-2": ("-",), "TIME-1": ("-",), "GOLD-1": ("-",)}


#: The declarations of samplers that fix a value (no parameter) or default to another one.
OWN_SETTINGS: dict[type, dict] = {
    gs.NeverClampsTau: {"fixed": {"clip_denoised": False}},
    gs.AlwaysClampsCOut: {"fixed": {"clip_denoised": True}},
    gs.Float32Time: {"dtypes": ("float32",)},
    gs.OtherDefaults: {
        "defaults": {"sigma_min": 0.003, "sigma_max": 120.0, "clip_denoised": False}
    },
    # x_T drawn from the generator (and by its subclasses): its network sees x (c_in inside)
    gs.DrawsXT: {"x_T": "drawn", "c_in": False},
    gs.DrawsXTOwnGrid: {"x_T": "drawn", "c_in": False, "time_points": "steps"},
    # grids whose N follows the step count (no N parameter)
    gs.DrawsXTGridNPlus1: {"x_T": "drawn", "c_in": False, "time_points": "steps", "grid": "n+1"},
    gs.DrawsXTGridN: {"x_T": "drawn", "c_in": False, "time_points": "steps", "grid": "n"},
}
#: Members declared otherwise than their sampler's own settings say: name -> (the
#: declaration, the departure it makes of a conforming sampler).
DECLARED = {
    "generator_grid_undeclared": (
        {"grid": "N"},
        "its (n + 1)-point grid declared as SCHED-1's indices into the config's N-point grid",
    ),
}


def adapter(sampler: type[gs.GeneratorSampler], name: str) -> Callable[[], FunctionalSampler]:
    own = next((OWN_SETTINGS[c] for c in sampler.__mro__ if c in OWN_SETTINGS), {})
    own = {**own, **DECLARED.get(name, ({}, ""))[0]}
    dtypes = own.get("dtypes", BOTH)
    fixed = own.get("fixed", {})
    grid = own.get("grid", "N")
    own_N = () if grid == "N" else ("num_train_timesteps",)  # its N follows the step count
    parameters = {k: v for k, v in GENERATOR_NAMES.items() if k not in (*fixed, *own_N)}
    defaults = {
        k: v
        for k, v in {**GENERATOR_DEFAULTS, **own.get("defaults", {})}.items()
        if k in parameters
    }

    def make() -> FunctionalSampler:
        return FunctionalSampler(
            sampler(),
            name=name,
            callable="network",
            time_points=own.get("time_points", "ts"),
            grid=grid,
            noise="generator",
            bridge=TorchBridge(),
            dtypes=dtypes,
            parameters=parameters,
            fixed=fixed,
            defaults=defaults,
            x_T=own.get("x_T", "given"),
            c_in=own.get("c_in", True),
        )

    make.__name__ = name
    return make


#: name -> (the sampler, the clauses it must fail on the dtypes given ("-": dtype-free),
#: the clauses skipped because the recording cannot be read).
SAMPLERS: dict[
    str, tuple[type[gs.GeneratorSampler], dict[str, tuple[str, ...]], tuple[str, ...]]
] = {
    "generator": (gs.GeneratorSampler, {}, ()),
    # the denoise
    "generator_c_skip_unshifted": (gs.CSkipUnshifted, {"STEP-1": BOTH}, ()),
    "generator_c_out_no_sqrt": (gs.COutNoSqrt, {"STEP-1": BOTH}, ()),
    # the clamp
    "generator_clamp_ignored": (gs.ClampIgnored, {"STEP-2": BOTH}, ()),
    "generator_clamps_network": (gs.ClampsNetwork, {"STEP-2": BOTH}, ()),
    # the re-noise
    "generator_renoise_tau": (gs.RenoiseTau, {"STEP-3": BOTH, "STEP-4": BOTH}, ()),
    "generator_s_noise_ignored": (gs.SNoiseIgnored, {"STEP-3": BOTH}, ()),
    "generator_noise_after_last": (gs.NoiseAfterLast, {"STEP-4": BOTH}, ()),
    "generator_nan_after_last": (gs.NaNAfterLast, {"STEP-4": BOTH}, ()),
    "generator_draws_up_front": (gs.DrawsUpFront, {}, ()),
    "generator_draws_up_front_tau": (gs.DrawsUpFrontTau, {"STEP-3": BOTH, "STEP-4": BOTH}, ()),
    # the schedule
    "generator_rho_inverted": (gs.RhoInverted, SCHEDULE, ()),
    "generator_ramp_over_n": (gs.RampOverN, SCHEDULE, ()),
    # its own settings: truth there, CFG-1 on every value that differs
    "generator_never_clamps_tau": (
        gs.NeverClampsTau,
        {"CFG-1": ("-",), "STEP-3": BOTH, "STEP-4": BOTH},
        ("STEP-2",),
    ),
    "generator_always_clamps_c_out": (gs.AlwaysClampsCOut, {"STEP-1": BOTH}, ()),
    "generator_other_defaults": (gs.OtherDefaults, {"CFG-1": ("-",)}, ()),
    # the model time
    "generator_float32_time": (gs.Float32Time, {}, ()),
    "generator_time_log10": (gs.TimeLog10, {"CONV-1": BOTH}, READS_THE_LOOP),
    # the number of calls
    "generator_denoises_twice": (gs.DenoisesTwice, {"CONV-1": BOTH}, READS_THE_LOOP),
    # the number of draws
    "generator_draws_twice": (gs.DrawsTwice, {"NOISE-2": BOTH}, ()),
    "generator_skips_last_draw": (gs.SkipsLastDraw, {"NOISE-2": BOTH}, ()),
    "generator_one_step_draws": (gs.OneStepDraws, {"STEP-5": BOTH}, ()),
    # x_T drawn from the generator (its first draw; XT-1 checked too: `WITH_XT1`)
    # (c_in inside the network: CIN-1 is not offered; CONV-1 checks the declaration)
    "generator_draws_x_T": (gs.DrawsXT, {}, ("CIN-1",)),
    # its own grid takes no custom time points: STEP-9's, STEP-10's (XT-1's are a count)
    "generator_draws_x_T_own_grid": (gs.DrawsXTOwnGrid, {}, ("CIN-1", "STEP-9", "STEP-10")),
    # grids of their own whose N follows the step count (`grid`)
    "generator_grid_n_plus_1": (gs.DrawsXTGridNPlus1, {}, ("CIN-1", "STEP-9", "STEP-10")),
    "generator_grid_n": (gs.DrawsXTGridN, {}, ("CIN-1", "STEP-9", "STEP-10")),
    # a schedule departure (TIME-1 passes: its sigmas are read from the times it saw)
    "generator_grid_undeclared": (
        gs.DrawsXTGridNPlus1,
        {"SCHED-1": ("-",), "SCHED-2": ("-",), "GOLD-1": ("-",)},
        ("CIN-1", "STEP-9", "STEP-10"),
    ),
    "generator_x_T_unscaled": (gs.XTUnscaled, {"XT-1": BOTH, "CONV-1": BOTH}, ("CIN-1",)),
    "generator_x_T_drawn_twice": (
        gs.XTDrawnTwice,
        {"NOISE-2": BOTH, "STEP-5": BOTH},  # its leftover draw is one in one-step sampling too
        ("CIN-1",),
    ),
}
#: Members that draw x_T, checked on XT-1 as well.
WITH_XT1 = ("generator_draws_x_T", "generator_draws_x_T_own_grid", "generator_x_T_unscaled",
            "generator_x_T_drawn_twice", "generator_grid_n_plus_1", "generator_grid_n",
            "generator_grid_undeclared")  # fmt: skip
#: Members whose failure of a clause is a SHOULD warning (`zoo.Member.should`): no clamp is
#: Algorithm 1's (CFG-1); sigma_min 0.003 (generator_other_defaults) stays a MUST.
SHOULD_ONLY = {"generator_never_clamps_tau": ("CFG-1",)}
globals().update({name: adapter(sampler, name) for name, (sampler, _, _) in SAMPLERS.items()})


def members() -> dict:
    """name -> `zoo.Member`: each sampler's adapter and expected verdict."""
    from tests.functional.zoo import CHECKED, Member

    return {
        name: Member(
            globals()[name],
            DECLARED[name][1]
            if name in DECLARED
            else (sampler.__doc__ or "").splitlines()[0]
            if fails
            else None,
            (*GENERATOR_SKIPS, *skips),
            fails,
            should=SHOULD_ONLY.get(name, ()),
            clauses=(*CHECKED, "XT-1") if name in WITH_XT1 else (),
        )
        for name, (sampler, fails, skips) in SAMPLERS.items()
    }
