"""Bad input to the torch scheduler: a ValueError or TypeError whose message names the
argument, never an IndexError from inside, never a silently wrong result, and a failed call
changes nothing (the README's `torch` block says what diffusers does instead)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference.torch_scheduler.scheduler import CMStochasticIterativeScheduler


@pytest.fixture
def scheduler() -> CMStochasticIterativeScheduler:
    s = CMStochasticIterativeScheduler()
    s.set_timesteps(timesteps=[22, 0])
    return s


X = torch.zeros(2, 3, 4, 4)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        (dict(num_train_timesteps=1), ValueError, "num_train_timesteps"),
        (dict(num_train_timesteps=40.0), TypeError, "num_train_timesteps"),
        (dict(sigma_min=0.0), ValueError, "sigma_min"),
        (dict(sigma_min=100.0), ValueError, "sigma_min"),
        (dict(sigma_max=float("inf")), ValueError, "sigma_max"),
        (dict(sigma_data=-0.5), ValueError, "sigma_data"),
        (dict(s_noise=-1.0), ValueError, "s_noise"),
        (dict(rho="7"), TypeError, "rho"),
        (dict(clip_denoised=1), TypeError, "clip_denoised"),
    ],
)
def test_bad_config(kwargs, error, name):
    with pytest.raises(error, match=name):
        CMStochasticIterativeScheduler(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        (dict(), ValueError, "num_inference_steps"),
        (dict(num_inference_steps=2, timesteps=[22, 0]), ValueError, "timesteps"),
        (dict(num_inference_steps=0), ValueError, "num_inference_steps"),
        (dict(num_inference_steps=41), ValueError, "num_inference_steps"),
        (dict(num_inference_steps=2.0), TypeError, "num_inference_steps"),
        (dict(timesteps=[]), ValueError, "timesteps"),
        (dict(timesteps=[0, 22]), ValueError, "descending"),
        (dict(timesteps=[22, -5]), ValueError, r"timesteps\[1\]"),
        (dict(timesteps=[40, 0]), ValueError, r"timesteps\[0\]"),
        (dict(timesteps=[22.7, 0]), TypeError, r"timesteps\[0\]"),
        (dict(timesteps="22"), TypeError, "timesteps"),
        (dict(num_inference_steps=2, device="no-such-device"), ValueError, "device"),
    ],
)
def test_bad_set_timesteps(kwargs, error, name):
    s = CMStochasticIterativeScheduler()
    with pytest.raises(error, match=name):
        s.set_timesteps(**kwargs)


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda s: s.step(X, 1.2345, X), ValueError, "`timestep`.*not in the schedule"),
        (lambda s: s.step(X, 22, X), TypeError, "`timestep`"),
        (lambda s: s.step(X, torch.tensor(22), X), TypeError, "`timestep`"),
        (lambda s: s.step(X, True, X), TypeError, "`timestep`"),
        (lambda s: s.step(X, "t", X), TypeError, "`timestep`"),
        (lambda s: s.step(X, s.timesteps.reshape(2, 1), X), ValueError, "`timestep`"),
        (lambda s: s.step(X, s.timesteps[[0, 1, 1]], X), ValueError, "`timestep`"),
        (lambda s: s.step(X, torch.tensor([1.0, 2.0]), X), ValueError, "`timestep`"),
        (lambda s: s.step(X.numpy(), s.timesteps[0], X), TypeError, "`model_output`"),
        (lambda s: s.step(X, s.timesteps[0], X.long()), TypeError, "`sample`"),
        (lambda s: s.step(X[:1], s.timesteps[0], X), ValueError, "`model_output`"),
        (lambda s: s.step(X, s.timesteps[0], X, noise=X[:1]), ValueError, "`noise`"),
        (lambda s: s.step(X, s.timesteps[0], X, noise=X.int()), TypeError, "`noise`"),
        (
            lambda s: s.step(X, s.timesteps[0], X, noise=X, generator=torch.Generator()),
            ValueError,
            "`noise`",
        ),
        (lambda s: s.step(X, s.timesteps[0], X, generator=0), TypeError, "`generator`"),
        (
            lambda s: s.step(X, s.timesteps[0], X, generator=[torch.Generator()] * 3),
            ValueError,
            "generators",
        ),
        (
            lambda s: s.step(X, s.timesteps[0], X, generator=[torch.Generator(), 1]),
            TypeError,
            "`generator`",
        ),
        (lambda s: s.scale_model_input(X.numpy(), s.timesteps[0]), TypeError, "`sample`"),
        (lambda s: s.set_begin_index(2), ValueError, "begin_index"),
        (lambda s: s.set_begin_index(-1), ValueError, "begin_index"),
        (lambda s: s.add_noise(X, X[:1], s.timesteps[:1]), ValueError, "`noise`"),
        (lambda s: s.add_noise(X, X, s.timesteps[[0, 1, 1]]), ValueError, "`timesteps`"),
        (lambda s: s.add_noise(X, X, torch.tensor([3.0, 3.0])), ValueError, "`timestep`"),
        (lambda s: s.get_scalings("1"), TypeError, "`sigma`"),
    ],
)
def test_bad_step_arguments_change_nothing(scheduler, call, error, name):
    before = (scheduler.step_index, scheduler.begin_index)
    with pytest.raises(error, match=name):
        call(scheduler)
    assert (scheduler.step_index, scheduler.begin_index) == before


def test_stepping_past_the_end(scheduler):
    for t in scheduler.timesteps:
        scheduler.step(X, t, X)
    with pytest.raises(ValueError, match="all were stepped"):
        scheduler.step(X, scheduler.timesteps[-1], X)
    with pytest.raises(ValueError, match="all were stepped"):
        scheduler.scale_model_input(X, scheduler.timesteps[-1])


def test_float32_timestep_is_not_silently_matched(scheduler):
    """A model time rounded to float32 is not in the float64 schedule: refused, not rounded."""
    t32 = scheduler.timesteps[1].float()
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(X, t32, X)
    assert scheduler.step_index is None
    np.testing.assert_array_equal(scheduler.sigmas.numpy()[-1], 0.002)
