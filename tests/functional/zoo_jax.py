"""The JAX members of the functional zoo: each sampler of `jax_samplers.py` behind a
`FunctionalSampler` on a `JaxBridge`, with the verdict the suite must give it.

Registered into `ZOO` by `zoo.py` (import this module through it). Each factory skips the
test that asks for it where jax is not installed (the `jax` extra; CI installs it).
"""

from __future__ import annotations

import functools

import pytest

from conformance.functional import EDM_TIME, QUARTER_LOG, FunctionalSampler
from tests.functional.zoo import (
    BOTH,
    CHECKED,
    GIVEN_SIGMAS,
    HOOK,
    INSIDE_DENOISER,
    OPENAI_NAMES,
    Member,
)

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


def jax_pmap(faulty: int = -1) -> FunctionalSampler:
    pytest.importorskip("jax")
    from conformance.protocol.bridges import JaxBridge
    from tests.functional import jax_samplers

    return FunctionalSampler(
        functools.partial(jax_samplers.pmap_sampler, faulty=faulty),
        name="jax_pmap",
        callable="network",
        time_points="ts",
        noise="generator",  # a PRNG key, split before each draw, inside the pmapped loop
        model_time=EDM_TIME,
        bridge=JaxBridge(keys="split", compiled=True, pmap_axis="batch"),
        dtypes=BOTH,
        parameters={
            **OPENAI_NAMES,
            "sigma_data": "sigma_data",
            "clip_denoised": "clip_denoised",
            "s_noise": "s_noise",
        },  # fmt: skip
        defaults={**OPENAI_DEFAULTS, "sigma_data": 0.5, "clip_denoised": True, "s_noise": 1.0},
    )


def jax_key_x_T(fault: str | None = None) -> FunctionalSampler:
    pytest.importorskip("jax")
    from conformance.protocol.bridges import JaxBridge
    from tests.functional import jax_samplers

    return FunctionalSampler(
        functools.partial(jax_samplers.key_steps_sampler, fault=fault),
        name=f"jax_key_x_T ({fault})" if fault else "jax_key_x_T",
        callable="denoiser",
        time_points="steps",
        grid="n+1",
        noise="generator",
        x_T="drawn",  # from the first key of a split: draw 0 of split_first
        bridge=JaxBridge(keys="split_first"),
        dtypes=BOTH,
        parameters={k: k for k in ("sigma_min", "sigma_max", "rho", "s_noise")},
        defaults={"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0, "s_noise": 1.0},
    )


def jax_key_x_T_unscaled() -> FunctionalSampler:
    return jax_key_x_T("unscaled")


def jax_key_reused() -> FunctionalSampler:
    return jax_key_x_T("reused")


def jax_pmap_second_device_c_out() -> FunctionalSampler:
    return jax_pmap(faulty=1)


def jax_pmap_hook() -> FunctionalSampler:
    pytest.importorskip("jax")
    from conformance.protocol.bridges import JaxBridge
    from tests.functional import jax_samplers

    return FunctionalSampler(
        jax_samplers.pmap_hook_sampler,
        name="jax_pmap_hook",
        callable="network",
        time_points="sigmas",
        noise="function",  # called on each device's rows
        model_time=EDM_TIME,
        bridge=JaxBridge(compiled=True, pmap_axis="batch"),
        dtypes=("float32",),
        parameters={"sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
        defaults={"sigma_data": 0.5, "clip_denoised": True},
    )


#: Its own grid takes no custom time points (STEP-9, STEP-10); no per-position inputs.
KEY_SKIPS = (*INSIDE_DENOISER, "STEP-9", "STEP-10", "NOISE-3")

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
    # Conforming: Algorithm 1 under jax.pmap (the end point t_min exactly, the re-noise scale
    # factored so that it is exactly 0 after the last evaluation, one key split per draw, the
    # model called inside the pmapped scan). Every clause of CHECKED passed (NOISE-3 skipped:
    # its draws are its key's, no per-position inputs) in 168 s on two cores, NOISE-2, STEP-3,
    # STEP-4 and STEP-8 about 35 to 45 s each (a scan compiled per shape and step count); the
    # suite's default profile on it: PASS in 485 s. Here (47 to 65 s) the clauses the loop
    # reaches: the model's calls and times (TIME-1, CONV-1), the denoise on a device's shard
    # (STEP-1), its key's draws, one per step, rows of the whole batch's draw (NOISE-2,
    # CONV-1), and one-step sampling (STEP-5).
    # Conforming, xax's grid and keys: x_T from the key (XT-1), its draws counted from the
    # keys (NOISE-2: none after the last evaluation is a key's right), its grid SCHED-1's at
    # N = n + 1 (SCHED-1, SCHED-2, GOLD-1); GOLD-3/4 cannot hand it OpenAI's x_T.
    "jax_key_x_T": Member(
        jax_key_x_T, None, KEY_SKIPS, clauses=(*CHECKED, "XT-1"), options=UNTIMED
    ),
    # x_T = z: XT-1 alone (a step count's x_T scale is XT-1's; CONV-1 checks it below
    # sigma_max only, on grids it cannot be given).
    "jax_key_x_T_unscaled": Member(
        jax_key_x_T_unscaled,
        "x_T = z from its key, the scale sigma_max forgotten",
        KEY_SKIPS,
        {"XT-1": BOTH},
        clauses=(*CHECKED, "XT-1"),
        options=UNTIMED,
    ),
    # The same noise key every step: NOISE-2 alone (CONV-1 names the reuse and holds; STEP-3
    # defers to NOISE-2's count of the draws from the keys).
    "jax_key_reused": Member(
        jax_key_reused,
        "the same noise key drawn from at every step (the key never carried)",
        KEY_SKIPS,
        {"NOISE-2": BOTH},
        clauses=(*CHECKED, "XT-1"),
        options=UNTIMED,
    ),
    "jax_pmap": Member(
        jax_pmap,
        None,
        (),
        clauses=("SCHED-1", "TIME-1", "STEP-1", "STEP-5", "NOISE-2", "CONV-1"),
        options=UNTIMED,
    ),
}
