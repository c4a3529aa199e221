"""The numpy members of the functional zoo: `numpy_samplers.NumpySampler` (a network sampler
that draws x_T, then its re-noise, from the caller's seeded `numpy.random.Generator`) behind a
`FunctionalSampler` on the `NumpyBridge` (noise convention "numpy.standard_normal"), and a
fault of it, each with the verdict the suite must give it.

`NUMPY_ZOO` (name -> `zoo.Member`) is built when first read, so that this module imports
nothing of `zoo` when loaded: it is reached by the suite on its own as
`--impl=tests.functional.zoo_numpy:<name>`, and `zoo.py` may import `NUMPY_ZOO` from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.functional import EDM_TIME, FunctionalSampler
from conformance.protocol.bridges import NumpyBridge
from tests.functional import numpy_samplers as ns

NAMES = {k: k for k in ("num_train_timesteps", "sigma_min", "sigma_max", "rho", "sigma_data",
                        "clip_denoised", "s_noise")}  # fmt: skip
DEFAULTS = {"num_train_timesteps": 40, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0,
            "sigma_data": 0.5, "clip_denoised": True, "s_noise": 1.0}  # fmt: skip


def adapter(sampler: type[ns.NumpySampler], name: str) -> Callable[[], FunctionalSampler]:
    def make() -> FunctionalSampler:
        return FunctionalSampler(
            sampler(),
            name=name,
            callable="network",
            time_points="timesteps",
            noise="generator",  # the caller's numpy.random.Generator, standard_normal(shape)
            bridge=NumpyBridge(),
            dtypes=("float64", "float32"),
            model_time=EDM_TIME,
            c_in=False,  # F(x, t): x_T is the network's first input, read from the recording
            parameters=NAMES,
            defaults=DEFAULTS,
            x_T="drawn",  # x_T = sigma_max z, z the generator's first draw
        )

    make.__name__ = name
    return make


numpy_draws_x_T = adapter(ns.NumpySampler, "numpy_draws_x_T")
numpy_x_T_unscaled = adapter(ns.XTUnscaled, "numpy_x_T_unscaled")


def members() -> dict[str, Any]:
    """name -> `zoo.Member`: each sampler's adapter and expected verdict."""
    from tests.functional.zoo import CHECKED, Member

    both = ("float64", "float32")
    # Not offered: NOISE-3 (its draws are its generator's, no per-position inputs) and CIN-1
    # (c_in is inside its network: declared, CONV-1 checks it). XT-1 is checked as well.
    skips, clauses = ("NOISE-3", "CIN-1"), (*CHECKED, "XT-1")
    return {
        # Conforming: x_T = sigma_max z from the generator's first draw (XT-1); then one
        # draw of the convention per step of a multistep run, the last scaled by
        # sqrt(sigma_min^2 - sigma_min^2) = 0 (NOISE-2, STEP-4), none in one-step sampling
        # (STEP-5); scale s_noise sqrt(tau^2 - sigma_min^2) (STEP-3); Karras sigmas at i / (N - 1)
        # in float64, c_skip, c_out and the clamp of Algorithm 1, the network at
        # 250 ln(sigma + 1e-44): it passes every clause run but the two not offered.
        "numpy_draws_x_T": Member(numpy_draws_x_T, None, skips, clauses=clauses),
        # x_T = z: XT-1 (x_T = sigma_max z on a grid from sigma_max) and CONV-1 (the declared scale
        # sigma_max on [22, 10]) fail on both dtypes. x_T is read from the recording and the
        # steps' draws are the convention's from the second on, as the conforming sampler's:
        # every step clause takes the x_T it formed and passes.
        "numpy_x_T_unscaled": Member(
            numpy_x_T_unscaled,
            (ns.XTUnscaled.__doc__ or "").splitlines()[0],
            skips,
            {"XT-1": both, "CONV-1": both},
            clauses=clauses,
        ),
    }


def __getattr__(name: str) -> Any:
    """`NUMPY_ZOO`, built on first read (it needs `zoo.Member`)."""
    if name == "NUMPY_ZOO":
        globals()["NUMPY_ZOO"] = zoo = members()
        return zoo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
