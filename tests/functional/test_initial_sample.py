"""XT-1 and the `x_T="drawn"` / `"drawn_at_first_point"` declarations: a sampler that draws its
initial sample itself is handed the suite's draw, its x_T is read back (through its own c_in
for a network) and held to x_T = sigma_max z on a grid that starts at sigma_max (XT-1), and to
the declared scale on one that starts below it (CONV-1); the step clauses then run from the
x_T it formed."""

from __future__ import annotations

import pytest

from conformance.functional import FunctionalSampler
from conformance.implementations.numpy_adapter import reference_adapter
from conformance.protocol.adapter import unmet_requirement
from conformance.protocol.bridges import TorchBridge
from tests.functional import samplers, zoo
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
    """Algorithm 1 starts at T = sigma_max: on [39, 22, 0] both scales are its x_T (XT-1
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


def test_a_given_x_T_skips_xt1_and_a_generator_cannot_draw_it() -> None:
    assert "is given x_T (declared)" in unmet_requirement(zoo.openai(), "x_T_drawn")
    assert "is given x_T" in unmet_requirement(reference_adapter(), "x_T_drawn")
    assert unmet_requirement(openai_drawing(), "x_T_drawn") is None
    with pytest.raises(ValueError, match="x_T"):
        FunctionalSampler(
            lambda *a: None,
            name="bad",
            callable="denoiser",
            time_points="ts",
            noise="generator",
            x_T="drawn",
            bridge=TorchBridge(),
            parameters={"s_noise": "s_noise"},
        )
