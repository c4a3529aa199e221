"""The functional zoo: each sampler of `samplers.py` behind a `FunctionalSampler`, with the
verdict the suite must give it, clause by clause.

`ZOO[name]` is a `Member`: a factory of the adapter (reached by the suite as
`--impl=tests.functional.zoo:<name>`), the departure it carries (None: it conforms), the
clauses run against it, and the clauses that must fail (each on its own ClauseViolation)
on the dtypes given; every other clause run must pass or be skipped with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from conformance.functional import (
    EDM_TIME,
    QUARTER_LOG,
    RAW_SIGMA,
    THOUSAND_QUARTER_LOG,
    FunctionalSampler,
)
from conformance.protocol.bridges import TorchBridge
from tests.functional import samplers

OPENAI_NAMES = {"sigma_min": "t_min", "sigma_max": "t_max", "rho": "rho", "num_train_timesteps": "steps"}  # fmt: skip
DIFFUSERS_NAMES = {k: k for k in ("num_train_timesteps", "sigma_min", "sigma_max", "rho")}
BOTH = ("float64", "float32")


# -- the adapters (each what a user writes for their sampler) --------------------------------------


def edm() -> FunctionalSampler:
    return FunctionalSampler(
        lambda model, x, sigmas, noise, **kw: samplers.edm_sampler(model, x, sigmas, noise, **kw),
        name="edm",
        callable="network",
        time_points="sigmas",
        noise="function",
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters={"sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
        defaults={"sigma_data": 0.5, "clip_denoised": True},
    )


def schedule_helper(dtype: type = np.float64) -> FunctionalSampler:
    """A sampler given a sigma list, behind the library's helper: the steps' count declared."""

    def sample(denoise, x, n, noise, sigma_min=0.002, sigma_max=80.0, rho=7.0):
        sigmas = samplers.sigmas_karras(n, sigma_min, sigma_max, rho, dtype)
        return samplers.sigma_list_sampler(denoise, x, sigmas, noise, sigma_min=sigma_min)

    return FunctionalSampler(
        sample,
        name=f"schedule_helper ({np.dtype(dtype).name})",
        callable="denoiser",
        time_points="steps",
        grid="n",  # the helper's n-point grid, every point evaluated
        noise="function",
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters={k: k for k in ("sigma_min", "sigma_max", "rho")},
        defaults={"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0},
    )


def schedule_helper_float32() -> FunctionalSampler:
    return schedule_helper(np.float32)


def jax_style() -> FunctionalSampler:
    return FunctionalSampler(
        samplers.jax_style_sampler,
        name="jax_style",
        callable="network",
        time_points="ts",
        noise="draws",
        model_time=QUARTER_LOG,
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters={**OPENAI_NAMES, "sigma_data": "sigma_data", "clip_denoised": "clip"},
        defaults={
            "sigma_min": 0.002,
            "sigma_max": 80.0,
            "rho": 7.0,
            "num_train_timesteps": 40,
            "sigma_data": 0.5,
            "clip_denoised": True,
        },  # fmt: skip
    )


def raw_sigma() -> FunctionalSampler:
    return FunctionalSampler(
        samplers.raw_sigma_sampler,
        name="raw_sigma",
        callable="network",
        time_points="timesteps",
        noise="randn_like",
        model_time=RAW_SIGMA,
        c_in=False,
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters={**DIFFUSERS_NAMES, "sigma_data": "sigma_data"},
        fixed={"clip_denoised": True},
    )


def openai() -> FunctionalSampler:
    def run(distiller, x_T, ts, generator, **config):
        return samplers.openai_sampler(distiller, x_T, None, generator, ts, **config)

    return FunctionalSampler(
        run,
        name="openai",
        callable="denoiser",
        time_points="ts",
        noise="randn_like",
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters=OPENAI_NAMES,
        defaults={"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0, "num_train_timesteps": 40},
    )


def tau() -> FunctionalSampler:
    return FunctionalSampler(
        lambda denoise, x, sigmas, noise: samplers.tau_sampler(denoise, x, sigmas, noise),
        name="tau",
        callable="denoiser",
        time_points="sigmas",
        noise="draws",
        bridge=TorchBridge(),
        dtypes=BOTH,
    )


def float32_schedule() -> FunctionalSampler:
    return FunctionalSampler(
        samplers.float32_sampler,
        name="float32_schedule",
        callable="denoiser",
        time_points="ts",
        noise="generator",
        bridge=TorchBridge(),
        dtypes=("float32",),
        parameters={**OPENAI_NAMES, "s_noise": "s_noise"},
    )


def clip_off() -> FunctionalSampler:
    return FunctionalSampler(
        samplers.clip_off_sampler,
        name="clip_off",
        callable="network",
        time_points="ts",
        noise="randn_like",
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters={**OPENAI_NAMES, "sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
        defaults={
            "sigma_min": 0.002,
            "sigma_max": 80.0,
            "rho": 7.0,
            "num_train_timesteps": 40,
            "sigma_data": 0.5,
            "clip_denoised": False,
        },  # fmt: skip
    )


def no_cin() -> FunctionalSampler:
    return FunctionalSampler(
        samplers.no_cin_sampler,
        name="no_cin",
        callable="network",
        time_points="sigmas",
        noise="function",
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters={"sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
    )


def edm_cout() -> FunctionalSampler:
    return FunctionalSampler(
        samplers.edm_cout_sampler,
        name="edm_cout",
        callable="network",
        time_points="sigmas",
        noise="function",
        model_time=THOUSAND_QUARTER_LOG,
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters={"sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
    )


def off_by_one() -> FunctionalSampler:
    return FunctionalSampler(
        samplers.off_by_one_sampler,
        name="off_by_one",
        callable="denoiser",
        time_points="timesteps",
        noise="function",
        bridge=TorchBridge(),
        dtypes=BOTH,
        parameters=DIFFUSERS_NAMES,
    )


# -- the expected verdicts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A sampler's adapter and its expected verdict: `fails` must fail (each with its own
    ClauseViolation) at least on the dtypes given ("-": a dtype-free test); `may_fail` are
    clauses of the same departure whose failure depends on the config drawn (a NaN for some
    sigma_min, say); `skips` are skipped with a reason (not offered, or work inside a
    denoiser); every other clause of `CHECKED` must pass. `options` are added to the suite's
    command line."""

    adapter: Callable[[], FunctionalSampler]
    departure: str | None
    skips: tuple[str, ...]
    fails: dict[str, tuple[str, ...]] = field(default_factory=dict)
    may_fail: tuple[str, ...] = ()
    clauses: tuple[str, ...] = ()
    #: Options of the suite's run (a compiling framework's longer time limit, say).
    options: tuple[str, ...] = ()
    #: Clauses of `fails` whose failure is a SHOULD warning, never a MUST failure (CFG-1 of a
    #: sampler that does not clamp: Algorithm 1 has no clamp).
    should: tuple[str, ...] = ()

    @property
    def checked(self) -> tuple[str, ...]:
        """The clauses run against it."""
        return self.clauses or CHECKED

    @property
    def must_pass(self) -> tuple[str, ...]:
        out = (*self.fails, *self.may_fail, *self.skips)
        return tuple(c for c in self.checked if c not in out)

    def verdicts(self) -> dict[str, str]:
        """Clause -> "pass", "FAIL", "fail?" (may fail) or "skip": the table of the zoo."""
        table = dict.fromkeys(self.checked, "pass")
        table.update(dict.fromkeys(self.skips, "skip"))
        table.update(dict.fromkeys(self.may_fail, "fail?"))
        table.update(dict.fromkeys(self.fails, "FAIL"))
        return table


#: The clauses a functional sampler can be checked on (every other clause skips as not
#: offered: stateful API, add_noise, scalings functions, sigma_to_t, step's arguments).
CHECKED = ("CFG-1", "SCHED-1", "SCHED-2", "TIME-1", "CIN-1", "STEP-1", "STEP-2", "STEP-3",
           "STEP-4", "STEP-5", "STEP-8", "STEP-9", "STEP-10", "NOISE-2", "NOISE-3", "GOLD-1",
           "CONV-1")  # fmt: skip
#: Skipped for any sampler whose draws come through its noise hook (they are the suite's),
#: and for a network whose model time is not the spec's 250 log(sigma + 1e-44).
HOOK = ("STEP-10", "NOISE-3")
GIVEN_SIGMAS = ("SCHED-1", "SCHED-2", "TIME-1", "GOLD-1")  # an explicit sigma list
INSIDE_DENOISER = ("TIME-1", "CIN-1", "STEP-1", "STEP-2")

ZOO: dict[str, Member] = {
    "edm": Member(edm, None, (*HOOK, *GIVEN_SIGMAS)),
    "jax_style": Member(jax_style, None, (*HOOK, "TIME-1")),
    "raw_sigma": Member(raw_sigma, None, (*HOOK, "TIME-1", "CIN-1")),
    "openai": Member(
        openai,
        "noise after the last evaluation (its end point is 0.002000000000000003: scale 1.1e-10)",
        (*HOOK, *INSIDE_DENOISER),
        {"STEP-4": ("float64",), "STEP-5": ("float64",)},
    ),
    "tau": Member(
        tau,
        "re-noise with tau, not sqrt(tau^2 - eps^2)",
        (*HOOK, *GIVEN_SIGMAS, *INSIDE_DENOISER, "CFG-1"),
        {"STEP-3": ("float64",)},
    ),
    "float32_schedule": Member(
        float32_schedule,
        "schedule in float32, its end point float32(sigma_min) not clipped",
        (*INSIDE_DENOISER, "CFG-1", "NOISE-3"),
        # A float32 schedule of a float32-only sampler is held to float32 (SCHED-1, GOLD-1
        # pass); its end point re-noises after the last evaluation.
        {"STEP-4": ("float32",)},
        may_fail=("STEP-3", "STEP-5", "STEP-9", "NOISE-2"),  # NaN where sqrt(tau^2 - eps^2) < 0
    ),
    # the helper's grid is under test (SCHED-1, GOLD-1 must pass); custom lists cannot be given
    "schedule_helper": Member(schedule_helper, None, (*HOOK, *INSIDE_DENOISER, "STEP-9")),
    "schedule_helper_float32": Member(
        schedule_helper_float32,
        "the helper's grid in float32, its end point float32(sigma_min)",
        (*HOOK, *INSIDE_DENOISER, "STEP-9"),
        {"SCHED-1": ("-",), "SCHED-2": ("-",), "GOLD-1": ("-",)},
    ),
    "clip_off": Member(
        clip_off, "clamping off by default", HOOK, {"CFG-1": ("-",)}, should=("CFG-1",)
    ),
    "no_cin": Member(no_cin, "no c_in", (*HOOK, *GIVEN_SIGMAS, "CFG-1"), {"CIN-1": BOTH}),
    "edm_cout": Member(
        edm_cout,
        "c_out without the boundary shift",
        (*HOOK, *GIVEN_SIGMAS, "CFG-1"),
        {"STEP-1": BOTH},  # the denoised value; the differential STEP-3/4 and STEP-5 cancel it
    ),
    "off_by_one": Member(
        off_by_one,
        "ramp i / N, not i / (N - 1)",
        (*HOOK, *INSIDE_DENOISER, "CFG-1"),
        # The step clauses take their truth at the sigmas the sampler used (StepRun.sigmas):
        # the wrong time points are the schedule's finding only.
        {"SCHED-1": ("-",), "SCHED-2": ("-",), "GOLD-1": ("-",)},
    ),
}


# -- wrong declarations (CONV-1) -----------------------------------------------------------------


def jax_style_declared_edm_time() -> FunctionalSampler:
    """jax_style declared with the default model time, though its network sees 0.25 log."""
    adapter = jax_style()
    adapter.model_time = EDM_TIME
    adapter.name = "jax_style (declared 250 log)"
    return adapter


def edm_declared_c_in_inside() -> FunctionalSampler:
    """edm declared with c_in inside the network, though the sampler applies it."""
    adapter = edm()
    adapter.applies_c_in = False
    adapter.name = "edm (declared c_in inside)"
    return adapter


from tests.functional import zoo_generator  # noqa: E402 (its members are built on Member, above)

ZOO.update(zoo_generator.members())

# The members that break the clauses no other member breaks (registered on import), and the
# JAX members (tests/functional/zoo_jax.py).
from tests.functional.zoo_breakers import *  # noqa: E402, F403, I001
from tests.functional.zoo_jax import (  # noqa: E402, F401
    JAX_ZOO,
    jax_eager,
    jax_fori,
    jax_key_reused,
    jax_key_x_T,
    jax_key_x_T_unscaled,
    jax_pmap,
    jax_split,
)

ZOO.update(JAX_ZOO)

# The members modelled on public research samplers (tests/functional/zoo_public.py).
from tests.functional.zoo_public import *  # noqa: E402, F403, I001
from tests.functional.zoo_public import PUBLIC_ZOO  # noqa: E402

ZOO.update(PUBLIC_ZOO)

# The numpy members (tests/functional/zoo_numpy.py).
from tests.functional.zoo_numpy import NUMPY_ZOO  # noqa: E402

ZOO.update(NUMPY_ZOO)
