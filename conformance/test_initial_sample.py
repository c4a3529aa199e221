"""XT-1: a sampler that draws x_T itself forms x_T = sigma_max z from its first draw, on a grid
that starts at sigma_max as Algorithm 1's does (SPEC.md, "Interface conventions"); the scale
on a grid that starts below it is a declared convention (CONV-1)."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.inputs.strategies import DEFAULT_CONFIG
from conformance.measuring import bounds, drivers
from conformance.measuring.checks import Measure
from conformance.protocol.adapter import Adapter
from conformance.protocol.values import TimestepSpec

#: Algorithm 1's grid: the first point is T = sigma_max. On a grid that starts below it the
#: algorithm says nothing: x_T at sigma_max (diffusers' init_noise_sigma) or at the first point
#: is declared (`x_T="drawn"` or `"drawn_at_first_point"`), and CONV-1 checks the declaration.
#: Three steps by count (indices [26, 13, 0] of N = 40): a grid from sigma_max that every
#: time-point convention expresses, a sampler that takes a step count included.
SPECS = (TimestepSpec(num_inference_steps=3),)


@pytest.mark.clause("XT-1")
@pytest.mark.requires("x_T_drawn")
def test_initial_sample_is_sigma_max_z(
    impl: Adapter, measure: Measure, device: str, dtype: str
) -> None:
    config = dict(DEFAULT_CONFIG)
    sigma_max = float(config["sigma_max"])
    for k, spec in enumerate(SPECS):
        z = drivers.sample(impl, drivers.normal(101 + k, (2, 3, 4)), dtype, device)
        x_T, used = measure.call(
            "the sampler with its x_T drawn", impl.initial_sample, config, spec, z.native
        )
        actual = measure.output(x_T, what="x_T", shape=z.exact.shape, dtype=dtype, device=device)
        # the z it drew: the one offered, or its own generator's first draw (the convention's)
        z_used = measure.output(used, what="z", shape=z.exact.shape, dtype=dtype, device=device)
        expected = sigma_max * z_used
        # one rounding of the product, two more where read back through c_in (SAFETY: 2)
        bound = bounds.SAFETY * 3 * bounds.U[dtype] * np.abs(expected)
        measure.close(
            actual,
            expected,
            bound,
            "x_T against sigma_max z",
            bound_text=f"3u |sigma_max z|, {dtype}",
            where=f"set_timesteps({spec.kwargs()})",
        )
