"""A step's output against the oracle at the sigmas the implementation itself used, and
what went wrong when it fails (SPEC.md, "Step": no cascades, diagnoses).

The step clauses compute their truth at `StepRun.sigmas`, the implementation's own
schedule, so that an error of the schedule fails the schedule's clauses (SCHED, TIME) and
nothing downstream. Where a clause can take the rest from the implementation itself (the
denoised value in two steps that differ only in their noise), it does, so that an error of
the denoise fails the denoise's clause only. A failing check says what the quantity was:
the scalings fitted on the output, the re-noise scale fitted on two draws, whether the
output was clamped, which operation made a NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from conformance import steps, tolerances, truth
from conformance.adapter import Adapter, TimestepSpec
from conformance.measure import Measure

Array = np.ndarray


def sigmas_used(run: steps.StepRun, exact: truth.ExactSchedule) -> Array:
    """The implementation's own sigmas where known, else the exact ones."""
    return exact.sigmas if run.sigmas is None else run.sigmas


def sigma_at(
    run: steps.StepRun, exact: truth.ExactSchedule, k: int
) -> tuple[float, float | None, float | None]:
    """(sigma_k, the next sigma, its ramp) as used; the next is None after the last
    evaluation (its noise scale is 0: STEP-4)."""
    sigmas = sigmas_used(run, exact)
    if k + 1 < len(exact):
        return float(sigmas[k]), float(sigmas[k + 1]), float(exact.ramps[k + 1])
    return float(sigmas[k]), None, None


def config_text(config: Mapping[str, Any]) -> str:
    """A config, for a message."""
    return ", ".join(
        f"{key}={value:.6g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in config.items()
    )


def where(config: Mapping[str, Any], spec: TimestepSpec, k: int | None = None) -> str:
    """The input, for a message: the config, the timesteps and the position."""
    position = "" if k is None else f"position {k} of "
    return f"{position}set_timesteps({spec.kwargs()}) with {config_text(config)}"


def prev_values(measure: Measure, run: steps.StepRun, k: int) -> Array:
    """The k-th prev_sample as float64: an array of the sample's shape (its dtype and
    device are STEP-9's, not this clause's)."""
    return steps.prev_output(measure, run, k, None, None)


def expected_step(
    config: Mapping[str, Any],
    run: steps.StepRun,
    exact: truth.ExactSchedule,
    k: int,
    z: Array | None,
    dtype: str,
) -> tuple[Array, Array, Array]:
    """(expected, bound, scale) of prev_sample at position k with draw z, at the sigmas
    the implementation used."""
    x, F = run.x[k].exact, run.F[k].exact
    z = np.zeros_like(x) if z is None else z
    sigma, sigma_next, ramp_next = sigma_at(run, exact, k)
    expected = truth.step(config, sigma, sigma_next, F, x, z)
    bound, scale = tolerances.step_bound(
        config,
        float(exact.ramps[k]),
        ramp_next,
        x,
        F,
        z,
        dtype,
        sigma=sigma,
        sigma_next=sigma_next,
    )
    return expected, bound, scale


def chained(first: steps.StepRun, second: steps.StepRun, k: int) -> bool:
    """Whether two runs reached position k with different inputs: a loop of its own (a
    functional sampler), whose x_k follows its earlier draws and clamps."""
    return not (
        np.array_equal(first.x[k].exact, second.x[k].exact)
        and np.array_equal(first.F[k].exact, second.F[k].exact)
    )


def denoised_difference(
    config: Mapping[str, Any],
    runs: tuple[steps.StepRun, steps.StepRun],
    exact: truth.ExactSchedule,
    k: int,
    dtype: str,
) -> tuple[Array, Array]:
    """(denoised_1 - denoised_2, its bound) at position k: what a difference of two runs'
    prev_samples holds besides the noise. Exactly 0 when both ran on the same inputs (the
    scheduler path); for a chained loop, the truth at each run's own x_k, each within its
    step bound."""
    first, second = runs
    if not chained(first, second, k):
        zero = np.zeros_like(first.x[k].exact)
        return zero, zero
    den1, bound1, _ = expected_step(config, first, exact, k, None, dtype)
    den2, bound2, _ = expected_step(config, second, exact, k, None, dtype)
    return den1 - den2, bound1 + bound2


# -- diagnoses ----------------------------------------------------------------------------------


def fitted_scalings(prev: Array, x: Array, F: Array) -> tuple[float, float] | None:
    """(c_skip, c_out) fitted by least squares on prev = c_skip x + c_out F (no clamp, no
    noise), or None when x and F do not determine them."""
    A = np.stack([x.ravel(), F.ravel()], axis=1)
    if A.shape[0] < 2 or not np.all(np.isfinite(prev)) or np.linalg.matrix_rank(A) < 2:
        return None
    (c_skip, c_out), *_ = np.linalg.lstsq(A, prev.ravel(), rcond=None)
    return float(c_skip), float(c_out)


def denoise_diagnosis(
    impl: Adapter,
    config: Mapping[str, Any],
    sigma: float,
    sigma_next: float | None,
    prev: Array,
    x: Array,
    F: Array,
    unclamped: Array,
) -> str:
    """What a wrong denoised value is: the scalings fitted on it against the truth's at
    sigma, a clamp where none is asked (or none where one is), a NaN's origin."""
    notes = []
    c_skip, c_out = (
        float(v)
        for v in truth.oracle.boundary_scalings(
            sigma, float(config["sigma_min"]), float(config["sigma_data"])
        )
    )
    nonfinite = ~np.isfinite(prev)
    if nonfinite.any():
        notes.append(
            nonfinite_origin(impl, config, sigma, int(nonfinite.sum()), prev.size, sigma_next)
        )
    beyond = np.abs(unclamped) > 1.0
    if beyond.any():
        at_one = np.abs(prev[beyond]) == 1.0
        if config["clip_denoised"] and not at_one.any():
            notes.append(
                f"the denoised sample was not clamped: {int(beyond.sum())} elements beyond "
                f"+-1 (largest |prev| {float(np.max(np.abs(prev[beyond]))):.6g})"
            )
        if not config["clip_denoised"] and at_one.all():
            notes.append("the denoised sample was clamped to [-1, 1] though clip_denoised = False")
    inside = ~beyond if config["clip_denoised"] else np.ones_like(beyond)
    fit = fitted_scalings(prev[inside], x[inside], F[inside]) if inside.sum() >= 2 else None
    if fit is not None:
        notes.append(
            f"scalings fitted on the output: c_skip {fit[0]:.9g}, c_out {fit[1]:.9g}; "
            f"expected at sigma = {sigma!r}: c_skip {c_skip:.9g}, c_out {c_out:.9g}"
        )
    return "; ".join(notes)


def nonfinite_origin(
    impl: Adapter,
    config: Mapping[str, Any],
    sigma: float,
    count: int,
    size: int,
    sigma_next: float | None = None,
) -> str:
    """Which operation made the non-finite values: the boundary scalings at sigma (asked of
    the implementation), else, when every element is hit, a per-step scalar of the noise
    term (a NaN noise scale times a zero draw or s_noise = 0 is still NaN)."""
    try:
        sigma_native = impl.asarray(np.array([sigma]), "float64", "cpu")
        pair = impl.boundary_scalings(config, sigma_native)
        values = [impl.to_numpy(c).reshape(-1)[0] for c in pair]
    except Exception as exc:  # noqa: BLE001 (a diagnosis, not a check)
        return f"{count} of {size} non-finite; get_scalings_for_boundary_condition raised {exc!r}"
    if not all(np.isfinite(values)):
        return (
            f"{count} of {size} non-finite: the boundary scalings at sigma = {sigma!r} are "
            f"c_skip {values[0]!r}, c_out {values[1]!r} (SCAL-1)"
        )
    if count == size and renoise_near_zero(config, sigma_next):
        return (
            f"{count} of {size} non-finite, every element, though c_skip {values[0]!r} and "
            f"c_out {values[1]!r} are finite at sigma = {sigma!r}: a per-step scalar of the "
            "noise term is NaN (the square root of a negative tau^2 - eps^2, tau the next sigma "
            f"{sigma_next!r}, within rounding of eps): STEP-3/STEP-4"
        )
    return f"{count} of {size} non-finite, with finite scalings at sigma = {sigma!r}"


def renoise_near_zero(config: Mapping[str, Any], sigma_next: float | None) -> bool:
    """Whether tau^2 - eps^2 is within float32 rounding of 0 here (tau the next sigma, or
    sigma_min after the last evaluation): where an implementation's square root of it can
    be of a negative number, so that a NaN output is the re-noise's."""
    eps = float(config["sigma_min"])
    tau = eps if sigma_next is None else min(max(sigma_next, eps), float(config["sigma_max"]))
    return tau**2 - eps**2 <= 8 * tolerances.U["float32"] * tau**2


def noise_is_nan(prev: Array) -> bool:
    """Every element non-finite: a per-step scalar is (see `nonfinite_origin`)."""
    return prev.size > 0 and not np.isfinite(prev).any()


def fitted_scale(d: Array, w: Array, s: float) -> float:
    """The noise scale g fitted on d = s g w by least squares: sum(d w) / (s sum w^2)."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return float(np.sum(d * w) / (s * np.sum(w * w)))


def scale_diagnosis(
    g_hat: float, config: Mapping[str, Any], sigma_next: float | None, worst: str
) -> str:
    """The fitted re-noise scale against s sqrt(tau^2 - eps^2), and what it matches. `g_hat`
    is fitted per unit of s_noise (`fitted_scale`); the message gives the scale itself,
    s g_hat."""
    s = float(config["s_noise"])
    eps = float(config["sigma_min"])
    fitted = s * g_hat
    if sigma_next is None:
        return (
            f"noise scale after the last evaluation: fitted {fitted:.6g} (= {fitted / eps:.3g} "
            f"sigma_min; s_noise {s:.6g} x {g_hat:.6g}, the figure compared, per unit of s_noise), "
            f"expected 0 (tau = sigma_min); worst at {worst}"
        )
    tau = min(max(sigma_next, eps), float(config["sigma_max"]))
    g = float(np.sqrt(max(tau**2 - eps**2, 0.0)))
    if not np.isfinite(fitted):
        return (
            f"re-noise scale: fitted {fitted} (non-finite: the square root of a negative "
            f"tau^2 - eps^2 rounded? tau = {tau!r}, eps = {eps!r}), expected "
            f"s sqrt(tau^2 - eps^2) = {s * g:.9g}; worst at {worst}"
        )
    candidates = {
        "s tau": s * tau,
        "s sqrt(tau^2 - eps^2)": s * g,
        "sqrt(tau^2 - eps^2), s_noise ignored": g,
        "s^2 sqrt(tau^2 - eps^2)": s * s * g,
        "s (tau^2 - eps^2)": s * (tau**2 - eps**2),
    }
    match = min(candidates, key=lambda k: abs(candidates[k] - fitted) / max(abs(fitted), 1e-300))
    rel = abs(candidates[match] - fitted) / max(abs(fitted), 1e-300)
    like = f" (= {match} to {rel:.2g} relative)" if rel < 1e-3 and fitted != 0 else ""
    return (
        f"re-noise scale: fitted {fitted:.9g}{like}, expected s sqrt(tau^2 - eps^2) = "
        f"{s * g:.9g} (s = {s:.6g}, tau = {tau!r}, eps = {eps!r}); worst at {worst}"
    )
