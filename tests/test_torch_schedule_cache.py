"""The torch scheduler keeps the schedules `set_timesteps` builds and reuses them: reuse must
be invisible. Truth is the numpy reference's schedule (itself checked against the mpmath
oracle in test_reference_oracle.py) and a fresh scheduler run on the same inputs."""

from __future__ import annotations

import numpy as np
import torch

from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler as NumpyScheduler
from reference.torch_scheduler.scheduler import KEPT_SCHEDULES, CMStochasticIterativeScheduler


def _reference_schedule(**kwargs: object) -> tuple[np.ndarray, np.ndarray]:
    ref = NumpyScheduler()
    ref.set_timesteps(**kwargs)
    return ref.timesteps, ref.sigmas


def _assert_schedule(scheduler: CMStochasticIterativeScheduler, **kwargs: object) -> None:
    # Both build the float64 schedule with the same `reference.numpy_reference.formulas` calls:
    # equal bit for bit.
    timesteps, sigmas = _reference_schedule(**kwargs)
    np.testing.assert_array_equal(scheduler.timesteps.numpy(), timesteps)
    np.testing.assert_array_equal(scheduler.sigmas.numpy(), sigmas)


def _loop(scheduler: CMStochasticIterativeScheduler, x: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    for t in scheduler.timesteps:
        F = torch.tanh(scheduler.scale_model_input(x, t))  # a cheap stand-in network
        x = scheduler.step(F, t, x, generator=generator).prev_sample
    return x


def test_editing_the_handed_out_schedule_does_not_reach_the_kept_one() -> None:
    scheduler = CMStochasticIterativeScheduler()
    scheduler.set_timesteps(timesteps=[22, 0])
    scheduler.timesteps.mul_(2.0)
    scheduler.sigmas.fill_(1.0)
    scheduler.set_timesteps(timesteps=[22, 0])
    _assert_schedule(scheduler, timesteps=[22, 0])


def test_a_second_loop_on_one_scheduler_equals_a_fresh_scheduler() -> None:
    x_T = 80.0 * torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    scheduler = CMStochasticIterativeScheduler()
    for run in range(2):
        scheduler.set_timesteps(num_inference_steps=4)
        assert scheduler.step_index is None, f"run {run}: the step index survived set_timesteps"
        again = _loop(scheduler, x_T, seed=1)
        fresh = CMStochasticIterativeScheduler()
        fresh.set_timesteps(num_inference_steps=4)
        torch.testing.assert_close(again, _loop(fresh, x_T, seed=1), rtol=0, atol=0)


def test_a_schedule_forgotten_and_built_again_is_the_same() -> None:
    scheduler = CMStochasticIterativeScheduler()
    lists = [[39 - k, k] for k in range(KEPT_SCHEDULES + 2)]  # more than are kept
    for timesteps in [*lists, lists[0], lists[-1]]:
        scheduler.set_timesteps(timesteps=timesteps)
        _assert_schedule(scheduler, timesteps=timesteps)
