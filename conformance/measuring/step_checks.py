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

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from conformance import truth
from conformance.inputs.cases import Case
from conformance.measuring import bounds, drivers
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import SCHEDULER_TERMS, Adapter, Terms, unmet_requirement
from conformance.protocol.values import TimestepSpec
from conformance.truth import oracle

Array = np.ndarray


def sigmas_used(run: drivers.StepRun, exact: truth.ExactSchedule) -> Array:
    """The implementation's own sigmas where known, else the exact ones."""
    return drivers.sigmas_or_exact(run.sigmas, exact)


def sigma_at(
    run: drivers.StepRun, exact: truth.ExactSchedule, k: int
) -> tuple[float, float | None, float | None]:
    """(sigma_k, the next sigma, its ramp) as used; the next is None after the last
    evaluation (its noise scale is 0: STEP-4)."""
    sigmas = sigmas_used(run, exact)
    if k + 1 < len(exact):
        return float(sigmas[k]), float(sigmas[k + 1]), float(exact.ramps[k + 1])
    return float(sigmas[k]), None, None


def readback_at(run: drivers.StepRun, k: int) -> float:
    """The relative error with which the k-th sigma used is known (0: exact)."""
    if run.readback is None or k >= len(run.readback):
        return 0.0
    return float(run.readback[k])


def readback_note(run: drivers.StepRun, *positions: int) -> str:
    """For a bound text: that the sigmas were read back from a model time below float64,
    and how precisely (empty where they are exact)."""
    worst = max((readback_at(run, k) for k in positions), default=0.0)
    if worst <= 0.0:
        return ""
    return f"; sigma read back from the model time, known to {worst:.2g} relative (in the bound)"


def config_text(config: Mapping[str, Any]) -> str:
    """A config, for a message."""
    return ", ".join(
        f"{key}={value:.6g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in config.items()
    )


def where(
    config: Mapping[str, Any],
    spec: TimestepSpec,
    k: int | None = None,
    terms: Terms = SCHEDULER_TERMS,
) -> str:
    """The input, for a message: the config, the time points and the position, in the
    implementation's `terms`."""
    position = "" if k is None else f"{terms.position} {k} of "
    return f"{position}{terms.points(config, spec)} with {config_text(config)}"


def noise_text(run: drivers.StepRun) -> str:
    """The noise a run used, for a message: its layer, in the implementation's terms where
    the draws were handed to it."""
    return run.terms.handed_noise if run.layer == "injected" else f"{run.layer} noise"


def prev_values(measure: Measure, run: drivers.StepRun, k: int) -> Array:
    """The k-th prev_sample as float64: an array of the sample's shape (its dtype and
    device are STEP-9's, not this clause's)."""
    return drivers.prev_output(measure, run, k, None, None)


def expected_step(
    config: Mapping[str, Any],
    run: drivers.StepRun,
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
    bound, scale = bounds.step_bound(
        config,
        float(exact.ramps[k]),
        ramp_next,
        x,
        F,
        z,
        dtype,
        sigma=sigma,
        sigma_next=sigma_next,
        readback=readback_at(run, k),
        readback_next=readback_at(run, k + 1),
    )
    return expected, bound, scale


def chained(first: drivers.StepRun, second: drivers.StepRun, k: int) -> bool:
    """Whether two runs reached position k with different inputs: a loop of its own (a
    functional sampler), whose x_k follows its earlier draws and clamps."""
    return not (
        np.array_equal(first.x[k].exact, second.x[k].exact)
        and np.array_equal(first.F[k].exact, second.F[k].exact)
    )


def denoised_difference(
    config: Mapping[str, Any],
    runs: tuple[drivers.StepRun, drivers.StepRun],
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


# -- two runs that differ only in their draws -------------------------------------------------


def loop_inputs(
    case: Case, exact: truth.ExactSchedule, F_scale: float = 1.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(F, x) for positions 0 .. k: x at its noise level (sigma_j z), F of order F_scale."""
    return [
        (
            drivers.normal(case.seed + 2 * j + 1, case.shape, F_scale),
            drivers.normal(case.seed + 2 * j, case.shape, float(exact.sigmas[j])),
        )
        for j in range(case.k + 1)
    ]


def two_runs(
    impl: Adapter,
    measure: Measure,
    case: Case,
    exact: truth.ExactSchedule,
    device: str,
    dtype: str,
    driver: Callable[..., drivers.StepRun] = drivers.run,
) -> tuple[drivers.StepRun, drivers.StepRun]:
    """The same inputs stepped twice with two different draws (`driver`: `drivers.run`,
    injected or two seeds of the declared convention; `drivers.run_with_own_draws`, the
    implementation's own): prev_1 - prev_2 =
    s g (z_1 - z_2), whatever the denoised value, which is the same number in both (a loop
    of its own gets the same draws before position k, so that it reaches x_k alike). A
    sampler that takes all its draws from the caller's generator before its first
    evaluation cannot share them that way: it is run on two plain seeds instead (its x_k
    then differs, and `denoised_difference` takes the truth at each)."""
    inputs = loop_inputs(case, exact)

    def both(shared: int | None) -> tuple[drivers.StepRun, drivers.StepRun]:
        first, second = (
            driver(
                impl,
                measure,
                case.config,
                case.spec,
                device,
                dtype,
                inputs,
                seed=seed,
                same_draws_as=shared,
                until=case.k if shared is not None else 0,
            )
            for seed in (case.seed, case.seed + 1)
        )
        return first, second

    runs = both(case.seed)
    counts = runs[0].draws or []
    if case.k > 0 and counts and counts[0] is not None and counts[0] >= case.n:
        if all(c == 0 for c in counts[1:]):  # drawn up front: in order, one per step
            runs = both(None)
            for run in runs:
                run.draws = None  # the k-th draw is the known z_k
    return runs


def check_renoise(
    measure: Measure,
    case: Case,
    exact: truth.ExactSchedule,
    runs: tuple[drivers.StepRun, drivers.StepRun],
    dtype: str,
    what: str,
    *,
    proportional_only: bool = False,
) -> None:
    """prev_1 - prev_2 against s g (z_1 - z_2) at position k, g = sqrt(tau^2 - eps^2) with
    tau the next sigma the implementation used (STEP-3); `proportional_only`: against
    s g_hat (z_1 - z_2), g_hat fitted (the draws used as given, whatever the scale: NOISE)."""
    k = case.k
    first, second = runs
    odd = not_one_draw(runs, k)
    if odd:  # the draws used are not the known z: NOISE-2's finding, not the scale's
        measure.ok(f"re-noise at {first.terms.position} {k}: not comparable ({odd}: NOISE-2)")
        return
    p1, p2 = prev_values(measure, first, k), prev_values(measure, second, k)
    z1, z2 = first.z[k], second.z[k]
    _, sigma_next, ramp_next = sigma_at(first, exact, k)
    s = float(case.config["s_noise"])
    d, w = p1 - p2, z1 - z2
    delta, delta_bound = denoised_difference(case.config, runs, exact, k, dtype)
    d = d - delta  # 0 unless a loop of its own reached x_k differently in the two runs
    g_hat = fitted_scale(d, w, s) if s > 0 else 0.0
    g = truth.noise_scale(case.config, sigma_next) / s if s > 0 else 0.0
    scale = g_hat if proportional_only and np.isfinite(g_hat) else g
    expected = s * scale * w
    observed = bounds.at_observed_scale(case.config, sigma_next, g_hat)
    bound = bounds.renoise_difference_bound(
        observed if proportional_only else case.config,
        ramp_next,
        z1,
        z2,
        p1,
        p2,
        dtype,
        sigma_next=sigma_next,
        readback=max(readback_at(first, k + 1), readback_at(second, k + 1)),
    )
    bound = bound + delta_bound
    if proportional_only:  # the fitted scale's own error: the bound projected onto w
        bound = bound + np.abs(w) * fitted_scale_bound(bound, w)
    place = where(case.config, case.spec, k, first.terms)
    measure.close(
        d,
        expected,
        bound,
        what,
        bound_text=f"two draws, {dtype}{readback_note(first, k + 1)}",
        scale=np.abs(s * g * w) + np.abs(p1) + np.abs(p2),
        where=place,
        diagnose=lambda worst, bad: scale_diagnosis(
            g_hat,
            case.config,
            sigma_next,
            f"element {worst} of {place}",
            added=fitted_scale(d, w, 1.0),
        ),
    )


def not_one_draw(runs: tuple[drivers.StepRun, ...], k: int) -> str | None:
    """Where a loop of its own counted its draws (a functional sampler) and took other than
    one after evaluation k in some run: what it took (the draw used is then not the known
    z); None otherwise."""
    for run in runs:
        counts = run.draws or []
        if any(c is not None for c in counts) and k < len(counts) and counts[k] != 1:
            taken = "no whole number of" if counts[k] is None else str(counts[k])
            return f"{taken} draws after evaluation {k}, expected one"
    return None


def own_settings(impl: Adapter, case: Case) -> Case:
    """`case` at the config the implementation actually runs (`Adapter.settings`: the values
    a functional sampler fixes in place of those asked), where the test takes its truth."""
    return replace(case, config=impl.settings(case.config, case.spec))


def one_point(case: Case, k: int) -> Case:
    """Position k of `case` alone: one-step sampling at its time point (no noise after it),
    from its given x. A loop of its own (a functional sampler) chains x_k from its earlier
    steps; run alone at the point, it steps from the given x_k and adds no noise, so that
    a clause of the denoise or the clamp sees nothing else."""
    N = int(case.config["num_train_timesteps"])
    ascending = sorted(case.spec.indices(N))
    return Case(case.config, TimestepSpec(timesteps=(ascending[k],)), 0, case.shape, case.seed)


# -- deferring to the step clauses ---------------------------------------------------------------


def within(actual: Array, expected: Array, bound: Array | float) -> bool:
    """|actual - expected| <= bound everywhere (a NaN never is): whether `Measure.close` holds,
    asked before it records anything."""
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(np.asarray(actual) - np.asarray(expected)) <= bound))


def step_departure(
    impl: Adapter,
    config: Mapping[str, Any],
    exact: truth.ExactSchedule,
    sigmas: Array,
    k: int,
    step: tuple[Array, Array, Array],
    prev: Array,
    dtype: str,
    readback: tuple[float, float] = (0.0, 0.0),
) -> str | None:
    """Whether the step at position k, which gave `prev` from `step` = (x, F, z) at the sigmas
    the implementation used, departs from Algorithm 1 (the oracle there) beyond the step
    bound: the step clause that finds it and its diagnosis (the re-noise scale: STEP-3, or
    STEP-4 after the last evaluation; the clamp missing: STEP-2; else the denoised value:
    STEP-1); None where it does
    not. A clause that compares whole runs with another program's (GOLD-3, GOLD-4) defers
    to it, as STEP-5, STEP-9 and STEP-10 defer a NaN to its origin: one bug, one failure."""
    x, F, z = step
    sigma = float(sigmas[k])
    last = k + 1 >= len(exact)
    sigma_next = None if last else float(sigmas[k + 1])
    expected = truth.step(config, sigma, sigma_next, F, x, z)
    bound, _ = bounds.step_bound(
        config,
        float(exact.ramps[k]),
        None if last else float(exact.ramps[k + 1]),
        x,
        F,
        z,
        dtype,
        sigma=sigma,
        sigma_next=sigma_next,
        readback=readback[0],
        readback_next=readback[1],
    )
    if within(prev, expected, bound):
        return None
    denoised = truth.step(config, sigma, None, F, x, None)
    s = float(config["s_noise"])
    noise_term = expected - denoised
    if s > 0 and np.any(z != 0):  # the noise term alone, fitted on the draw handed
        d = prev - denoised
        g_hat = fitted_scale(d, z, s)
        if within(d, s * g_hat * z, bound + np.abs(z) * fitted_scale_bound(bound, z)):
            clause = "STEP-4" if last else "STEP-3"
            diagnosis = scale_diagnosis(g_hat, config, sigma_next, f"step {k}")
            return f"{diagnosis}: {clause}'s finding"
    free = truth.step({**config, "clip_denoised": False}, sigma, None, F, x, None)
    out = prev - noise_term  # the denoised value, where the noise term is right
    with np.errstate(invalid="ignore"):  # +-1 within the bound: a clamp, less the rounding
        out = np.where(np.abs(np.abs(out) - 1.0) <= bound, np.sign(out), out)
    diagnosis = denoise_diagnosis(impl, config, sigma, sigma_next, out, x, F, free)
    if not np.any(noise_term != 0) or fits_scalings(out, x, F, free, bound, config):
        clause = "STEP-2" if "was not clamped" in diagnosis else "STEP-1"  # the clamp's
        return f"denoised value at step {k}: {diagnosis}: {clause}'s finding"
    return (
        f"step {k} departs from Algorithm 1 in its denoised value and its noise term together "
        f"({diagnosis}): the STEP clauses' finding"
    )


def fits_scalings(
    out: Array, x: Array, F: Array, free: Array, bound: Array, config: Mapping[str, Any]
) -> bool:
    """Whether some (c_skip, c_out) explain `out` as c_skip x + c_out F within `bound`, on the
    elements a clamp leaves alone (`free`: the true denoised value before the clamp)."""
    inside = np.abs(free) < 1.0 if config["clip_denoised"] else np.ones(free.shape, dtype=bool)
    fit = fitted_scalings(out[inside], x[inside], F[inside]) if inside.sum() >= 2 else None
    if fit is None:
        return False
    return within(out[inside], fit[0] * x[inside] + fit[1] * F[inside], bound[inside])


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
    wider: Callable[[], tuple[Array, Array, Array]] | None = None,
) -> str:
    """What a wrong denoised value is: the scalings fitted on it against the truth's at
    sigma, a clamp where none is asked (or none where one is), a NaN's origin. One element
    fits no two scalings: `wider()` then gives (prev, x, F) of the same step on more."""
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
    if fit is None and inside.sum() < 2 and wider is not None and not config["clip_denoised"]:
        prev_w, x_w, F_w = wider()
        fit = fitted_scalings(prev_w, x_w, F_w)
        if fit is not None:
            notes.append(
                f"one element fits no two scalings: fitted on the same step on {prev_w.size}"
            )
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
    whose = ""
    if unmet_requirement(impl, "boundary_scalings"):  # never call what is not offered
        eps, sd = float(config["sigma_min"]), float(config["sigma_data"])
        values = [float(c) for c in truth.oracle.boundary_scalings(sigma, eps, sd)]
        whose = " (the oracle's: it offers no scalings function)"
    else:
        try:
            sigma_native = impl.asarray(np.array([sigma]), "float64", "cpu")
            pair = impl.boundary_scalings(config, sigma_native)
            values = [impl.to_numpy(c).reshape(-1)[0] for c in pair]
        except Exception as exc:  # noqa: BLE001 (a diagnosis, not a check)
            return (
                f"{count} of {size} non-finite; get_scalings_for_boundary_condition raised {exc!r}"
            )
    if not all(np.isfinite(values)):
        return (
            f"{count} of {size} non-finite: the boundary scalings at sigma = {sigma!r} are "
            f"c_skip {values[0]!r}, c_out {values[1]!r} (SCAL-1)"
        )
    if count == size and renoise_near_zero(config, sigma_next):
        return (
            f"{count} of {size} non-finite, every element, though c_skip {values[0]!r} and "
            f"c_out {values[1]!r}{whose} are finite at sigma = {sigma!r}: a per-step scalar of the "
            "noise term is NaN (the square root of a negative tau^2 - eps^2, tau the next sigma "
            f"{sigma_next!r}, within rounding of eps): STEP-3/STEP-4"
        )
    return f"{count} of {size} non-finite, with finite scalings{whose} at sigma = {sigma!r}"


def nan_elsewhere(
    impl: Adapter, config: Mapping[str, Any], sigma: float, sigma_next: float | None, prev: Array
) -> str | None:
    """Where an output is NaN in every element and `nonfinite_origin` puts the cause in
    another clause's quantity (the boundary scalings: SCAL-1 and STEP-1; a per-step scalar
    of the noise term: STEP-3 and STEP-4), that origin, so that a clause comparing the
    output with itself does not report it again (one cause, one failure); None otherwise."""
    if not noise_is_nan(prev):
        return None
    origin = nonfinite_origin(impl, config, sigma, prev.size, prev.size, sigma_next)
    return origin if "(SCAL-1)" in origin or "STEP-3/STEP-4" in origin else None


def renoise_near_zero(config: Mapping[str, Any], sigma_next: float | None) -> bool:
    """Whether tau^2 - eps^2 is within float32 rounding of 0 here (tau the next sigma, or
    sigma_min after the last evaluation): where an implementation's square root of it can
    be of a negative number, so that a NaN output is the re-noise's."""
    eps, tau = float(config["sigma_min"]), truth.tau(config, sigma_next)
    return tau**2 - eps**2 <= 8 * bounds.U["float32"] * tau**2


def noise_is_nan(prev: Array) -> bool:
    """Every element non-finite: a per-step scalar is (see `nonfinite_origin`)."""
    return prev.size > 0 and not np.isfinite(prev).any()


def fitted_scale(d: Array, w: Array, s: float) -> float:
    """The noise scale g fitted on d = s g w by least squares: sum(d w) / (s sum w^2)."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return float(np.sum(d * w) / (s * np.sum(w * w)))


def fitted_scale_bound(bound: Array, w: Array, s: float = 1.0) -> float:
    """How far `fitted_scale` can move for errors within `bound` per element of d: the bound
    projected onto w, sum(|w| bound) / (s sum w^2) (0 where w is 0)."""
    return float(np.sum(np.abs(w) * bound) / max(s * np.sum(w * w), 1e-300))


def scale_diagnosis(
    g_hat: float,
    config: Mapping[str, Any],
    sigma_next: float | None,
    worst: str,
    *,
    added: float | None = None,
) -> str:
    """The fitted re-noise scale against s sqrt(tau^2 - eps^2), and what it matches. `g_hat`
    is fitted per unit of s_noise (`fitted_scale`); the message gives the scale itself,
    s g_hat. With s_noise = 0 no unit exists: `added`, the scale of the noise added, fitted
    on the draws themselves, is the figure (a sampler that ignores s_noise adds
    sqrt(tau^2 - eps^2) of it)."""
    s = float(config["s_noise"])
    eps = float(config["sigma_min"])
    fitted = added if s == 0 and added is not None else s * g_hat
    if sigma_next is None:
        return (
            f"noise scale after the last evaluation: fitted {fitted:.6g} (= {fitted / eps:.3g} "
            f"sigma_min; s_noise {s:.6g} x {g_hat:.6g}, the figure compared, per unit of s_noise), "
            f"expected 0 (tau = sigma_min); worst at {worst}"
        )
    tau = truth.tau(config, sigma_next)
    g = float(oracle.noise_scale(tau, eps))
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
