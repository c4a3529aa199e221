"""A model time that is a vector: a sampler that hands its network a 16-wide sinusoidal
embedding of 250 log(sigma) in place of a scalar time, declared as a `TimeEmbedding`
(forward: sigma -> embedding; backward: embedding -> sigma). The suite reads sigma back
through the declared inverse, and CONV-1 checks the declared forward against what the
network saw: an embedding other than the declared one fails CONV-1, naming it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conformance.functional import ConventionError, FunctionalSampler, TimeEmbedding
from conformance.protocol.bridges import TorchBridge
from tests.functional.test_zoo import PROFILE
from tests.mutants import runner

HALF = 8
#: the frequencies of the embedding, 1 down to 10000^(-7/8) (transformer-style)
FREQUENCIES = np.exp(-math.log(10000.0) * np.arange(HALF) / HALF)


def embed(sigma: float, base: float = 10000.0) -> torch.Tensor:
    """The sampler's embedding: sin and cos of 250 log(sigma) at HALF frequencies."""
    c = 250.0 * math.log(sigma)
    args = c * torch.exp(-math.log(base) * torch.arange(HALF, dtype=torch.float64) / HALF)
    return torch.cat([torch.sin(args), torch.cos(args)])


def embedding_sampler(model, x, sigmas, noise, sigma_data=0.5):
    """Algorithm 1 with the network-form boundary scalings; the network sees c_in x and
    the embedding of sigma, one per batch element."""
    eps = sigmas[-1]
    for i in range(len(sigmas) - 1):
        sigma, tau = sigmas[i], sigmas[i + 1]
        c_skip = sigma_data**2 / ((sigma - eps) ** 2 + sigma_data**2)
        c_out = (sigma - eps) * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
        c_in = 1 / (sigma**2 + sigma_data**2) ** 0.5
        t = embed(sigma).repeat(x.shape[0], 1)
        x = (c_skip * x + c_out * model(c_in * x, t)).clamp(-1, 1)
        if i < len(sigmas) - 2:
            x = x + noise(x) * (tau**2 - eps**2) ** 0.5
    return x


def forward(sigma: float) -> np.ndarray:
    args = 250.0 * math.log(sigma) * FREQUENCIES
    return np.concatenate([np.sin(args), np.cos(args)])


def backward(e: np.ndarray) -> float:
    """250 log(sigma) from the lowest frequency's angle (|c f| < pi for sigma in [1e-5, 1e5]),
    refined through each higher frequency, then sigma."""
    angles = np.arctan2(e[:HALF], e[HALF:])
    c = angles[-1] / FREQUENCIES[-1]
    for f, angle in zip(FREQUENCIES[::-1][1:], angles[::-1][1:], strict=True):
        c = (angle + 2 * math.pi * round((c * f - angle) / (2 * math.pi))) / f
    return math.exp(c / 250.0)


SINUSOIDAL = TimeEmbedding("sin, cos of 250 log(sigma) at 10000^(-i/8)", forward, backward, 16)


def declare(model_time: TimeEmbedding = SINUSOIDAL) -> FunctionalSampler:
    return FunctionalSampler(
        embedding_sampler,
        name="embedding",
        callable="network",
        time_points="sigmas",
        noise="function",
        bridge=TorchBridge(),
        dtypes=("float64",),
        model_time=model_time,
        parameters={"sigma_data": "sigma_data"},
        defaults={"sigma_data": 0.5},
    )


def test_the_declared_inverse_reads_sigma_back() -> None:
    for sigma in (0.002, 0.5, 17.3, 80.0):
        assert backward(embed(sigma).numpy()) == pytest.approx(sigma, rel=1e-12)


def test_a_declared_embedding_is_gated() -> None:
    clauses = ["STEP-1", "STEP-3", "CONV-1"]
    result = runner.run(
        "tests.functional.test_time_embedding:declare",
        clauses,
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert set(clauses) <= result.passed()


def test_an_embedding_other_than_declared_fails_conv1() -> None:
    """Declared with base 1000, the sampler's (base 10000) reads back to some sigma whose
    declared embedding is not what the network saw."""
    other = FREQUENCIES ** (3 / 4)  # 1000^(-i/8)

    def forward_1000(sigma: float) -> np.ndarray:
        args = 250.0 * math.log(sigma) * other
        return np.concatenate([np.sin(args), np.cos(args)])

    def backward_1000(e: np.ndarray) -> float:
        return math.exp(float(np.arctan2(e[HALF - 1], e[-1])) / other[-1] / 250.0)

    wrong = TimeEmbedding("sin, cos at 1000^(-i/8)", forward_1000, backward_1000, 16)
    with pytest.raises(ConventionError, match=r"1000\^\(-i/8\).*component \d+ expected"):
        declare(wrong).check_conventions("cpu", "float64")


def test_an_embedding_of_another_width_fails_conv1() -> None:
    narrow = TimeEmbedding("sin, cos, width 12", forward, backward, 12)
    with pytest.raises(ConventionError, match="width 12"):
        declare(narrow).check_conventions("cpu", "float64")
