"""Zero-shot editing (CM Algorithm 4, `reference.numpy_reference.editing`) against OpenAI's
golden runs of `iterative_colorization` and `iterative_superres`, and against independent derivations of
the replacement operators (orthogonal projections)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance.truth.golden import load_case
from reference.numpy_reference import algorithm1, editing, formulas
from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler
from reference.toy_models.golden_network import toy_network

EPS, SIGMA_MAX, RHO, SIGMA_DATA = 0.002, 80.0, 7.0, 0.5

# float32 unit roundoff: OpenAI's editing runs are float32 throughout (Q cast to float32).
U32 = 2.0**-24

# Tolerances against the golden float32 runs (the float64 reference is exact to ~1e-15 in
# comparison). One replacement is two inner products of length n with an orthonormal Q
# (A, then A^-1), on values in [-1, 1] (y, and f clamped to [-1, 1]); Wilkinson's bound
# gives |error| <= n u sum_j |Q_ij v_j| <= n u sqrt(n) per product, so 2 n sqrt(n) u.
# n = 3 (colour channels) for colorization, 64 (8x8 patches) for super-resolution.
# The model evaluation adds about ten float32 operations on magnitudes up to ~6.5
# (x at sigma = 1.38 is clamp(f) + 1.38 z with |z| < 4): 10 * 6.5 u < 64 u.
# Line 2 alone (no model): colorization is one replacement, 2 * 3 sqrt(3) u; OpenAI's
# super-resolution line 2 is `average_image_patches`, a float32 mean of 64 values in
# [-1, 1]: |error| <= 64 u.
DEGRADE_ATOL = {"colorization": 2 * 3 * math.sqrt(3) * U32, "superresolution": 64 * U32}
OUTPUT_ATOL = {
    "colorization": (2 * 3 * math.sqrt(3) + 64) * U32,  # 4.4e-6
    "superresolution": (2 * 64 * 8 + 64) * U32,  # 6.5e-5
}
GOLDEN = {"colorization": "colorization_ts_0_22_39", "superresolution": "superres_ts_0_22_39"}
EDITS = {
    "colorization": editing.colorization,
    "superresolution": lambda: editing.superresolution(8),
}


def toy_f(c_out_factor: float = 1.0) -> algorithm1.ConsistencyFn:
    """The golden files' toy network as a consistency model, its output clamped to [-1, 1];
    `c_out_factor` plants an error in c_out."""

    def f(x: np.ndarray, sigma: float) -> np.ndarray:
        c_skip, c_out = formulas.boundary_scalings(sigma, EPS, SIGMA_DATA)
        F = toy_network(formulas.c_in(sigma, SIGMA_DATA) * x, formulas.sigma_to_t(sigma))
        return formulas.clamp(c_skip * x + c_out_factor * c_out * F, True)

    return f


def golden_edit(kind: str, f: algorithm1.ConsistencyFn, luma=editing.LUMA_WEIGHTS) -> np.ndarray:
    case = load_case(GOLDEN[kind])
    sigmas = algorithm1.openai_time_points(
        case.config["ts"], case.config["steps"], EPS, SIGMA_MAX, RHO
    )
    edit = EDITS[kind]()
    return editing.zero_shot_edit(
        f, case["images"], case["x_T"], sigmas, list(case["noise"]), edit, EPS
    )


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_degraded_reference_image_matches_openai(kind: str) -> None:
    """Algorithm 4 line 2: OpenAI's `images = replacement(images, 0)` (colorization) and
    `average_image_patches(images)` (super-resolution) are `degrade(y)`."""
    case = load_case(GOLDEN[kind])
    ours = editing.degrade(case["images"], EDITS[kind]())
    err = np.max(np.abs(ours - case["reference_images"]))
    assert err <= DEGRADE_ATOL[kind], f"{kind}: line 2 differs from OpenAI's by {err:.3g}"


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_edit_matches_openai(kind: str) -> None:
    """The whole loop, ts = [0, 22, 39] of a 40-point grid, replayed with the recorded x_T
    and noise draws against OpenAI's output."""
    case = load_case(GOLDEN[kind])
    err = np.max(np.abs(golden_edit(kind, toy_f()) - case["output"]))
    assert err <= OUTPUT_ATOL[kind], (
        f"{kind}: output differs from OpenAI's by {err:.3g} > {OUTPUT_ATOL[kind]:.3g}"
    )


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_tolerance_catches_planted_error(kind: str) -> None:
    """A 0.1 % error in c_out, or in the reference image, moves the output by more than the
    tolerance: the comparison above can fail."""
    case = load_case(GOLDEN[kind])
    planted = np.max(np.abs(golden_edit(kind, toy_f(c_out_factor=1.001)) - case["output"]))
    assert planted > OUTPUT_ATOL[kind], f"{kind}: 0.1 % in c_out moves the output by {planted:.3g}"

    sigmas = algorithm1.openai_time_points(case.config["ts"], 40, EPS, SIGMA_MAX, RHO)
    y = np.asarray(case["images"]) * 1.001
    out = editing.zero_shot_edit(
        toy_f(), y, case["x_T"], sigmas, list(case["noise"]), EDITS[kind](), EPS
    )
    planted = np.max(np.abs(out - case["output"]))
    assert planted > OUTPUT_ATOL[kind], f"{kind}: 0.1 % in y moves the output by {planted:.3g}"


def test_tolerance_catches_planted_luma_error() -> None:
    """Colorization with a luma weight off by 0.1 % misses OpenAI's output."""
    weights = editing.LUMA_WEIGHTS
    Q = editing.orthogonal_basis_with_first((weights[0] * 1.001, *weights[1:]))
    edit = editing.LinearEdit(
        "colorization",
        lambda x: np.einsum("...chw,cd->...dhw", x, Q),
        lambda a: np.einsum("...dhw,cd->...chw", a, Q),
        editing.colorization().Omega,
    )
    case = load_case(GOLDEN["colorization"])
    sigmas = algorithm1.openai_time_points(case.config["ts"], 40, EPS, SIGMA_MAX, RHO)
    out = editing.zero_shot_edit(
        toy_f(), case["images"], case["x_T"], sigmas, list(case["noise"]), edit, EPS
    )
    assert np.max(np.abs(out - case["output"])) > OUTPUT_ATOL["colorization"]


# -- the operators against their projection form (independent of Q's other columns) -------

# Replacement is a sum of a few float64 products of values below 10 in magnitude: 1e-13
# leaves room for the ~n * 2^-53 * 10 rounding of length-64 inner products.
PROJECTION_ATOL = 1e-13

images = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 2), st.just(3), st.sampled_from([4, 8]), st.sampled_from([4, 8])),
    elements=st.floats(-10, 10, allow_nan=False),
)


@given(y=images, seed=st.integers(0, 2**32 - 1))
def test_colorization_keeps_luma_of_y_and_chroma_of_x(y: np.ndarray, seed: int) -> None:
    """With v the luma direction and P = v v^T / |v|^2 (per pixel, on the channel axis),
    replacement(y, x) = P y + (I - P) x."""
    x = np.random.default_rng(seed).uniform(-10, 10, y.shape)
    v = np.asarray(editing.LUMA_WEIGHTS)
    P = np.outer(v, v) / (v @ v)
    expected = np.einsum("cd,...dhw->...chw", P, y) + np.einsum(
        "cd,...dhw->...chw", np.eye(3) - P, x
    )
    np.testing.assert_allclose(
        editing.replacement(y, x, editing.colorization()), expected, rtol=0, atol=PROJECTION_ATOL
    )


@given(y=images, seed=st.integers(0, 2**32 - 1), p=st.sampled_from([1, 2, 4]))
def test_superresolution_keeps_patch_means_of_y_and_detail_of_x(
    y: np.ndarray, seed: int, p: int
) -> None:
    """replacement(y, x) = patch_mean(y) + x - patch_mean(x), patches p x p per channel."""
    x = np.random.default_rng(seed).uniform(-10, 10, y.shape)

    def patch_mean(a: np.ndarray) -> np.ndarray:
        b, c, H, W = a.shape
        m = a.reshape(b, c, H // p, p, W // p, p).mean(axis=(3, 5))
        return np.repeat(np.repeat(m, p, axis=2), p, axis=3)

    expected = patch_mean(y) + x - patch_mean(x)
    edit = editing.superresolution(p)
    np.testing.assert_allclose(
        editing.replacement(y, x, edit), expected, rtol=0, atol=PROJECTION_ATOL
    )
    np.testing.assert_allclose(
        editing.degrade(y, edit), patch_mean(y), rtol=0, atol=PROJECTION_ATOL
    )


@given(y=images, seed=st.integers(0, 2**32 - 1))
def test_inpainting_is_the_masked_mix(y: np.ndarray, seed: int) -> None:
    """A = I: replacement(y, x) = (1 - Omega) y + Omega x exactly; OpenAI's inpainting
    background -1 fills the generated pixels of line 2."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-10, 10, y.shape)
    Omega = rng.integers(0, 2, y.shape[-2:]).astype(bool)
    edit = editing.inpainting(Omega)
    np.testing.assert_array_equal(editing.replacement(y, x, edit), np.where(Omega, x, y))
    np.testing.assert_array_equal(
        editing.degrade(y, edit, background=-1.0), np.where(Omega, -1.0, y)
    )


def test_bases_are_orthogonal_with_openai_first_columns() -> None:
    for v in (editing.LUMA_WEIGHTS, np.ones(64)):
        Q = editing.orthogonal_basis_with_first(v)
        np.testing.assert_allclose(Q.T @ Q, np.eye(len(v)), rtol=0, atol=1e-15 * len(v))
        np.testing.assert_allclose(Q[:, 0], np.asarray(v) / np.linalg.norm(v), rtol=0, atol=1e-16)


# -- the loop ------------------------------------------------------------------------------


def test_generating_everything_is_algorithm1() -> None:
    """With Omega = 1 everywhere nothing of y is kept and Algorithm 4 is Algorithm 1
    (`reference.numpy_reference.algorithm1.sample` with the clamped toy model), draw for draw."""
    rng = np.random.default_rng(3)
    shape = (2, 3, 4, 4)
    y = rng.uniform(-1, 1, shape)
    x_T = SIGMA_MAX * rng.standard_normal(shape)
    sigmas = algorithm1.openai_time_points([0, 10, 22, 39], 40, EPS, SIGMA_MAX, RHO)
    noises = list(rng.standard_normal((3, *shape)))
    f = toy_f()
    ours = editing.zero_shot_edit(
        f, y, x_T, sigmas, noises, editing.inpainting(np.ones(shape)), EPS
    )
    expected = algorithm1.sample(f, sigmas, x_T, noises, EPS)
    np.testing.assert_array_equal(ours, expected)


def test_generating_everything_is_the_scheduler_loop() -> None:
    """Omega = 1 with a scheduler's `sigmas` (num_inference_steps=40 evaluates at sigma_min
    and ends there) is the numpy scheduler's loop with the toy network, draw for draw."""
    rng = np.random.default_rng(5)
    shape = (1, 3, 4, 4)
    sched = CMStochasticIterativeScheduler()
    sched.set_timesteps(num_inference_steps=40)
    x_T = SIGMA_MAX * rng.standard_normal(shape)
    noises = list(rng.standard_normal((40, *shape)))
    ours = editing.zero_shot_edit(
        toy_f(), np.zeros(shape), x_T, sched.sigmas, noises, editing.inpainting(np.ones(shape)), EPS
    )
    x = x_T
    for k, t in enumerate(sched.timesteps):
        F = toy_network(sched.scale_model_input(x, t), t)
        x = sched.step(F, t, x, noise=noises[k]).prev_sample
    # the same float64 formulas in a different order (c_in x computed once vs twice): ulps
    np.testing.assert_allclose(ours, x, rtol=0, atol=1e-14)


def test_keeping_everything_returns_y() -> None:
    """With Omega = 0 the output is y plus the last re-noising, exactly 0 at an end point eps."""
    rng = np.random.default_rng(4)
    shape = (1, 3, 8, 8)
    y = rng.uniform(-1, 1, shape)
    sigmas = np.array([SIGMA_MAX, 1.0, EPS])
    noises = list(rng.standard_normal((2, *shape)))
    out = editing.zero_shot_edit(
        toy_f(), y, SIGMA_MAX * rng.standard_normal(shape), sigmas, noises,
        editing.inpainting(np.zeros(shape)), EPS,
    )  # fmt: skip
    np.testing.assert_array_equal(out, y)


def test_known_part_survives_the_loop() -> None:
    """After the loop, A(output) agrees with A(y) on the kept coordinates (Algorithm 4's
    guarantee), whatever the model does elsewhere."""
    case = load_case(GOLDEN["superresolution"])
    edit = editing.superresolution(8)
    out = golden_edit("superresolution", toy_f())
    kept = np.broadcast_to(edit.Omega == 0, edit.A(out).shape)
    # the last re-noising has scale sqrt(t_39^2 - eps^2) ~ 1.1e-10 times |z| < 5
    np.testing.assert_allclose(
        edit.A(out)[kept], edit.A(np.asarray(case["images"], np.float64))[kept], rtol=0, atol=1e-9
    )


# -- bad input -----------------------------------------------------------------------------


def test_bad_input_is_refused_with_the_argument_named() -> None:
    f, y = toy_f(), np.zeros((1, 3, 8, 8))
    edit = editing.colorization()
    with pytest.raises(ValueError, match="`x` must have the shape of `y`"):
        editing.replacement(y, np.zeros((1, 3, 8, 4)), edit)
    with pytest.raises(ValueError, match=r"images must be \(\.\.\., 3, H, W\)"):
        editing.replacement(np.zeros((1, 4, 8, 8)), np.zeros((1, 4, 8, 8)), edit)
    with pytest.raises(ValueError, match="multiples of `patch_size`=8"):
        editing.degrade(np.zeros((1, 3, 12, 8)), editing.superresolution(8))
    with pytest.raises(ValueError, match="`patch_size` must be >= 1"):
        editing.superresolution(0)
    with pytest.raises(TypeError, match="`patch_size` must be an int"):
        editing.superresolution(2.0)
    with pytest.raises(ValueError, match="`Omega` must hold only 0 and 1"):
        editing.inpainting(np.full((8, 8), 0.5))
    with pytest.raises(TypeError, match="`y` must be a real numeric array"):
        editing.degrade(np.zeros((1, 3, 8, 8), dtype=complex), edit)
    with pytest.raises(ValueError, match="`noises` must hold one draw per evaluation"):
        editing.zero_shot_edit(f, y, y, [80.0, 1.0, EPS], [y], edit, EPS)
    with pytest.raises(ValueError, match="`sigmas` must be strictly decreasing"):
        editing.zero_shot_edit(f, y, y, [1.0, 80.0, EPS], [y, y], edit, EPS)
    # the end point below the last evaluation point, or equal to it only at eps
    for sigmas in ([80.0, 1.0, 2.0], [80.0, 1.0, 1.0], [80.0, 1.0, 0.001]):
        with pytest.raises(ValueError, match=r"`sigmas` must be strictly decreasing and >= eps"):
            editing.zero_shot_edit(f, y, y, sigmas, [y, y], edit, EPS)
    editing.zero_shot_edit(f, y, y, [80.0, EPS, EPS], [y, y], edit, EPS)
    with pytest.raises(ValueError, match=r"`noises\[1\]` must have the shape of `y`"):
        editing.zero_shot_edit(f, y, y, [80.0, 1.0, EPS], [y, y[..., :4]], edit, EPS)
    with pytest.raises(ValueError, match="`x_T` must have the shape of `y`"):
        editing.zero_shot_edit(f, y, y[..., :4], [80.0, EPS], [y], edit, EPS)


def test_callers_arrays_are_not_modified() -> None:
    case = load_case(GOLDEN["colorization"])
    y, x_T = np.array(case["images"], np.float64), np.array(case["x_T"], np.float64)
    noises = [np.array(z, np.float64) for z in case["noise"]]
    copies = [a.copy() for a in (y, x_T, *noises)]
    sigmas = algorithm1.openai_time_points([0, 22, 39], 40, EPS, SIGMA_MAX, RHO)
    editing.zero_shot_edit(toy_f(), y, x_T, sigmas, noises, editing.colorization(), EPS)
    for before, after in zip(copies, (y, x_T, *noises), strict=True):
        np.testing.assert_array_equal(before, after)
