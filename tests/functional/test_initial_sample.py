"""XT-1 and the `x_T="drawn"` / `"drawn_at_first_point"` declarations: a sampler that draws its
initial sample itself is handed the suite's draw, its x_T is read back (through its own c_in
for a network) and held to x_T = sigma_max z on a grid that starts at sigma_max (XT-1), and to
the declared scale on one that starts below it (CONV-1); the step clauses then run from the
x_T it formed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conformance import truth
from conformance.functional import FunctionalSampler
from conformance.functional.running import X_T_SEED
from conformance.harness import claims
from conformance.implementations.numpy_adapter import reference_adapter
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.protocol.adapter import unmet_requirement
from conformance.protocol.bridges import TorchBridge
from conformance.protocol.values import TimestepSpec
from conformance.truth import oracle
from tests.functional import generator_samplers as gs
from tests.functional import samplers, zoo, zoo_generator
from tests.functional.test_zoo import PROFILE
from tests.functional.zoo import OPENAI_NAMES
from tests.mutants import runner


def _openai_drawing(distiller, like, ts, generator, t_max=80.0, **config):
    """OpenAI's karras_sample: x_T = randn * sigma_max, then its sampler."""
    x_T = generator.randn_like(like) * t_max
    return samplers.openai_sampler(distiller, x_T, None, generator, ts, t_max=t_max, **config)


def _openai_first_point(distiller, like, ts, generator, t_min=0.002, t_max=80.0, rho=7.0,
                        steps=40):  # fmt: skip
    """x_T drawn at the first time point's scale, not sigma_max (a convention: declared)."""
    x_T = generator.randn_like(like) * samplers.karras(ts[0], steps, t_min, t_max, rho)
    return samplers.openai_sampler(distiller, x_T, None, generator, ts, t_min, t_max, rho, steps)


def openai_drawing() -> FunctionalSampler:
    return FunctionalSampler(
        _openai_drawing,
        name="openai (draws x_T)",
        callable="denoiser",
        time_points="ts",
        noise="randn_like",
        x_T="drawn",
        bridge=TorchBridge(),
        dtypes=("float64", "float32"),
        parameters=OPENAI_NAMES,
    )


def first_point(x_T: str = "drawn") -> FunctionalSampler:
    return FunctionalSampler(
        _openai_first_point,
        name="openai (x_T at the first point)",
        callable="denoiser",
        time_points="ts",
        noise="randn_like",
        x_T=x_T,
        bridge=TorchBridge(),
        dtypes=("float64",),
        parameters=OPENAI_NAMES,
    )


def first_point_declared() -> FunctionalSampler:
    return first_point("drawn_at_first_point")


def _run(factory: str, clauses: list[str], dtypes: list[str]) -> runner.SuiteRun:
    return runner.run(
        f"tests.functional.test_initial_sample:{factory}",
        clauses,
        dtypes,
        extra=[f"--hypothesis-profile={PROFILE}"],
    )


def test_a_sampler_drawing_x_T_at_sigma_max_passes() -> None:
    result = _run("openai_drawing", ["XT-1", "STEP-3", "CONV-1"], ["float64", "float32"])
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert {"XT-1", "STEP-3", "CONV-1"} <= result.passed()


def test_x_T_at_the_first_time_point_is_a_declared_convention() -> None:
    """Algorithm 1 starts at T = sigma_max: on a grid from it both scales are its x_T (XT-1
    passes); on [22, 10] the scale is the declaration's, checked by CONV-1 alone."""
    result = _run("first_point", ["XT-1", "STEP-3", "CONV-1"], ["float64"])
    assert set(result.failed()) == {"CONV-1"}, {c: result.messages(c) for c in result.failed()}
    assert "XT-1" in result.passed()
    message = result.messages("CONV-1")[0]
    for says in ("timesteps [22, 10]", "expected x_T = 80 z, seen 16.7799 z", "declare x_T='drawn_at_first_point'"):  # fmt: skip
        assert says in message, message
    declared = _run("first_point_declared", ["XT-1", "STEP-3", "CONV-1"], ["float64"])
    assert not declared.failed(), {c: declared.messages(c) for c in declared.failed()}
    assert {"XT-1", "STEP-3", "CONV-1"} <= declared.passed()


def test_a_given_x_T_skips_xt1() -> None:
    assert "is given x_T (declared)" in unmet_requirement(zoo.openai(), "x_T_drawn")
    assert "is given x_T" in unmet_requirement(reference_adapter(), "x_T_drawn")
    assert unmet_requirement(openai_drawing(), "x_T_drawn") is None


def _from_generator(**declared) -> FunctionalSampler:
    return FunctionalSampler(
        lambda *a, **kw: None,
        name="draws x_T from its generator",
        time_points=declared.pop("time_points", "ts"),
        noise="generator",
        x_T="drawn",
        bridge=TorchBridge(),
        parameters={"s_noise": "s_noise"},
        **declared,
    )


def test_x_T_from_the_generator_is_its_first_draw() -> None:
    """Declarable where x_T can be read: its draw is no step's (`draws_before_loop`), the
    steps' draws are the convention's from the second on, and XT-1's z is the first."""
    adapter = _from_generator(callable="denoiser")
    assert adapter.draws_before_loop == 1 and zoo.openai().draws_before_loop == 0
    assert unmet_requirement(adapter, "x_T_drawn") is None
    g = torch.Generator().manual_seed(3)
    convention = [torch.randn((2, 3), generator=g, dtype=torch.float64) for _ in range(3)]
    steps = adapter.reproduce_noise(3, (2, 3), "float64", "cpu", 2)
    assert all(torch.equal(a, b) for a, b in zip(steps, convention[1:], strict=True))
    conforming = zoo_generator.generator_draws_x_T()
    z = conforming.asarray(np.ones((2, 3)), "float64", "cpu")
    x_T, used = conforming.initial_sample(dict(DEFAULT_CONFIG), TimestepSpec(timesteps=(39, 0)), z)
    g = torch.Generator().manual_seed(X_T_SEED)
    first = torch.randn((2, 3), generator=g, dtype=torch.float64)
    assert torch.equal(used, first) and torch.equal(x_T, 80.0 * first)


def test_x_T_from_the_generator_where_it_cannot_be_read_is_refused() -> None:
    with pytest.raises(ValueError, match="`x_T` 'drawn' with noise='generator' and c_in=True"):
        _from_generator(callable="network")


def test_scalings_are_read_past_the_x_T_it_draws() -> None:
    """CONV-1's one-step reading (`_calibrate`) of a sampler that draws x_T from its generator:
    c_skip over the x_T it drew, c_out as the difference of two runs from that same x_T."""
    adapter = zoo_generator.generator_draws_x_T()
    config = dict(DEFAULT_CONFIG)
    read = adapter._calibrate(config, TimestepSpec(timesteps=(39, 22, 0)), 1, "float64", "cpu")
    sigma = float(truth.schedule(config, TimestepSpec(timesteps=(22,))).sigmas[0])
    c_skip, c_out = oracle.boundary_scalings(sigma, config["sigma_min"], config["sigma_data"])
    assert read.c_in is None
    np.testing.assert_allclose([read.c_skip, read.c_out], [float(c_skip), float(c_out)], rtol=1e-12)


class _UniformDraws(gs.DrawsXT):
    """Draws by torch.rand, not the declared torch.randn."""

    def draw(self, x, generator):
        return torch.rand(x.shape, generator=generator, dtype=x.dtype)


@pytest.mark.parametrize(("sampler", "refuted"), [(gs.DrawsXT, False), (_UniformDraws, True)])
def test_the_noise_convention_is_probed_past_x_T(sampler: type, refuted: bool) -> None:
    """The claim probe steps from the x_T the sampler drew, alike in two runs restarted at
    evaluation 0 from two seeds: their difference is the steps' draws alone."""
    adapter = zoo_generator.adapter(sampler, "probed")()
    problems = claims.check(adapter, ["cpu"], ["float64"])
    assert bool(problems) == refuted and all(
        "noise_convention='torch.randn'" in p for p in problems
    )


def test_scalings_on_its_own_grid_are_read_without_noise() -> None:
    """On its own grid the scalings are read through whole runs: with x_T drawn from the
    generator, "x_T = 1" is another seed's x_T, and s_noise = 0 keeps a float32 draw of scale
    sigma from swamping c_skip x (4.8e-4 off at sigma_max, over the 1e-4 tolerance)."""
    adapter = zoo_generator.generator_draws_x_T_own_grid()
    config = {**DEFAULT_CONFIG, "num_train_timesteps": 33}
    read = adapter._calibrate(config, TimestepSpec(num_inference_steps=8), 0, "float32", "cpu")
    assert adapter._disagreement(config, 80.0, read) <= adapter._map_tolerance("float32")
