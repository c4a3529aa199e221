"""Declaring a functional sampler's parameters: a mapped parameter has a declared default or
is declared `required` (an error at declaration names it otherwise), and a required one is
passed on every run while CFG-1 checks the defaults of the others."""

from __future__ import annotations

import pytest

from conformance.functional import FunctionalSampler
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.protocol.bridges import TorchBridge
from tests.functional import samplers
from tests.functional.zoo import OPENAI_NAMES

DEFAULTS = {"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0}


def _openai(distiller, x_T, ts, generator, *, steps, **config):
    """OpenAI's sampler with `steps` made a required keyword (no default)."""
    return samplers.openai_sampler(distiller, x_T, None, generator, ts, steps=steps, **config)


def _declare(**kwargs) -> FunctionalSampler:
    return FunctionalSampler(
        _openai,
        name="required steps",
        callable="denoiser",
        time_points="ts",
        noise="randn_like",
        bridge=TorchBridge(),
        dtypes=("float64",),
        parameters=OPENAI_NAMES,
        **kwargs,
    )


def test_a_mapped_parameter_without_a_default_is_named() -> None:
    with pytest.raises(ValueError, match=r"no default for the mapped parameter\(s\) \['num_train"):
        _declare(defaults=DEFAULTS)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"required": ("s_noise",)}, r"`required` names \['s_noise'\]"),
        ({"defaults": {**DEFAULTS, "num_train_timesteps": 40, "s_noise": 1.0}}, "s_noise"),
        (
            {"defaults": {**DEFAULTS, "num_train_timesteps": 40}, "required": ("rho",)},
            r"\['rho'\] declared both",
        ),
    ],
)
def test_inconsistent_parameter_declarations_are_refused(kwargs: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        _declare(**kwargs)


def test_a_required_parameter_is_passed_and_the_others_defaults_are_checked() -> None:
    adapter = _declare(defaults=DEFAULTS, required=("num_train_timesteps",))
    declared = adapter.default_config()  # a run without the defaulted parameters, bit for bit
    assert "num_train_timesteps" not in declared
    assert {k: declared[k] for k in DEFAULTS} == {k: DEFAULT_CONFIG[k] for k in DEFAULTS}
    assert "  required (no default): num_train_timesteps" in adapter.header_lines()


def test_the_report_records_the_declared_conventions_also_under_q() -> None:
    from tests.functional.test_zoo import PROFILE
    from tests.mutants import runner

    result = runner.run(
        "tests.functional.zoo:openai",
        ["CONV-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )  # runner.run passes -q
    conventions = result.report["implementation"]["conventions"]
    assert "noise hook: randn_like (an object with randn_like(x))" in conventions
    assert "  declared: noise hook: randn_like (an object with randn_like(x))" in result.output


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        # k-diffusion's boundary at sigma = 0 (S6 of the public-sampler run): refused, not a
        # ZeroDivisionError inside STEP-4
        ({"fixed": {"sigma_min": 0.0}}, r"`fixed` gives sigma_min = 0.0: .* a finite number > 0"),
        ({"fixed": {"clip_denoised": 1}}, r"`fixed` gives clip_denoised = 1: .* a bool"),
        ({"fixed": {"num_train_timesteps": 1}}, r"`fixed` gives num_train_timesteps = 1: .* >= 2"),
        ({"fixed": {"s_noise": float("nan")}}, r"`fixed` gives s_noise = nan: .* >= 0"),
        ({"fixed": {"sigma_min": 90.0}}, r"`fixed` gives sigma_min = 90.0 and sigma_max = 80.0"),
        (
            {"defaults": {**DEFAULTS, "num_train_timesteps": 40, "rho": -7.0}},
            r"`defaults` gives rho = -7.0: .* a finite number > 0",
        ),
    ],
)
def test_a_value_outside_the_spec_s_domain_is_refused_at_declaration(
    kwargs: dict, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        _declare(**kwargs)
