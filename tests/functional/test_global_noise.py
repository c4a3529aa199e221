"""noise="global": a sampler's draws from torch's or numpy's global random state are routed
to the suite's draws during the call, and a draw that escapes the routing is reported (CONV-1),
never silently taken."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from conformance.functional import ConventionError, FunctionalSampler
from conformance.functional.global_noise import route
from conformance.functional.scripted import NoiseSource, Recording
from conformance.protocol.bridges import NumpyBridge, TorchBridge
from tests.functional import samplers
from tests.functional.test_zoo import PROFILE
from tests.mutants import runner

SHAPE = (2, 3)


def _source(bridge, dtype: str = "float64") -> tuple[NoiseSource, Recording]:
    recording = Recording()
    values = [np.full(SHAPE, 10.0 + j) for j in range(10)]  # draw j is all 10 + j
    return NoiseSource(
        recording, lambda j, like: bridge.asarray(values[j], dtype, "cpu"), bridge
    ), recording


def test_torch_and_numpy_global_draws_are_the_suites() -> None:
    source, recording = _source(TorchBridge())
    x = torch.zeros(SHAPE, dtype=torch.float32)
    with route(source, SHAPE, ("torch", "numpy")) as escapes:
        a = torch.randn_like(x)
        b = torch.randn(SHAPE, dtype=torch.float64)
        c = torch.randn(*SHAPE)
        d = torch.normal(torch.ones(SHAPE), 2.0)
        e = np.random.randn(*SHAPE)  # noqa: NPY002 (the legacy global state is the point)
        f = np.random.normal(1.0, 3.0, size=SHAPE)  # noqa: NPY002
    assert escapes == []
    assert a.dtype == torch.float32 and torch.all(a == 10.0)
    assert b.dtype == torch.float64 and torch.all(b == 11.0)
    assert torch.all(c == 12.0)
    assert torch.all(d == 1.0 + 2.0 * 13.0)
    np.testing.assert_array_equal(e, np.full(SHAPE, 14.0))
    np.testing.assert_array_equal(f, np.full(SHAPE, 1.0 + 3.0 * 15.0))
    assert len(recording.draws_after) == 6
    assert torch.randn_like is not None and torch.randn_like.__module__ != __name__  # restored


def test_a_draw_with_its_own_generator_is_left_alone() -> None:
    source, recording = _source(TorchBridge())
    g = torch.Generator().manual_seed(0)
    with route(source, SHAPE, ("torch",)) as escapes:
        z = torch.randn(SHAPE, generator=g)
    assert escapes == [] and recording.draws_after == []
    assert torch.equal(z, torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize(
    ("draw", "says"),
    [
        (lambda: torch.rand(SHAPE), "torch's global random state advanced"),
        (lambda: torch.empty(SHAPE).normal_(), "torch's global random state advanced"),
        (lambda: torch.randn(5), "a global draw of shape (5,)"),
        (lambda: np.random.uniform(size=SHAPE), "numpy's global random state advanced"),  # noqa: NPY002
        (lambda: np.random.standard_normal(7), "a global draw of shape (7,)"),  # noqa: NPY002
    ],
)
def test_an_escaped_draw_is_reported(draw, says: str) -> None:
    source, _ = _source(TorchBridge())
    with route(source, SHAPE, ("torch", "numpy")) as escapes:
        draw()
    assert any(says in e for e in escapes), escapes


def _global_edm(model, x, sigmas, _noise, **kw):
    """edm_sampler drawing from torch's global state (`torch.randn_like`), as research code
    does."""
    return samplers.edm_sampler(model, x, sigmas, torch.randn_like, **kw)


def _declare(sample, bridge=None) -> FunctionalSampler:
    return FunctionalSampler(
        sample,
        name="global_edm",
        callable="network",
        time_points="sigmas",
        noise="global",
        bridge=bridge or TorchBridge(),
        dtypes=("float64", "float32"),
        parameters={"sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
    )


def adapter() -> FunctionalSampler:
    return _declare(_global_edm)


def escaping() -> FunctionalSampler:
    def sample(model, x, sigmas, _noise, **kw):
        noise = lambda x: torch.empty_like(x).normal_()  # noqa: E731 (a route not replaced)
        return samplers.edm_sampler(model, x, sigmas, noise, **kw)

    return _declare(sample)


def test_a_global_noise_sampler_is_gated() -> None:
    result = runner.run(
        "tests.functional.test_global_noise:adapter",
        ["STEP-3", "STEP-4", "NOISE-2", "CONV-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert {"STEP-3", "STEP-4", "CONV-1"} <= result.passed()


def test_an_escaping_sampler_fails_conv1_only() -> None:
    adapter = escaping()
    with pytest.raises(ConventionError, match="torch's global random state advanced"):
        adapter.check_conventions("cpu", "float64")
    result = runner.run(
        "tests.functional.test_global_noise:escaping",
        ["STEP-3", "CONV-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert set(result.failed()) == {"CONV-1"}, {c: result.messages(c) for c in result.failed()}


def _global_x_T(denoise, like, sigmas, _noise, s_noise=1.0, scale=None):
    """Draws x_T = sigma_1 z from torch's global state (`scale`: another scale, a fault),
    then re-noises from it after every evaluation: a denoiser on a given sigma list."""
    x = (sigmas[0] if scale is None else scale) * torch.randn_like(like)
    for sigma, tau in zip(sigmas[:-1], sigmas[1:], strict=True):
        x = denoise(x, sigma)
        x = x + s_noise * torch.randn_like(x) * (tau**2 - sigmas[-1] ** 2) ** 0.5
    return x


def global_x_T(scale: float | None = None) -> FunctionalSampler:
    return FunctionalSampler(
        functools.partial(_global_x_T, scale=scale),
        name="global_x_T",
        callable="denoiser",
        time_points="sigmas",
        noise="global",
        x_T="drawn_at_first_point",
        bridge=TorchBridge(),
        dtypes=("float64", "float32"),
        parameters={"s_noise": "s_noise"},
        defaults={"s_noise": 1.0},
    )


def global_x_T_unscaled() -> FunctionalSampler:
    return global_x_T(scale=1.0)


X_T_CLAUSES = ["XT-1", "STEP-3", "STEP-5", "NOISE-2", "GOLD-3", "GOLD-4", "CONV-1"]


def test_x_T_drawn_from_the_global_state_is_the_suite_s_first_draw() -> None:
    """x_T drawn by `torch.randn_like` is routed as the first draw: XT-1 holds x_T to
    sigma_max z (its grid starts at sigma_max), the re-noise draws follow it, and GOLD-3/4
    hand it OpenAI's x_T; the same sampler drawing x_T = z fails XT-1 and CONV-1 (the scale
    on a grid that starts below sigma_max) alone: GOLD-3/4 defer to them."""
    result = runner.run(
        "tests.functional.test_global_noise:global_x_T",
        X_T_CLAUSES,
        ["float64", "float32"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert set(X_T_CLAUSES) <= result.passed()
    unscaled = runner.run(
        "tests.functional.test_global_noise:global_x_T_unscaled",
        X_T_CLAUSES,
        ["float64", "float32"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    failed = unscaled.failed()
    assert set(failed) == {"XT-1", "CONV-1"}, {c: unscaled.messages(c) for c in failed}


def test_global_noise_needs_a_global_state() -> None:
    assert _declare(_global_edm, NumpyBridge()).bridge.global_random == ("numpy",)
    jax_bridges = pytest.importorskip("conformance.protocol.bridges")
    pytest.importorskip("jax")
    with pytest.raises(ValueError, match="noise.*no global random state"):
        _declare(_global_edm, jax_bridges.JaxBridge())
