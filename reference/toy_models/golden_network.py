"""The closed-form toy network the golden files were recorded with (golden/manifest.json,
`toy_model`): F(u, t) = A tanh(u + B sin(t / C)) + D u, elementwise, with u = c_in x the
scaled sample and t the model time of each batch element."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

A, B, C, D = 1.6, 0.5, 200.0, 0.3


def toy_network(u: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
    """F(u, t); `t` is a scalar or one model time per batch element (the first axis of u)."""
    u = np.asarray(u, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim == 1:
        t = t.reshape((-1,) + (1,) * (u.ndim - 1))
    return A * np.tanh(u + B * np.sin(t / C)) + D * u
