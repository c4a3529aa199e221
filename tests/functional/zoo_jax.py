"""The JAX members of the functional zoo: each sampler of `jax_samplers.py` behind a
`FunctionalSampler` on a `JaxBridge`, with the verdict the suite must give it.

Registered into `ZOO` by `zoo.py` (import this module through it). Each factory skips the
test that asks for it where jax is not installed (the `jax` extra; CI installs it).
"""

from __future__ import annotations

import pytest

from conformance.functional import EDM_TIME, QUARTER_LOG, FunctionalSampler
from tests.functional.zoo import BOTH, GIVEN_SIGMAS, HOOK, INSIDE_DENOISER, OPENAI_NAMES, Member

#: JAX compiles each operation for each new shape (the suite draws many): no time limit.
UNTIMED = ("--conformance-timeout=0",)
OPENAI_DEFAULTS = {"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0, "num_train_timesteps": 40}


def jax_eager() -> FunctionalSampler:
    pytest.importorskip("jax")
    from conformance.protocol.bridges import JaxBridge
    from tests.functional import jax_samplers

    return FunctionalSampler(
        jax_samplers.eager_sampler,
        name="jax_eager",
        callable="network",
        time_points="sigmas",
        noise="function",
        model_time=EDM_TIME,
        bridge=JaxBridge(),
        dtypes=BOTH,
        parameters={"sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
        defaults={"sigma_data": 0.5, "clip_denoised": True},
    )


def jax_fori() -> FunctionalSampler:
    pytest.importorskip("jax")
    from conformance.protocol.bridges import JaxBridge
    from tests.functional import jax_samplers

    return FunctionalSampler(
        jax_samplers.fori_sampler,
        name="jax_fori",
        callable="network",
        time_points="ts",
        noise="generator",  # a PRNG key; draw i from fold_in(key, i)
        model_time=QUARTER_LOG,
        bridge=JaxBridge(keys="fold_in", compiled=True),
        dtypes=("float32",),
        parameters={
            **OPENAI_NAMES,
            "sigma_data": "sigma_data",
            "clip_denoised": "clip",
            "s_noise": "s_noise",
        },  # fmt: skip
    )


def jax_split() -> FunctionalSampler:
    pytest.importorskip("jax")
    from conformance.protocol.bridges import JaxBridge
    from tests.functional import jax_samplers

    return FunctionalSampler(
        jax_samplers.split_sampler,
        name="jax_split",
        callable="denoiser",
        time_points="ts",
        noise="generator",  # a PRNG key, split before each draw
        bridge=JaxBridge(keys="split"),
        dtypes=BOTH,
        parameters={**OPENAI_NAMES, "s_noise": "s_noise"},
        defaults={**OPENAI_DEFAULTS, "s_noise": 1.0},
    )


JAX_ZOO = {
    "jax_eager": Member(jax_eager, None, (*HOOK, *GIVEN_SIGMAS), options=UNTIMED),
    # Compiled once per grid and shape (seconds each; every clause took 290 s on two loaded
    # cores): the re-noise by its keys through io_callback, and CONV-1, in float32 (its float64
    # run through x64 and its last step are tests/functional/test_jax.py's).
    "jax_fori": Member(
        jax_fori,
        None,
        (),
        clauses=("STEP-3", "CONV-1"),
        options=UNTIMED,
    ),
    "jax_split": Member(
        jax_split,
        "noise after the last evaluation (its end point is 0.002000000000000003: scale 1.1e-10)",
        (*INSIDE_DENOISER, "NOISE-3"),
        {"STEP-4": ("float64",), "STEP-5": ("float64",)},
        options=UNTIMED,
    ),
}
