"""The torch scheduler's step bound (tests/bounds.py, where it is derived) is tight: the
unplanted step is within it, and a planted error of 0.1 % in c_out (float32, float64) must
exceed it.
"""

from __future__ import annotations

import pytest
import torch
from bounds import DTYPES, step_bound, step_magnitude, to_numpy, worst_ratio

from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler as NumpyScheduler
from reference.torch_scheduler.scheduler import C_OUT, CMStochasticIterativeScheduler


def one_step_against_reference(dtype: torch.dtype, plant=None, seed: int = 0) -> float:
    """Run step 0 of `timesteps=[22, 0]` in torch and in the reference on the same
    dtype-rounded inputs; return the worst error over the bound. `plant(scheduler)` may
    corrupt the torch scheduler's device table first."""
    config = dict(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, s_noise=1.0, rho=7.0)
    ours, ref = CMStochasticIterativeScheduler(**config), NumpyScheduler(**config)
    ours.set_timesteps(timesteps=[22, 0])
    ref.set_timesteps(timesteps=[22, 0])
    if plant is not None:
        plant(ours)
    g = torch.Generator().manual_seed(seed)
    # A sample mid-way in sigma (x ~ sigma_1 N(0, 1)) so that no term dominates S.
    sigma = float(ref.sigmas[1])
    x = (sigma * torch.randn(4, 3, 16, 16, generator=g, dtype=torch.float64)).to(dtype)
    F = (0.5 * torch.randn(x.shape, generator=g, dtype=torch.float64)).to(dtype)
    z = torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype)
    t_ours = ours.timesteps[1]
    ours.set_begin_index(1)
    ref.set_begin_index(1)
    prev = ours.step(F, t_ours, x, noise=z).prev_sample
    expected = ref.step(to_numpy(F), ref.timesteps[1], to_numpy(x), noise=to_numpy(z)).prev_sample
    S = step_magnitude(to_numpy(x), to_numpy(F), to_numpy(z), sigma, ref.sigmas[2], config)
    return worst_ratio(to_numpy(prev), expected, step_bound(dtype, S))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_unplanted_step_is_within_bound(dtype):
    assert one_step_against_reference(dtype) <= 1.0


def _scale_c_out(factor: float):
    def plant(scheduler) -> None:
        for table in scheduler._schedule.tables.values():
            table[:, C_OUT] *= factor

    return plant


@pytest.mark.parametrize(
    ("dtype", "relative_error"),
    [
        (torch.float64, 1e-3),
        (torch.float32, 1e-3),
        # float16 resolves 2^-11 = 0.05 % and the bound spends 5 of those: 0.1 % is below
        # what any float16 computation can tell apart, so the planted error is 1 %.
        (torch.float16, 1e-2),
        # bfloat16 resolves 2^-8 = 0.4 %; its bound is 2 % of S, so 10 %.
        (torch.bfloat16, 1e-1),
    ],
    ids=str,
)
def test_planted_c_out_error_exceeds_bound(dtype, relative_error):
    assert one_step_against_reference(dtype, plant=_scale_c_out(1 + relative_error)) > 1.0
