"""Meta-tests of the suite's diagnoses: each diagnosis a failing check can print is made
here by planting its cause, and its message must name the cause: the value fitted on the
output and the candidate it matched, checked against the formulas written out below
(CM Appendix C, EDM Table 1, Algorithm 1 line 5), not against the suite's own code.

Two kinds: `conformance/measuring/step_checks.py`'s diagnoses called on planted inputs (no suite run),
and the diagnoses of the clause tests read from the mutants' runs on their own clauses
(`tests/mutants/cached.py`: the runs `tests/test_mutants.py` makes, so no run is added).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from conformance import truth
from conformance.implementations.numpy_adapter import reference_adapter
from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring import step_checks
from conformance.protocol.values import TimestepSpec
from tests.mutants import cached, runner
from tests.mutants.base import NumpyBase, adapter_for
from tests.mutants.registry import impl_option

NUMBER = r"(?:np\.float64\()?(-?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf))\)?"
#: The messages print fitted values to 9 significant digits (`:.9g`): 1e-8 relative
#: tells the candidates apart (they differ by far more) and holds the printing's rounding.
PRINTED = 1e-8
#: Configs in a message are printed to 6 significant digits (`config_text`): a value
#: recomputed from them is that close, and no closer.
CONFIG_PRINTED = 1e-5


def number(text: str, label: str) -> float:
    """The number printed right after `label` in `text`."""
    match = re.search(re.escape(label) + r"\s*" + NUMBER, text)
    assert match, f"no {label!r} followed by a number in: {text}"
    return float(match.group(1))


def config_of(text: str) -> dict[str, float]:
    """The config a message prints (`name=value, ...`)."""
    return {k: float(v) for k, v in re.findall(r"(sigma_min|sigma_data|s_noise)=([-\d.e+]+)", text)}


def close(actual: float, expected: float, rel: float) -> bool:
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-300)


# -- the formulas, written out ---------------------------------------------------------------


def boundary(sigma: float, eps: float, sd: float) -> tuple[float, float]:
    """CM Appendix C: c_skip = sd^2 / ((sigma - eps)^2 + sd^2), c_out = (sigma - eps) sd /
    sqrt(sigma^2 + sd^2)."""
    return sd**2 / ((sigma - eps) ** 2 + sd**2), (sigma - eps) * sd / math.sqrt(sigma**2 + sd**2)


def edm(sigma: float, sd: float) -> tuple[float, float]:
    """EDM Table 1: c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2)."""
    return sd**2 / (sigma**2 + sd**2), sigma * sd / math.sqrt(sigma**2 + sd**2)


# -- stepcheck's diagnoses on planted inputs ---------------------------------------------------

S, TAU, EPS = 0.8, 3.0, 0.002
G = math.sqrt(TAU**2 - EPS**2)  # Algorithm 1, line 5: the re-noise scale per unit of s_noise
CONFIG: dict[str, Any] = {**DEFAULT_CONFIG, "s_noise": S, "sigma_min": EPS}
RENOISE = {
    "s tau": S * TAU,
    "sqrt(tau^2 - eps^2), s_noise ignored": G,
    "s^2 sqrt(tau^2 - eps^2)": S * S * G,
    "s (tau^2 - eps^2)": S * (TAU**2 - EPS**2),
}


@pytest.mark.parametrize("candidate", sorted(RENOISE))
def test_renoise_diagnosis_names_the_scale_fitted_and_matched(candidate: str) -> None:
    scale = RENOISE[candidate]
    text = step_checks.scale_diagnosis(scale / S, CONFIG, TAU, "here")
    assert f"(= {candidate} to " in text, text
    assert close(number(text, "fitted"), scale, PRINTED), text
    assert close(number(text, "expected s sqrt(tau^2 - eps^2) ="), S * G, PRINTED), text


def test_renoise_diagnosis_claims_no_candidate_it_does_not_match() -> None:
    text = step_checks.scale_diagnosis(1.7 * G, CONFIG, TAU, "here")
    assert "(= " not in text and close(number(text, "fitted"), 1.7 * S * G, PRINTED), text


def test_renoise_diagnosis_after_the_last_evaluation() -> None:
    """Noise 3 sigma_min added after the last evaluation: the scale fitted, its ratio to
    sigma_min (printed to 3 digits), and the figure compared, per unit of s_noise (6 digits)."""
    text = step_checks.scale_diagnosis(3 * EPS / S, CONFIG, None, "here")
    assert close(number(text, "fitted"), 3 * EPS, PRINTED), text
    assert re.search(r"\(= 3 sigma_min; s_noise 0\.8 x ", text), text
    assert close(number(text, "s_noise 0.8 x"), 3 * EPS / S, CONFIG_PRINTED), text
    assert "expected 0 (tau = sigma_min)" in text, text


def test_renoise_diagnosis_of_a_nan_scale() -> None:
    text = step_checks.scale_diagnosis(float("nan"), CONFIG, TAU, "here")
    assert "fitted nan (non-finite" in text and f"tau = {TAU!r}" in text, text


def _planted_step(
    c_skip: float, c_out: float, clip: bool, big: float = 1.0
) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(19)
    x, F = big * rng.standard_normal((3, 5)), big * rng.standard_normal((3, 5))
    unclamped = c_skip * x + c_out * F
    return (np.clip(unclamped, -1, 1) if clip else unclamped), x, F, unclamped


SIGMA = 2.5


def test_denoise_diagnosis_fits_edm_scalings() -> None:
    """EDM's scalings where the boundary ones belong: the fitted pair is EDM's, the
    expected pair the boundary one, at the sigma used."""
    config = {**CONFIG, "clip_denoised": False}
    sd = float(config["sigma_data"])
    prev, x, F, _ = _planted_step(*edm(SIGMA, sd), clip=False, big=0.1)
    text = step_checks.denoise_diagnosis(reference_adapter(), config, SIGMA, 1.0, prev, x, F, prev)
    fitted = (number(text, "fitted on the output: c_skip"), number(text, ", c_out"))
    assert np.allclose(fitted, edm(SIGMA, sd), rtol=PRINTED), text
    expected_part = text.split("expected at sigma", 1)[1]
    expected = (number(expected_part, "c_skip"), number(expected_part, "c_out"))
    assert np.allclose(expected, boundary(SIGMA, EPS, sd), rtol=PRINTED), text


def test_denoise_diagnosis_names_a_clamp_not_asked_for() -> None:
    config = {**CONFIG, "clip_denoised": False}
    prev, x, F, unclamped = _planted_step(*boundary(SIGMA, EPS, 0.5), clip=True, big=10.0)
    text = step_checks.denoise_diagnosis(
        reference_adapter(), config, SIGMA, 1.0, prev, x, F, unclamped
    )
    assert "clamped to [-1, 1] though clip_denoised = False" in text, text


def test_denoise_diagnosis_names_a_clamp_missing() -> None:
    config = {**CONFIG, "clip_denoised": True}
    prev, x, F, unclamped = _planted_step(*boundary(SIGMA, EPS, 0.5), clip=False, big=10.0)
    beyond = int(np.sum(np.abs(unclamped) > 1))
    text = step_checks.denoise_diagnosis(
        reference_adapter(), config, SIGMA, 1.0, prev, x, F, unclamped
    )
    assert f"not clamped: {beyond} elements beyond +-1" in text, text
    assert close(number(text, "largest |prev|"), float(np.max(np.abs(prev))), 1e-5), text


class NanBoundary(NumpyBase):
    """c_out NaN at every sigma."""

    def get_scalings_for_boundary_condition(self, sigma: Any) -> Any:
        c_skip, c_out = super().get_scalings_for_boundary_condition(sigma)
        return c_skip, c_out * np.nan


class RaisingBoundary(NumpyBase):
    """get_scalings_for_boundary_condition raises."""

    def get_scalings_for_boundary_condition(self, sigma: Any) -> Any:
        raise RuntimeError("planted")


def test_nonfinite_origin_names_nan_scalings() -> None:
    impl = adapter_for(NanBoundary, "nan boundary")
    text = step_checks.nonfinite_origin(impl, CONFIG, SIGMA, 15, 15, 1.0)
    assert f"boundary scalings at sigma = {SIGMA!r}" in text and text.endswith("(SCAL-1)"), text
    assert math.isnan(number(text, "c_out")), text
    c_skip = number(text, "c_skip")
    assert close(c_skip, boundary(SIGMA, EPS, float(CONFIG["sigma_data"]))[0], PRINTED), text


def test_nonfinite_origin_names_a_raise() -> None:
    impl = adapter_for(RaisingBoundary, "raising boundary")
    text = step_checks.nonfinite_origin(impl, CONFIG, SIGMA, 2, 15, 1.0)
    assert "2 of 15 non-finite" in text and "raised RuntimeError('planted')" in text, text


def test_nonfinite_origin_names_the_noise_term() -> None:
    """Every element NaN with finite scalings, the next sigma at sigma_min: the square root of
    a rounded-negative tau^2 - eps^2."""
    text = step_checks.nonfinite_origin(reference_adapter(), CONFIG, SIGMA, 15, 15, EPS)
    assert "per-step scalar of the noise term is NaN" in text and "STEP-3/STEP-4" in text, text
    some = step_checks.nonfinite_origin(reference_adapter(), CONFIG, SIGMA, 3, 15, EPS)
    assert some == f"3 of 15 non-finite, with finite scalings at sigma = {SIGMA!r}", some


# -- the clause tests' diagnoses, on the mutants' own runs ----------------------------------------


def _message(mutant: str, clause: str, dtype: str = "float64") -> str:
    """The diagnosis of the mutant's worst failed check of `clause` that has one (a check on
    one element fits no pair of scalings, say), then the line of that check's input (its
    config): "DIAGNOSIS\nworst input: ..."."""
    blocks = cached.failure_blocks(cached.own_clauses_run(mutant), clause, dtype)
    for block in blocks:
        lines = {line.split(":", 1)[0]: line for line in block.splitlines()}
        if "  diagnosis" in lines:
            diagnosis = lines["  diagnosis"].split(":", 1)[1].strip()
            return f"{diagnosis}\n{lines['  worst input'].strip()}"
    raise AssertionError(f"{mutant} on {clause}: no diagnosis in {blocks}")


def _renoise(text: str) -> tuple[float, float, float, float]:
    """(fitted, s, tau, eps) of a re-noise diagnosis."""
    return tuple(number(text, label) for label in ("fitted", "(s =", "tau =", "eps ="))  # type: ignore[return-value]


@pytest.mark.parametrize(
    "mutant, candidate, formula",
    [
        ("noise_sigma_next", "s tau", lambda s, tau, eps: s * tau),
        ("noise_variance", "s (tau^2 - eps^2)", lambda s, tau, eps: s * (tau**2 - eps**2)),
        (
            "s_noise_squared",
            "s^2 sqrt(tau^2 - eps^2)",
            lambda s, tau, eps: s * s * math.sqrt(tau**2 - eps**2),
        ),
        # its worst check is an s_noise = 0 example: the noise added is fitted on the draws
        (
            "s_noise_ignored",
            "sqrt(tau^2 - eps^2), s_noise ignored",
            lambda s, tau, eps: math.sqrt(tau**2 - eps**2),
        ),
    ],
)
def test_renoise_diagnosis_names_the_mutants_scale(mutant: str, candidate: str, formula) -> None:
    text = _message(mutant, "STEP-3")
    fitted, s, tau, eps = _renoise(text)
    assert f"(= {candidate} to " in text, text
    assert close(fitted, formula(s, tau, eps), CONFIG_PRINTED), text  # s printed to 6 digits


def test_last_step_diagnosis_names_the_noise_left() -> None:
    """noise_sigma_next adds s tau after the last evaluation, tau = sigma_min there: the fitted
    scale is s sigma_min."""
    text = _message("noise_sigma_next", "STEP-4")
    config = config_of(text)
    fitted, ratio = number(text, "fitted"), number(text, "(=")
    assert close(fitted, config["s_noise"] * config["sigma_min"], CONFIG_PRINTED), text
    assert close(ratio, config["s_noise"], 1e-2), text  # the ratio is printed to 3 digits


@pytest.mark.parametrize(
    "mutant, scalings",
    [
        ("edm_scalings", lambda sigma, eps, sd: edm(sigma, sd)),
        (
            "c_out_tenth_percent",
            lambda sigma, eps, sd: (
                boundary(sigma, eps, sd)[0],
                1.001 * boundary(sigma, eps, sd)[1],
            ),
        ),
        (
            "sigma_data_squared",
            lambda sigma, eps, sd: (
                boundary(sigma, eps, sd)[0],
                (sigma - eps) * sd**2 / math.sqrt(sigma**2 + sd**2),
            ),
        ),
    ],
)
def test_denoise_diagnosis_names_the_mutants_scalings(mutant: str, scalings) -> None:
    text = _message(mutant, "STEP-1")
    config = config_of(text)
    sigma = number(text, "expected at sigma =")
    eps, sd = config["sigma_min"], config["sigma_data"]
    fitted = (number(text, "fitted on the output: c_skip"), number(text, ", c_out"))
    expected_part = text.split("expected at sigma", 1)[1]
    expected = (number(expected_part, "c_skip"), number(expected_part, "c_out"))
    assert np.allclose(expected, boundary(sigma, eps, sd), rtol=CONFIG_PRINTED), text
    # c_skip is ~1e-9 at large sigma: compared to the size of c_out, the pair's scale
    assert np.allclose(fitted, scalings(sigma, eps, sd), rtol=CONFIG_PRINTED, atol=1e-7), text


@pytest.mark.parametrize("mutant", ["noise_sigma_next", "c_out_tenth_percent"])
def test_golden_replay_defers_a_step_departure(mutant: str) -> None:
    """One bug, one failure: a wrong re-noise scale (STEP-3's) or c_out (STEP-1's) is seen by
    GOLD-3 and GOLD-4 too, on OpenAI's trajectories; they defer to the step clause (which
    `tests/test_mutants.py` holds to fail), and are not violated themselves."""
    result = runner.run(impl_option(mutant), ["GOLD-3", "GOLD-4"], ["float64"])
    assert not result.violated(), result.cells
    ran = {c["clause"] for c in result.cells if c["dtype"] == "float64" and c["status"] == "passed"}
    assert ran == {"GOLD-3", "GOLD-4"}, result.cells


def _departure(prev: np.ndarray, x: np.ndarray, F: np.ndarray, z: np.ndarray) -> str | None:
    """`step_checks.step_departure` at position 0 of the two-point schedule (39, 22) of CONFIG."""
    config = {**CONFIG, "clip_denoised": False}
    exact = truth.schedule(config, TimestepSpec(timesteps=(39, 22)))
    return step_checks.step_departure(
        reference_adapter(), config, exact, exact.sigmas, 0, (x, F, z), prev, "float64"
    )


def test_step_departure_names_the_clause_and_the_quantity() -> None:
    """What GOLD-3 and GOLD-4 defer with: nothing for Algorithm 1's step; for a re-noise of
    s tau, STEP-3 and the scale fitted; for c_out 1.001 times the boundary one, STEP-1 and
    the scalings fitted (the formulas written out above)."""
    config = {**CONFIG, "clip_denoised": False}
    exact = truth.schedule(config, TimestepSpec(timesteps=(39, 22)))
    sigma, tau = float(exact.sigmas[0]), float(exact.sigmas[1])
    sd = float(config["sigma_data"])
    c_skip, c_out = boundary(sigma, EPS, sd)
    rng = np.random.default_rng(5)
    x, F, z = (rng.standard_normal((3, 5)) for _ in range(3))
    right = c_skip * x + c_out * F + S * math.sqrt(tau**2 - EPS**2) * z
    assert _departure(right, x, F, z) is None
    text = _departure(c_skip * x + c_out * F + S * tau * z, x, F, z)
    assert text and "STEP-3's finding" in text and "(= s tau to " in text, text
    assert close(number(text, "fitted"), S * tau, PRINTED), text
    text = _departure(right + 0.001 * c_out * F, x, F, z)
    assert text and "STEP-1's finding" in text, text
    assert close(number(text, ", c_out"), 1.001 * c_out, 1e-6), text


def test_denoise_diagnosis_names_the_clamp_always_applied() -> None:
    text = _message("clamp_always", "STEP-1")
    assert "the denoised sample was clamped to [-1, 1] though clip_denoised = False" in text, text


def test_clamp_diagnosis_names_the_clamp_missing() -> None:
    text = _message("clamp_ignored", "STEP-2")
    assert (
        number(text, "") > 0
        and "elements whose denoised value is beyond +-1 were not clamped" in text
    ), text
    assert close(abs(number(text, "False gives")), abs(number(text, "True gives")), PRINTED), text


def test_add_noise_diagnosis_names_the_variance() -> None:
    """add_noise_variance scales the noise by sigma^2: the fitted scale is sigma^2."""
    text = _message("add_noise_variance", "ADD-1")
    fitted, sigma = number(text, "noise scale fitted"), number(text, "expected sigma")
    assert close(fitted, sigma**2, PRINTED), text


def test_add_noise_diagnosis_names_the_begin_sigma() -> None:
    """add_noise after steps at the begin index's sigma (sigma_max in its example)."""
    text = _message("add_noise_after_step_uses_begin", "ADD-2")
    assert number(text, "noise scale fitted") == DEFAULT_CONFIG["sigma_max"], text


@pytest.mark.parametrize(
    "mutant, c_in",
    [
        ("c_in_no_sqrt", lambda sigma, sd: 1 / (sigma**2 + sd**2)),
        ("c_in_unit_sigma_data", lambda sigma, sd: 1 / math.sqrt(sigma**2 + 1)),
    ],
)
def test_c_in_diagnosis_names_the_mutants_c_in(mutant: str, c_in) -> None:
    text = _message(mutant, "CIN-1")
    sigma, sd = number(text, "at sigma ="), config_of(text)["sigma_data"]
    assert close(
        number(text, "expected 1 / sqrt(sigma^2 + sd^2) ="),
        1 / math.sqrt(sigma**2 + sd**2),
        CONFIG_PRINTED,
    ), text
    assert close(number(text, "c_in fitted on the output"), c_in(sigma, sd), CONFIG_PRINTED), text


def test_time_diagnosis_names_the_factor() -> None:
    """model_time_constant computes 1000 ln(sigma): the ratio is 4, the fit 1000 ln(sigma)."""
    text = _message("model_time_constant", "TIME-2")
    assert close(number(text, "(ratio"), 4.0, 1e-5), text
    text = _message("model_time_constant", "TIME-1")
    assert close(number(text, "(ratio"), 4.0, 1e-5), text
    fit = "the times fit" in text  # printed where the schedule has two sigmas or more
    assert not fit or close(number(text, "the times fit"), 1000.0, 1e-5), text


@pytest.mark.parametrize(
    "mutant, rounded", [("schedule_float32", "float32"), ("schedule_float16", "float16")]
)
def test_schedule_diagnosis_names_the_rounding(mutant: str, rounded: str) -> None:
    dtype = "float32" if mutant == "schedule_float16" else "float64"
    text = _message(mutant, "SCHED-1", dtype)
    assert f"the sigmas are the exact ones rounded to {rounded}" in text, text
    value, exact = number(text, ":"), number(text, "expected")
    assert value == float(np.asarray(exact, dtype=rounded)), text


def test_noise_diagnoses_name_the_draws() -> None:
    assert "not the given z" in _message("injected_noise_ignored", "NOISE-1")
    text = _message("noise_drawn_in_float32", "NOISE-2")
    assert re.search(
        r"fitted scale \S+; the noise added at element .* other numbers than \S+ draws", text
    ), text


def test_golden_diagnosis_names_the_sigma() -> None:
    """c_out 0.1 % off at every sigma; its largest absolute error is at the largest c_out."""
    text = _message("c_out_tenth_percent", "GOLD-2")
    assert number(text, "at sigma =") == DEFAULT_CONFIG["sigma_max"], text


def karras(ramp: float, eps: float, top: float, rho: float) -> float:
    """EDM eq. 5: (top^(1/rho) + ramp (eps^(1/rho) - top^(1/rho)))^rho."""
    return (top ** (1 / rho) + ramp * (eps ** (1 / rho) - top ** (1 / rho))) ** rho


def test_schedule_diagnosis_names_the_ramp_taken() -> None:
    """ramp_over_n takes the ramp i / N: at the printed ramp r = i / (N - 1) its sigma is the
    Karras sigma at r (N - 1) / N, and the expected one the Karras sigma at r."""
    text = _message("ramp_over_n", "SCHED-1")
    config = {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.e+]+)", text)}
    eps, top, rho = config["sigma_min"], config["sigma_max"], config["rho"]
    N = config["num_train_timesteps"]
    ramp = number(text, "sigma at ramp")
    assert close(number(text, "expected"), karras(ramp, eps, top, rho), CONFIG_PRINTED), text
    assert close(number(text, ":"), karras(ramp * (N - 1) / N, eps, top, rho), CONFIG_PRINTED), text


def test_begin_index_diagnosis_names_the_position_fitted() -> None:
    """INDEX-4's diagnosis: an output made with the scalings of position 2 is named so."""
    from conformance.test_index import _which_sigma

    config = {**CONFIG, "clip_denoised": False}
    sd = float(config["sigma_data"])
    sigmas = np.array([80.0, 9.0, 2.5, 0.4, EPS])
    prev, x, F, _ = _planted_step(*boundary(2.5, EPS, sd), clip=False)
    assert _which_sigma(config, sigmas, prev, x, F) == (
        "the output fits the scalings at position 2 (sigma np.float64(2.5))"
    )
