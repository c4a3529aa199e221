"""Sigma lists as research code takes them: ending in 0.0 (k-diffusion's `get_sigmas_karras`)
or holding the evaluation sigmas alone, sigma_min a parameter of the sampler
(`time_points="sigmas_zero"`, `"sigmas_only"`); a list declared the wrong way fails CONV-1."""

from __future__ import annotations

import math

import pytest
import torch

from conformance.functional import ConventionError, FunctionalSampler
from conformance.protocol.bridges import TorchBridge
from tests.functional.test_zoo import PROFILE
from tests.mutants import runner


def _step(model, x, sigma, tau, eps, sigma_data, noise):
    c_skip = sigma_data**2 / ((sigma - eps) ** 2 + sigma_data**2)
    c_out = (sigma - eps) * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
    c_in = 1 / (sigma**2 + sigma_data**2) ** 0.5
    t = torch.full((x.shape[0],), 250 * math.log(sigma + 1e-44), dtype=torch.float64)
    denoised = (c_skip * x + c_out * model(c_in * x, t)).clamp(-1, 1)
    return denoised + noise(x) * (max(tau, eps) ** 2 - eps**2) ** 0.5


def zero_ended_sampler(model, x, sigmas, noise, sigma_min=0.002, sigma_data=0.5):
    """k-diffusion style: the list ends in 0.0; the re-noise clips to sigma_min."""
    for sigma, tau in zip(sigmas[:-1], sigmas[1:], strict=True):
        x = _step(model, x, sigma, tau, sigma_min, sigma_data, noise)
    return x


def open_ended_sampler(model, x, sigmas, noise, sigma_min=0.002, sigma_data=0.5):
    """The evaluation sigmas alone; after the last, the re-noise goes to sigma_min."""
    for i, sigma in enumerate(sigmas):
        tau = sigmas[i + 1] if i + 1 < len(sigmas) else sigma_min
        x = _step(model, x, sigma, tau, sigma_min, sigma_data, noise)
    return x


def _declare(sample, time_points: str) -> FunctionalSampler:
    return FunctionalSampler(
        sample,
        name=f"{sample.__name__} ({time_points})",
        callable="network",
        time_points=time_points,
        noise="function",
        bridge=TorchBridge(),
        dtypes=("float64",),
        parameters={"sigma_min": "sigma_min", "sigma_data": "sigma_data"},
        fixed={"clip_denoised": True},
    )


def zero_ended() -> FunctionalSampler:
    return _declare(zero_ended_sampler, "sigmas_zero")


def open_ended() -> FunctionalSampler:
    return _declare(open_ended_sampler, "sigmas_only")


@pytest.mark.parametrize("factory", ["zero_ended", "open_ended"])
def test_a_sigma_list_without_sigma_min_is_gated(factory: str) -> None:
    result = runner.run(
        f"tests.functional.test_sigma_lists:{factory}",
        ["STEP-2", "STEP-3", "STEP-4", "CONV-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert {"STEP-2", "STEP-3", "STEP-4", "CONV-1"} <= result.passed()


def test_a_sigma_list_declared_the_wrong_way_fails_conv1() -> None:
    with pytest.raises(
        ConventionError, match="expected 3 evaluations, one per evaluation point .* seen 4"
    ):
        _declare(open_ended_sampler, "sigmas").check_conventions("cpu", "float64")
