"""The torch scheduler against the float64 numpy reference on CPU, dtype by dtype.

Truth is `reference.numpy_reference.scheduler` run on the same inputs (the torch inputs converted
exactly to float64); the bounds are the error model of `tests/bounds.py`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bounds import (
    DTYPES,
    U64,
    scale_bound,
    step_bound,
    step_magnitude,
    to_numpy,
    worst_ratio,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from conformance.inputs import strategies
from reference.numpy_reference import formulas
from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler as NumpyScheduler
from reference.torch_scheduler.lookup import rows_for_times
from reference.torch_scheduler.scheduler import NOISE_SCALE, SIGMA, CMStochasticIterativeScheduler


@st.composite
def schedules(draw, N):
    """`set_timesteps` arguments: a step count or strictly descending indices below N."""
    if draw(st.booleans()):
        return dict(num_inference_steps=draw(strategies.inference_steps(N)))
    return dict(timesteps=draw(strategies.custom_timesteps(N, max_size=8)))


def pair(config, schedule):
    ours, ref = CMStochasticIterativeScheduler(**config), NumpyScheduler(**config)
    ours.set_timesteps(**schedule)
    ref.set_timesteps(**schedule)
    return ours, ref


@given(data=st.data(), config=strategies.scheduler_configs(max_train_timesteps=300))
def test_schedule_is_the_references_bit_for_bit(data, config):
    """Same float64 host formulas (reference.numpy_reference.formulas), so the same bits."""
    ours, ref = pair(config, data.draw(schedules(config["num_train_timesteps"])))
    assert ours.sigmas.dtype == ours.timesteps.dtype == torch.float64
    np.testing.assert_array_equal(ours.sigmas.numpy(), ref.sigmas)
    np.testing.assert_array_equal(ours.timesteps.numpy(), ref.timesteps)


@given(
    data=st.data(),
    config=strategies.scheduler_configs(max_train_timesteps=300),
    dtype=st.sampled_from(DTYPES),
    shape=strategies.sample_shapes(),
)
def test_every_step_within_bound_of_reference(data, config, dtype, shape):
    """A whole loop; each step is compared on the inputs both are given (the reference gets
    the torch iterate, so errors do not accumulate across steps)."""
    # float16 stops at 65504: with draws clamped to 4 standard deviations and s_noise <= 2,
    # sigma_max <= 4000 keeps x and the noise term below 3.2e4.
    assume(dtype != torch.float16 or config["sigma_max"] <= 4000)
    ours, ref = pair(config, data.draw(schedules(config["num_train_timesteps"])))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31)))

    def draw() -> torch.Tensor:
        return torch.randn(shape, generator=g, dtype=torch.float64).clamp(-4, 4)

    x = (ours.init_noise_sigma * draw()).to(dtype)
    for k, t in enumerate(ours.timesteps):
        F, z = draw().to(dtype), draw().to(dtype)
        u = ours.scale_model_input(x, t)
        u_ref = ref.scale_model_input(to_numpy(x), ref.timesteps[k])
        assert u.dtype == dtype
        assert worst_ratio(to_numpy(u), u_ref, scale_bound(dtype, np.abs(u_ref))) <= 1.0
        prev = ours.step(F, t, x, noise=z).prev_sample
        expected = ref.step(to_numpy(F), ref.timesteps[k], to_numpy(x), noise=to_numpy(z))[0]
        S = step_magnitude(
            to_numpy(x), to_numpy(F), to_numpy(z), ref.sigmas[k], ref.sigmas[k + 1], config
        )
        assert prev.dtype == dtype and prev.shape == x.shape
        ratio = worst_ratio(to_numpy(prev), expected, step_bound(dtype, S))
        assert ratio <= 1.0, f"step {k} in {dtype}: error {ratio:.3g} times the bound"
        x = prev
    assert ours.step_index == ref.step_index == len(ours.timesteps)


def test_last_step_adds_exactly_nothing():
    """sqrt(sigma_min^2 - eps^2) = 0 exactly: the last step's output does not depend on z."""
    ours = CMStochasticIterativeScheduler()
    ours.set_timesteps(num_inference_steps=3)
    assert float(ours._schedule.table_host[-1, NOISE_SCALE]) == 0.0
    x = 2 * torch.rand(2, 3, 4, 4) - 1
    F = torch.randn_like(x)
    ours.set_begin_index(2)
    zeros = ours.step(F, ours.timesteps[2], x, noise=torch.zeros_like(x)).prev_sample
    ours.set_timesteps(num_inference_steps=3)
    ours.set_begin_index(2)
    noisy = ours.step(F, ours.timesteps[2], x, noise=1e6 * torch.randn_like(x)).prev_sample
    assert torch.equal(zeros, noisy)


def test_one_step_draws_no_noise():
    """One-step sampling: the generator is not advanced and the output is clamp(f(x, T))."""
    ours, ref = pair({}, dict(num_inference_steps=1))
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    x = 80 * torch.randn(2, 3, 4, 4, dtype=torch.float64)
    F = torch.randn_like(x)
    prev = ours.step(F, ours.timesteps[0], x, generator=g).prev_sample
    assert torch.equal(g.get_state(), state)
    expected = ref.step(F.numpy(), ref.timesteps[0], x.numpy(), noise=np.zeros(x.shape))[0]
    S = step_magnitude(x.numpy(), F.numpy(), 0 * x.numpy(), 80.0, 0.002, ref.config)
    assert worst_ratio(prev.numpy(), expected, step_bound(torch.float64, S)) <= 1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_inputs_untouched_and_outputs_keep_dtype(dtype):
    ours = CMStochasticIterativeScheduler()
    ours.set_timesteps(timesteps=[22, 0])
    x, F, z = (torch.randn(2, 3, 4, 4).to(dtype) for _ in range(3))
    copies = [v.clone() for v in (x, F, z)]
    t = ours.timesteps[0]
    u = ours.scale_model_input(x, t)
    prev = ours.step(F, t, x, noise=z).prev_sample
    noisy = ours.add_noise(x, z, ours.timesteps[:1].expand(2))
    for before, after in zip(copies, (x, F, z), strict=True):
        assert torch.equal(before, after)
    for out in (u, prev, noisy):
        assert out.dtype == dtype and out.device == x.device and out.shape == x.shape


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_per_sample_timesteps(dtype):
    """A [batch] timestep puts each element at its own sigma (and its own next sigma),
    and leaves the ordinary loop's step index alone."""
    ours, ref = pair({}, dict(num_inference_steps=4))
    g = torch.Generator().manual_seed(5)
    positions = [3, 0, 2, 1]
    sigmas = ref.sigmas[positions].reshape(-1, 1, 1, 1)
    x = (sigmas * torch.randn(4, 3, 4, 4, generator=g, dtype=torch.float64).numpy()).astype(
        np.float64
    )
    x = torch.from_numpy(x).to(dtype)
    F = torch.randn(x.shape, generator=g).to(dtype)
    z = torch.randn(x.shape, generator=g).to(dtype)
    t = ours.timesteps[positions]
    ours.scale_model_input(x, ours.timesteps[0])  # the ordinary loop is at step 0
    u = ours.scale_model_input(x, t)
    prev = ours.step(F, t, x, noise=z).prev_sample
    assert ours.step_index == 0
    for b, k in enumerate(positions):
        ref.set_begin_index(k)
        ref._step_index = None
        u_ref = ref.scale_model_input(to_numpy(x[b]), ref.timesteps[k])
        assert worst_ratio(to_numpy(u[b]), u_ref, scale_bound(dtype, np.abs(u_ref))) <= 1.0
        expected = ref.step(to_numpy(F[b]), ref.timesteps[k], to_numpy(x[b]), noise=to_numpy(z[b]))[
            0
        ]
        S = step_magnitude(
            to_numpy(x[b]),
            to_numpy(F[b]),
            to_numpy(z[b]),
            ref.sigmas[k],
            ref.sigmas[k + 1],
            ref.config,
        )
        assert worst_ratio(to_numpy(prev[b]), expected, step_bound(dtype, S)) <= 1.0


def test_device_lookup_rows_and_nan_for_unknown_times():
    """The synchronisation-free lookup used for device timesteps, run on CPU tensors."""
    ours = CMStochasticIterativeScheduler()
    ours.set_timesteps(num_inference_steps=4)
    table = ours._schedule.table(torch.device("cpu"), torch.float64)
    rows = rows_for_times(ours.timesteps[[2, 0]], ours.timesteps, table)
    assert torch.equal(rows, table[[2, 0]])
    rows = rows_for_times(torch.tensor([ours.timesteps[1].item() + 1e-9]), ours.timesteps, table)
    assert torch.isnan(rows).all()


def test_first_lookup_by_value_view_float_and_begin_index():
    ours = CMStochasticIterativeScheduler()
    ours.set_timesteps(num_inference_steps=5)
    for k in range(5):
        for t in (ours.timesteps[k], ours.timesteps[k].clone(), float(ours.timesteps[k])):
            ours._step_index = None
            ours.scale_model_input(torch.ones(1), t)
            assert ours.step_index == k
    ours._step_index = None
    ours.set_begin_index(3)
    ours.scale_model_input(torch.ones(1), ours.timesteps[0])
    assert ours.step_index == 3


def test_add_noise_per_batch_element():
    ours, ref = pair({}, dict(num_inference_steps=4))
    x0, z = (
        torch.randn(3, 2, 4, 4, dtype=torch.float64),
        torch.randn(3, 2, 4, 4, dtype=torch.float64),
    )
    t = ours.timesteps[[0, 3, 1]]
    expected = ref.add_noise(x0.numpy(), z.numpy(), ref.timesteps[[0, 3, 1]])
    noisy = ours.add_noise(x0, z, t)
    # x0 + z sigma: one product and one sum, in float64 on both sides.
    bound = (
        4
        * U64
        * (np.abs(x0.numpy()) + np.abs(z.numpy()) * ref.sigmas[[0, 3, 1]].reshape(-1, 1, 1, 1))
    )
    assert worst_ratio(noisy.numpy(), expected, bound) <= 1.0


def test_scalings_and_model_times_match_formulas():
    ours = CMStochasticIterativeScheduler()
    sigma = torch.tensor([0.002, 0.01, 1.0, 80.0], dtype=torch.float64)
    s = sigma.numpy()
    for got, want in zip(
        ours.get_scalings_for_boundary_condition(sigma) + ours.get_scalings(sigma),
        formulas.boundary_scalings(s, 0.002, 0.5) + formulas.edm_scalings(s, 0.5),
        strict=True,
    ):
        # Same operations on the same float64 values; a few roundings may be ordered differently.
        np.testing.assert_allclose(got.numpy(), want, rtol=8 * U64, atol=0)
    c_skip, c_out = ours.get_scalings_for_boundary_condition(sigma[:1])
    assert float(c_skip) == 1.0 and float(c_out) == 0.0  # boundary condition, exactly
    np.testing.assert_array_equal(ours.sigma_to_t(s), formulas.sigma_to_t(s))
    np.testing.assert_allclose(ours.sigma_to_t(sigma).numpy(), formulas.sigma_to_t(s), rtol=4 * U64)
    assert ours._schedule.table_host[:, SIGMA].dtype == np.float64
