"""Bad input to the numpy reference: a ValueError or TypeError whose message names the argument
(and, where there is one, the allowed range), never an IndexError or ZeroDivisionError from
inside, never a silently wrong result; and `step` leaves its inputs alone.

The invalid calls of `set_timesteps` come first, each with what diffusers 0.42.1 does
instead (measured on diffusers 0.42.1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.inputs.strategies import custom_timesteps, sample_shapes, scheduler_configs
from reference.numpy_reference import algorithm1
from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler


@pytest.fixture
def scheduler() -> CMStochasticIterativeScheduler:
    s = CMStochasticIterativeScheduler()
    s.set_timesteps(timesteps=[22, 0])
    return s


# -- set_timesteps: what diffusers gets wrong --------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        # diffusers: ZeroDivisionError
        (
            {"num_inference_steps": 0},
            ValueError,
            r"`num_inference_steps` must be in \[1, 40\], got 0",
        ),
        (
            {"num_inference_steps": 41},
            ValueError,
            r"`num_inference_steps` must be in \[1, 40\], got 41",
        ),
        ({"num_inference_steps": -3}, ValueError, r"`num_inference_steps` must be in \[1, 40\]"),
        (
            {"num_inference_steps": 2.0},
            TypeError,
            r"`num_inference_steps` must be an integer, got 2.0",
        ),
        ({"num_inference_steps": True}, TypeError, r"`num_inference_steps` must be an integer"),
        # diffusers: IndexError
        ({"timesteps": []}, ValueError, r"`timesteps` must hold at least one index"),
        # diffusers: accepted, sigma above sigma_max
        ({"timesteps": [22, -5]}, ValueError, r"`timesteps\[1\]` must be in \[0, 39\].*got -5"),
        # diffusers: accepted, truncated to 22
        (
            {"timesteps": [22.7, 0]},
            TypeError,
            r"`timesteps\[0\]` must be an integer index in \[0, 39\], got 22.7",
        ),
        ({"timesteps": np.array([22.0, 0.0])}, TypeError, r"`timesteps\[0\]` must be an integer"),
        (
            {"timesteps": [0, 22]},
            ValueError,
            r"`timesteps` must be strictly descending, got timesteps\[0\]=0 followed by timesteps\[1\]=22",
        ),
        ({"timesteps": [22, 22]}, ValueError, r"`timesteps` must be strictly descending"),
        (
            {"timesteps": [40, 0]},
            ValueError,
            r"`timesteps\[0\]` must be in \[0, 39\] \(num_train_timesteps=40\), got 40",
        ),
        ({"timesteps": "22"}, TypeError, r"`timesteps` must be a sequence of integers"),
        ({"timesteps": {22, 0}}, TypeError, r"`timesteps` must be a sequence of integers"),
        ({"timesteps": 22}, TypeError, r"`timesteps` must be a sequence of integers"),
        ({"timesteps": [[22], [0]]}, TypeError, r"`timesteps\[0\]` must be an integer"),
        ({}, ValueError, r"exactly one of `num_inference_steps` and `timesteps` must be given"),
        (
            {"num_inference_steps": 2, "timesteps": [22, 0]},
            ValueError,
            r"exactly one of `num_inference_steps` and `timesteps`",
        ),
        (
            {"num_inference_steps": 2, "device": "cuda"},
            ValueError,
            r"`device` must be None or 'cpu'",
        ),
    ],
)
def test_set_timesteps_refuses(kwargs: dict[str, Any], error: type, match: str) -> None:
    scheduler = CMStochasticIterativeScheduler()
    with pytest.raises(error, match=match):
        scheduler.set_timesteps(**kwargs)


def test_set_timesteps_accepts_integer_arrays_and_tensors() -> None:
    """Integer indices in any container with `tolist` (numpy, torch) or any sequence."""
    import torch

    reference = CMStochasticIterativeScheduler()
    reference.set_timesteps(timesteps=[22, 0])
    for timesteps in (
        (22, 0),
        np.array([22, 0]),
        np.array([22, 0], dtype=np.int32),
        torch.tensor([22, 0]),
    ):
        scheduler = CMStochasticIterativeScheduler()
        scheduler.set_timesteps(timesteps=timesteps)
        np.testing.assert_array_equal(scheduler.sigmas, reference.sigmas)


# -- the constructor --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma_min": -0.002}, ValueError, r"`sigma_min` must be a finite number > 0, got -0.002"),
        ({"sigma_min": 0.0}, ValueError, r"`sigma_min` must be a finite number > 0, got 0.0"),
        (
            {"sigma_min": float("nan")},
            ValueError,
            r"`sigma_min` must be a finite number > 0, got nan",
        ),
        (
            {"sigma_max": float("inf")},
            ValueError,
            r"`sigma_max` must be a finite number > 0, got inf",
        ),
        ({"sigma_max": -80.0}, ValueError, r"`sigma_max` must be a finite number > 0"),
        (
            {"sigma_min": 80.0},
            ValueError,
            r"`sigma_min` must be < `sigma_max`, got sigma_min=80.0, sigma_max=80.0",
        ),
        ({"sigma_min": 90.0}, ValueError, r"`sigma_min` must be < `sigma_max`"),
        ({"sigma_max": 1e200}, ValueError, r"`sigma_max` must be in \[1e-150, 1e\+150\]"),
        ({"sigma_min": 1e-200}, ValueError, r"`sigma_min` must be in \[1e-150, 1e\+150\]"),
        ({"sigma_data": 0.0}, ValueError, r"`sigma_data` must be a finite number > 0"),
        (
            {"sigma_data": float("nan")},
            ValueError,
            r"`sigma_data` must be a finite number > 0, got nan",
        ),
        ({"s_noise": -1.0}, ValueError, r"`s_noise` must be a finite number >= 0, got -1.0"),
        ({"s_noise": float("inf")}, ValueError, r"`s_noise` must be a finite number >= 0"),
        ({"rho": 0.0}, ValueError, r"`rho` must be a finite number > 0, got 0.0"),
        ({"rho": -7.0}, ValueError, r"`rho` must be a finite number > 0"),
        (
            {"rho": 1e-3},
            ValueError,
            r"`rho` must be >= 0.00888 for sigma_min=0.002, sigma_max=80.0",
        ),
        ({"num_train_timesteps": 1}, ValueError, r"`num_train_timesteps` must be >= 2, got 1"),
        ({"num_train_timesteps": 0}, ValueError, r"`num_train_timesteps` must be >= 2, got 0"),
        (
            {"num_train_timesteps": 40.0},
            TypeError,
            r"`num_train_timesteps` must be an integer, got 40.0",
        ),
        (
            {"sigma_min": "0.002"},
            TypeError,
            r"`sigma_min` must be a real number, got '0.002' of type str",
        ),
        ({"rho": None}, TypeError, r"`rho` must be a real number, got None"),
        ({"sigma_data": 0.5j}, TypeError, r"`sigma_data` must be a real number"),
        ({"clip_denoised": 1}, TypeError, r"`clip_denoised` must be a bool, got 1"),
        ({"clip_denoised": "yes"}, TypeError, r"`clip_denoised` must be a bool"),
    ],
)
def test_constructor_refuses(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        CMStochasticIterativeScheduler(**kwargs)


# -- step and friends -------------------------------------------------------------------------


def test_timestep_not_in_schedule(scheduler: CMStochasticIterativeScheduler) -> None:
    """diffusers: `IndexError: index 0 is out of bounds`. A common mistake is to pass the
    index (22) instead of the model time."""
    x = np.zeros((1, 3))
    with pytest.raises(ValueError, match=r"`timestep` 22.0 is not in the schedule; allowed are"):
        scheduler.step(x, 22, x)
    with pytest.raises(ValueError, match=r"`timestep` nan is not in the schedule"):
        scheduler.scale_model_input(x, float("nan"))
    with pytest.raises(
        ValueError, match=r"`timestep` must be a scalar, got an array of shape \(2,\)"
    ):
        scheduler.step(x, scheduler.timesteps, x)
    with pytest.raises(TypeError, match=r"`timestep` must be a real numeric array"):
        scheduler.step(x, "t", x)


def test_stepping_past_the_end_is_a_clear_error(scheduler: CMStochasticIterativeScheduler) -> None:
    """diffusers: IndexError. Here: how long the schedule was, and what to do."""
    x = np.zeros((2, 2))
    for t in scheduler.timesteps:
        x = scheduler.step(np.zeros_like(x), t, x, noise=np.zeros_like(x)).prev_sample
    message = (
        r"the schedule has 2 timesteps and all were stepped; call `set_timesteps\(...\)` again"
    )
    with pytest.raises(ValueError, match=message):
        scheduler.step(x, scheduler.timesteps[-1], x)
    with pytest.raises(ValueError, match=message):
        scheduler.scale_model_input(x, scheduler.timesteps[-1])
    scheduler.set_timesteps(timesteps=[22, 0])  # and then it works again
    scheduler.step(x, scheduler.timesteps[0], x, noise=np.zeros_like(x))


def test_wrong_timestep_after_the_first_step(scheduler: CMStochasticIterativeScheduler) -> None:
    """diffusers silently ignores `timestep` once it has a step index; a wrong one is a bug."""
    x = np.zeros(4)
    scheduler.step(x, scheduler.timesteps[0], x, noise=x)
    with pytest.raises(
        ValueError, match=r"`timestep` must be the schedule's next one, timesteps\[1\]"
    ):
        scheduler.step(x, scheduler.timesteps[0], x, noise=x)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (
            (np.zeros((2, 3)), np.zeros((2, 4))),
            {},
            ValueError,
            r"`model_output` and `sample` must have the same shape, got \(2, 3\) and \(2, 4\)",
        ),
        (
            (np.zeros(3), np.zeros((1, 3))),
            {},
            ValueError,
            r"`model_output` and `sample` must have the same shape",
        ),
        (
            (np.zeros(3), np.zeros(3)),
            {"noise": np.zeros(4)},
            ValueError,
            r"`noise` must have the sample's shape \(3,\), got \(4,\)",
        ),
        (
            (np.zeros(3), np.zeros(3)),
            {"noise": np.zeros((1, 3))},
            ValueError,
            r"`noise` must have the sample's shape",
        ),
        (
            (np.zeros(3), np.zeros(3)),
            {"generator": 0},
            TypeError,
            r"`generator` must be a numpy.random.Generator or None, got int",
        ),
        (
            (np.zeros(3), np.zeros(3)),
            {"generator": np.random.RandomState(0)},
            TypeError,
            r"`generator` must be a numpy.random.Generator",
        ),
        (
            (np.zeros(3, dtype=complex), np.zeros(3)),
            {},
            TypeError,
            r"`model_output` must be a real numeric array, got dtype complex128",
        ),
        (
            (np.zeros(3), np.array(["a", "b", "c"])),
            {},
            TypeError,
            r"`sample` must be a real numeric array",
        ),
        (
            (np.zeros(3), np.zeros(3, dtype=bool)),
            {},
            TypeError,
            r"`sample` must be a real numeric array, got dtype bool",
        ),
        (
            (np.zeros(3), [[0.0], [0.0, 1.0]]),
            {},
            TypeError,
            r"`sample` must be a real numeric array",
        ),
        (
            (np.zeros(3), np.zeros(3)),
            {"noise": np.zeros(3, dtype=object)},
            TypeError,
            r"`noise` must be a real numeric array",
        ),
    ],
)
def test_step_refuses(
    scheduler: CMStochasticIterativeScheduler, args: tuple, kwargs: dict, error: type, match: str
) -> None:
    F, x = args
    with pytest.raises(error, match=match):
        scheduler.step(F, scheduler.timesteps[0], x, **kwargs)


def test_wrong_generator_refused_in_one_step_mode_too() -> None:
    """One-step sampling draws no noise, but a wrong generator is still the caller's mistake."""
    scheduler = CMStochasticIterativeScheduler()
    scheduler.set_timesteps(num_inference_steps=1)
    x = np.zeros(3)
    with pytest.raises(TypeError, match=r"`generator` must be a numpy.random.Generator"):
        scheduler.step(x, scheduler.timesteps[0], x, generator="seed")


def test_set_begin_index_refuses(scheduler: CMStochasticIterativeScheduler) -> None:
    with pytest.raises(ValueError, match=r"`begin_index` must be in \[0, 1\], got 2"):
        scheduler.set_begin_index(2)
    with pytest.raises(ValueError, match=r"`begin_index` must be in \[0, 1\], got -1"):
        scheduler.set_begin_index(-1)
    with pytest.raises(TypeError, match=r"`begin_index` must be an integer, got 1.0"):
        scheduler.set_begin_index(1.0)


def test_add_noise_refuses(scheduler: CMStochasticIterativeScheduler) -> None:
    x0, t = np.zeros((2, 3)), scheduler.timesteps
    with pytest.raises(
        ValueError, match=r"`noise` must have the shape of `original_samples` \(2, 3\)"
    ):
        scheduler.add_noise(x0, np.zeros((3, 2)), t)
    with pytest.raises(ValueError, match=r"`timesteps` must hold one model time per batch element"):
        scheduler.add_noise(x0, np.zeros((2, 3)), t[:1].repeat(3))
    with pytest.raises(ValueError, match=r"`timestep` 1.5 is not in the schedule"):
        scheduler.add_noise(x0, np.zeros((2, 3)), [1.5, 1.5])


def test_add_noise_per_batch_element(scheduler: CMStochasticIterativeScheduler) -> None:
    """x0 + noise * sigma(t), one sigma per batch element (conformance/SPEC.md, ADD-1)."""
    x0 = np.arange(6.0).reshape(2, 3)
    z = np.ones((2, 3))
    out = scheduler.add_noise(x0, z, scheduler.timesteps[::-1])
    np.testing.assert_array_equal(out, x0 + z * scheduler.sigmas[[1, 0]][:, None])


# -- step never modifies its inputs -----------------------------------------------------------


@given(
    config=scheduler_configs(max_train_timesteps=100),
    data=st.data(),
    shape=sample_shapes(max_dims=3, max_side=4),
    dtype=st.sampled_from([np.float64, np.float32, np.int32]),
)
def test_step_leaves_inputs_untouched(
    config: dict[str, Any], data: st.DataObject, shape: tuple[int, ...], dtype: type
) -> None:
    scheduler = CMStochasticIterativeScheduler(**config)
    scheduler.set_timesteps(timesteps=data.draw(custom_timesteps(config["num_train_timesteps"])))
    values = st.integers(-50, 50) if dtype is np.int32 else st.floats(-50, 50, width=32)
    F, x, z = (data.draw(arrays(dtype, shape, elements=values)) for _ in range(3))
    copies = [a.copy() for a in (F, x, z)]
    for t in scheduler.timesteps:
        out = scheduler.step(F, t, x, noise=z).prev_sample
        assert out is not x and out is not F and not np.shares_memory(out, x)
        for original, copy in zip((F, x, z), copies, strict=True):
            np.testing.assert_array_equal(original, copy)
            assert original.dtype == copy.dtype


def test_step_accepts_read_only_inputs(scheduler: CMStochasticIterativeScheduler) -> None:
    F, x, z = (np.ones((2, 3)) for _ in range(3))
    for a in (F, x, z):
        a.flags.writeable = False
    scheduler.step(F, scheduler.timesteps[0], x, noise=z)


# -- the functional Algorithm 1 ---------------------------------------------------------------


def _f(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.zeros_like(x)


@pytest.mark.parametrize(
    ("sigmas", "noises", "kwargs", "error", "match"),
    [
        (
            [80.0],
            [],
            {},
            ValueError,
            r"`sigmas` must be 1-D with the evaluation points and an end point",
        ),
        ([[80.0, 0.002]], [np.zeros(3)], {}, ValueError, r"`sigmas` must be 1-D"),
        (
            [0.002, 80.0],
            [np.zeros(3)],
            {},
            ValueError,
            r"`sigmas` must be strictly decreasing and >= eps=0.002",
        ),
        (
            [80.0, 0.001],
            [np.zeros(3)],
            {},
            ValueError,
            r"`sigmas` must be strictly decreasing and >= eps=0.002",
        ),
        (
            [80.0, float("nan")],
            [np.zeros(3)],
            {},
            ValueError,
            r"`sigmas` must be strictly decreasing",
        ),
        (
            [80.0, 1.0, 1.0],
            [np.zeros(3), np.zeros(3)],
            {},
            ValueError,
            r"`sigmas` must be strictly decreasing",
        ),
        (
            [80.0, 1.0, 0.002],
            [np.zeros(3)],
            {},
            ValueError,
            r"`noises` must hold one draw per evaluation \(2\), got 1",
        ),
        (
            [80.0, 0.002],
            [np.zeros(4)],
            {},
            ValueError,
            r"`noises\[0\]` must have the shape of `x_T` \(3,\), got \(4,\)",
        ),
        (
            [80.0, 0.002],
            [np.zeros(3)],
            {"eps": 0.0},
            ValueError,
            r"`eps` must be a finite number > 0, got 0.0",
        ),
        (
            [80.0, 0.002],
            [np.zeros(3)],
            {"s_noise": -1.0},
            ValueError,
            r"`s_noise` must be a finite number >= 0",
        ),
    ],
)
def test_algorithm1_sample_refuses(sigmas, noises, kwargs, error, match) -> None:
    kwargs = {"eps": 0.002} | kwargs
    with pytest.raises(error, match=match):
        algorithm1.sample(_f, sigmas, np.zeros(3), noises, **kwargs)


def test_algorithm1_end_point_may_repeat_eps() -> None:
    """The scheduler evaluates at sigma_min itself when timesteps holds N - 1, then appends
    sigma_min: Algorithm 1 takes that schedule too (re-noising with scale 0)."""
    out = algorithm1.sample(_f, [80.0, 0.002, 0.002], np.ones(3), [np.ones(3)] * 2, eps=0.002)
    np.testing.assert_array_equal(out, np.zeros(3))


def test_algorithm1_network_output_of_wrong_shape() -> None:
    f = algorithm1.consistency_model(lambda u, t: np.zeros(2), 0.002, 0.5)
    with pytest.raises(
        ValueError, match=r"the network's output must have the input's shape \(3,\), got \(2,\)"
    ):
        algorithm1.sample(f, [80.0, 0.002], np.zeros(3), [np.zeros(3)], eps=0.002)
