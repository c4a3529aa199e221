"""CFG: the scheduler's configuration (SPEC.md, "Configuration"): a scheduler's constructor, or
the declared defaults of a functional sampler (CFG-1)."""

from __future__ import annotations

import math

import pytest

from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import Adapter


def _read(config: object, key: str) -> object:
    """`config.key`, falling back to `config[key]` (diffusers' FrozenDict has both)."""
    if hasattr(config, key):
        return getattr(config, key)
    return config[key]  # type: ignore[index]


@pytest.mark.clause("CFG-1")
@pytest.mark.requires("defaults")
def test_defaults(impl: Adapter, measure: Measure) -> None:
    if not impl.capabilities.stateful:  # a functional sampler: its declared defaults, verified
        declared = measure.call("the declared defaults", impl.default_config)
        differ = {k: v for k, v in declared.items() if _differs(v, DEFAULT_CONFIG[k])}
        if differ:  # every value that differs, in one message, each with its level
            measure.note(
                "fixed or default values",
                "; ".join(
                    f"{k} is {v!r}, expected {DEFAULT_CONFIG[k]!r}"
                    + (f" (SHOULD: {SHOULD[k]})" if k in SHOULD else "")
                    for k, v in differ.items()
                ),
                level="SHOULD" if set(differ) <= set(SHOULD) else "MUST",
            )
        for key in declared:
            measure.ok(f"default {key}")
        return
    scheduler = measure.call("constructor without arguments", impl.scheduler)
    for key, expected in DEFAULT_CONFIG.items():
        try:
            value = _read(scheduler.config, key)
        except (AttributeError, KeyError, TypeError):
            measure.fail(f"config.{key}", "missing from the scheduler's config")
        if value != expected or isinstance(value, bool) != isinstance(expected, bool):
            measure.fail(f"config.{key}", f"is {value!r}, expected {expected!r}")
        measure.ok(f"config.{key}")
    if getattr(scheduler, "init_noise_sigma", None) != DEFAULT_CONFIG["sigma_max"]:
        measure.fail(
            "init_noise_sigma",
            f"is {getattr(scheduler, 'init_noise_sigma', None)!r}, expected sigma_max = 80.0",
        )


#: The defaults a functional sampler SHOULD share, and why not MUST: the paper fixes N and
#: sigma_max per dataset, and Algorithm 1 has no clamp (clamping the denoised sample to
#: [-1, 1] is an image-data convention of OpenAI's code and diffusers' config). A value that
#: changes Algorithm 1 at a given call (sigma_min, sigma_data, rho, s_noise) MUST be the spec's.
SHOULD = {
    "num_train_timesteps": "the paper fixes it per dataset",
    "sigma_max": "the paper fixes it per dataset",
    "clip_denoised": "Algorithm 1 has no clamp; clamping to [-1, 1] is an image-data convention",
}


def _differs(value: object, expected: object) -> bool:
    return value != expected or isinstance(value, bool) != isinstance(expected, bool)


# (argument, bad value, other names an error message may use instead)
INVALID = [
    ("num_train_timesteps", 0, ()),
    ("num_train_timesteps", 1, ()),
    ("num_train_timesteps", 2.5, ()),
    ("num_train_timesteps", "40", ()),
    ("sigma_min", 0.0, ()),
    ("sigma_min", -0.002, ()),
    ("sigma_min", math.nan, ()),
    ("sigma_min", 100.0, ("sigma_max",)),
    ("sigma_max", 0.001, ("sigma_min",)),
    ("sigma_max", math.inf, ()),
    ("sigma_data", 0.0, ()),
    ("sigma_data", -0.5, ()),
    ("s_noise", -1.0, ()),
    ("s_noise", math.nan, ()),
    ("rho", 0.0, ()),
    ("rho", -7.0, ()),
    ("clip_denoised", "yes", ()),
]


@pytest.mark.clause("CFG-2")
@pytest.mark.requires("stateful")
@pytest.mark.parametrize(
    ("argument", "value", "also"), INVALID, ids=[f"{a}={v!r}" for a, v, _ in INVALID]
)
def test_invalid_config_rejected(
    impl: Adapter, measure: Measure, argument: str, value: object, also: tuple[str, ...]
) -> None:
    with measure.rejects(argument, value, also=also):
        impl.scheduler(**{argument: value})
