"""Zero-shot editing with a consistency model (CM Algorithm 4), in float64 numpy.

Algorithm 4 of "Consistency Models" (Song et al. 2023, Appendix D) edits a reference
image y with an invertible linear transformation A and a binary mask Omega given in
A's coordinates (1 where the model generates, 0 where y is kept):

    y <- A^-1[(A y) * (1 - Omega) + 0 * Omega]                     line 2
    x ~ N(y, t_1^2 I)                                              line 3
    x <- f(x, t_1)                                                 line 4
    x <- A^-1[(A y) * (1 - Omega) + (A x) * Omega]                 line 5
    for n = 2 to N:
        x ~ N(x, (t_n^2 - eps^2) I)                                line 7
        x <- f(x, t_n)                                             line 8
        x <- A^-1[(A y) * (1 - Omega) + (A x) * Omega]             line 9
    Output: x

OpenAI's `iterative_colorization`, `iterative_superres` and `iterative_inpainting`
(cm/karras_diffusion.py, openai/consistency_models at commit e32b69ee436d518377db86fb2127a3972d0d8716)
run this loop with three choices of (A, Omega); their `mask` is 1 - Omega (1 where the
reference is kept). Like their multistep sampler, they re-noise once more after the last
evaluation, to the last time point of their list (scale about 1e-10 when that point is
t_min), and clamp each f(x, t) to [-1, 1]. `zero_shot_edit` takes the same time list
(evaluation points, then an end point), so that it replays them exactly.

Every A here is orthogonal, so A^-1 = A^T; the replacement then keeps the projection of
y onto the kept coordinates and the projection of x onto the generated ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference.numpy_reference import formulas, validation
from reference.numpy_reference.algorithm1 import ConsistencyFn

Array = NDArray[np.float64]

# ITU-R BT.601 luma weights, as OpenAI's `iterative_colorization` uses them.
LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)


@dataclass(frozen=True)
class LinearEdit:
    """The (A, Omega) of Algorithm 4: `A` and `A_inv` map images (..., C, H, W) to A's
    coordinates and back; `Omega` broadcasts against A's coordinates, 1 where the model
    generates and 0 where the reference image is kept."""

    name: str
    A: Callable[[Array], Array]
    A_inv: Callable[[Array], Array]
    Omega: Array


def replacement(y: ArrayLike, x: ArrayLike, edit: LinearEdit) -> Array:
    """A^-1[(A y) * (1 - Omega) + (A x) * Omega]  (Algorithm 4, lines 5 and 9): y where it is
    known, x where the model generates. OpenAI's `replacement(images, x0)`."""
    y = _image("y", y)
    x = _image("x", x)
    validation.check_shape("x", x.shape, "y", y.shape)
    return edit.A_inv(edit.A(y) * (1.0 - edit.Omega) + edit.A(x) * edit.Omega)


def degrade(y: ArrayLike, edit: LinearEdit, background: float = 0.0) -> Array:
    """A^-1[(A y) * (1 - Omega) + (A b) * Omega]  (Algorithm 4, line 2) with b the constant
    image `background`: what the model is given of y. The paper and OpenAI's colorization and
    super-resolution use b = 0 (a gray image, the patch means); OpenAI's inpainting uses -1."""
    y = _image("y", y)
    return replacement(y, np.full_like(y, float(background)), edit)


def zero_shot_edit(
    f: ConsistencyFn,
    y: ArrayLike,
    x_T: ArrayLike,
    sigmas: ArrayLike,
    noises: Sequence[ArrayLike],
    edit: LinearEdit,
    eps: float,
    clip_denoised: bool = True,
) -> Array:
    """Algorithm 4: evaluate f at sigmas[0], ..., sigmas[K-1], put the known part of y back
    after each evaluation, and re-noise to sigmas[k+1] with `noises[k]`.

    `sigmas` holds the K evaluation points t_1 > ... > t_K and an end point (OpenAI's time
    list, or a scheduler's `sigmas`: t_min at the end, where the last re-noising has scale 0).
    `x_T` is the draw of line 3; OpenAI passes t_1 z without the shift by y, which is
    immaterial at t_1 = 80 (y is within [-1, 1]). `clip_denoised` clamps f(x, t) to [-1, 1]
    as OpenAI's editing loops do. Line 2 (the degraded y) is `degrade`; the loop does not
    need it, since the replacement reads only the kept part (A y) * (1 - Omega).
    """
    y = _image("y", y)
    x = _image("x_T", x_T)
    validation.check_shape("x_T", x.shape, "y", y.shape)
    sigmas = validation.check_time_points(sigmas, eps)
    K = len(sigmas) - 1
    validation.check_noises(noises, K, "y", x.shape)
    for k in range(K):
        x = formulas.clamp(f(x, sigmas[k]), clip_denoised)  # lines 4 and 8
        x = replacement(y, x, edit)  # lines 5 and 9
        x = formulas.renoise(x, noises[k], 1.0, sigmas[k + 1], eps)  # line 7
    return x


# -- the three edits of the paper (Sec. 6.3, Appendix D) -----------------------------------


def orthogonal_basis_with_first(v: ArrayLike) -> Array:
    """An orthogonal matrix Q whose first column is v / |v| (the rest by QR), signed so that
    the first column sums to a positive number: OpenAI's `obtain_orthogonal_matrix`."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1 or len(v) < 1 or not np.all(np.isfinite(v)) or not np.any(v):
        raise ValueError(f"`v` must be a finite, nonzero 1-D vector, got {v!r}")
    matrix = np.eye(len(v))
    matrix[:, 0] = v / np.linalg.norm(v)
    Q = np.linalg.qr(matrix)[0]
    return -Q if np.sum(Q[:, 0]) < 0 else Q


def colorization() -> LinearEdit:
    """Colorization: per pixel, A = Q^T with Q's first column the luma direction
    (0.2989, 0.5870, 0.1140) normalized; Omega keeps coordinate 0 (the gray level) of y and
    generates the other two (the chroma). Images are (..., 3, H, W)."""
    Q = orthogonal_basis_with_first(LUMA_WEIGHTS)

    def A(x: Array) -> Array:
        _check_channels(x, 3)
        return np.einsum("...chw,cd->...dhw", x, Q)

    def A_inv(a: Array) -> Array:
        return np.einsum("...dhw,cd->...chw", a, Q)

    Omega = np.ones((3, 1, 1))
    Omega[0] = 0.0
    return LinearEdit("colorization", A, A_inv, Omega)


def superresolution(patch_size: int = 8) -> LinearEdit:
    """Super-resolution: per channel and per non-overlapping patch of patch_size^2 pixels,
    A = Q^T with Q's first column the constant vector normalized; Omega keeps coordinate 0
    (the patch mean times patch_size) of y and generates the rest. OpenAI uses patch_size=8.
    Images are (..., C, H, W) with H and W multiples of patch_size."""
    if isinstance(patch_size, bool) or not isinstance(patch_size, int | np.integer):
        raise TypeError(f"`patch_size` must be an int, got {type(patch_size).__name__}")
    if patch_size < 1:
        raise ValueError(f"`patch_size` must be >= 1, got {patch_size}")
    p = int(patch_size)
    Q = orthogonal_basis_with_first(np.ones(p * p))

    def to_patches(x: Array) -> Array:
        # (..., C, H, W) -> (..., C, H/p, W/p, p*p), each patch flattened row by row
        *lead, C, H, W = x.shape
        if H % p or W % p:
            raise ValueError(
                f"image height and width must be multiples of `patch_size`={p}, got {H}x{W}"
            )
        x = x.reshape(*lead, C, H // p, p, W // p, p)
        return np.swapaxes(x, -3, -2).reshape(*lead, C, H // p, W // p, p * p)

    def from_patches(a: Array) -> Array:
        *lead, C, h, w, _ = a.shape
        a = np.swapaxes(a.reshape(*lead, C, h, w, p, p), -3, -2)
        return a.reshape(*lead, C, h * p, w * p)

    def A(x: Array) -> Array:
        return to_patches(x) @ Q

    def A_inv(a: Array) -> Array:
        return from_patches(a @ Q.T)

    Omega = np.ones(p * p)
    Omega[0] = 0.0
    return LinearEdit("superresolution", A, A_inv, Omega)


def inpainting(Omega: ArrayLike) -> LinearEdit:
    """Inpainting: A is the identity and Omega (broadcastable to the images, values 0 or 1)
    is 1 on the pixels the model fills in. OpenAI's `mask` is 1 - Omega."""
    Omega = np.asarray(Omega)
    if Omega.dtype == np.bool_:
        Omega = Omega.astype(np.float64)
    if Omega.dtype.kind not in "fiu" or not np.all((Omega == 0) | (Omega == 1)):
        raise ValueError("`Omega` must hold only 0 and 1 (or booleans), 1 where the model fills in")
    return LinearEdit("inpainting", _identity, _identity, Omega.astype(np.float64))


def _identity(x: Array) -> Array:
    return x


def _check_channels(x: Array, C: int) -> None:
    if x.ndim < 3 or x.shape[-3] != C:
        raise ValueError(f"images must be (..., {C}, H, W), got shape {x.shape}")


def _image(name: str, value: ArrayLike) -> Array:
    array = np.asarray(value)
    if array.dtype == np.bool_ or array.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {array.dtype}")
    if array.ndim < 3:
        raise ValueError(f"`{name}` must be an image array (..., C, H, W), got shape {array.shape}")
    return array.astype(np.float64, copy=False)
