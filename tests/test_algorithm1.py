"""The functional Algorithm 1 (reference/numpy_reference/algorithm1.py) against the
diffusers-style scheduler: the two are the same arithmetic in a different order of calls, so they must agree bit for bit
on every config the strategies draw, and OpenAI's `ts` convention must name the same sigmas."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.inputs.strategies import custom_timesteps, sample_shapes, scheduler_configs
from reference.numpy_reference import algorithm1
from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler
from reference.toy_models.golden_network import toy_network


@given(config=scheduler_configs(), data=st.data(), shape=sample_shapes(max_dims=3, max_side=4))
def test_sample_equals_scheduler_loop(
    config: dict[str, Any], data: st.DataObject, shape: tuple[int, ...]
) -> None:
    """x_T, the per-step draws and the toy network fixed: `consistency_model` + `sample` over
    `scheduler.sigmas` returns exactly what the pipeline-style loop over `scheduler.timesteps`
    returns (scale_model_input, network, step with injected noise)."""
    scheduler = CMStochasticIterativeScheduler(**config)
    scheduler.set_timesteps(timesteps=data.draw(custom_timesteps(config["num_train_timesteps"])))
    K = len(scheduler.timesteps)
    normal = st.floats(-4, 4)
    z_T = data.draw(arrays(np.float64, shape, elements=normal), label="z_T")
    noises = [data.draw(arrays(np.float64, shape, elements=normal)) for _ in range(K)]
    if K == 1:
        noises = [np.zeros(shape)]  # one-step sampling draws no noise (SPEC.md, STEP-5)
    x_T = config["sigma_max"] * z_T  # Algorithm 1, line 1

    x = x_T
    for k, t in enumerate(scheduler.timesteps):
        F = toy_network(scheduler.scale_model_input(x, t), t)
        x = scheduler.step(F, t, x, noise=noises[k]).prev_sample

    f = algorithm1.consistency_model(
        toy_network, config["sigma_min"], config["sigma_data"], config["clip_denoised"]
    )
    out = algorithm1.sample(
        f, scheduler.sigmas, x_T, noises, eps=config["sigma_min"], s_noise=config["s_noise"]
    )
    np.testing.assert_array_equal(out, x)


@given(config=scheduler_configs(), data=st.data())
def test_openai_time_points_name_the_scheduler_sigmas(
    config: dict[str, Any], data: st.DataObject
) -> None:
    """OpenAI's ascending `ts` ending at steps - 1 is the scheduler's `timesteps=reversed(ts[:-1])`
    (golden/README.md): the same evaluation points, and an end point of exactly sigma_min."""
    steps = config["num_train_timesteps"]
    timesteps = data.draw(custom_timesteps(steps).filter(lambda ts: ts[0] < steps - 1))
    ts = [*reversed(timesteps), steps - 1]
    scheduler = CMStochasticIterativeScheduler(**config)
    scheduler.set_timesteps(timesteps=timesteps)
    points = algorithm1.openai_time_points(
        ts, steps, config["sigma_min"], config["sigma_max"], config["rho"]
    )
    np.testing.assert_array_equal(points, scheduler.sigmas)


@given(
    config=scheduler_configs(),
    x=arrays(np.float64, sample_shapes(), elements=st.floats(-100, 100)),
)
def test_consistency_model_is_identity_at_eps(config: dict[str, Any], x: np.ndarray) -> None:
    """f(x, eps) = x (CM eq. 3), clamped to [-1, 1] when clip_denoised, whatever the network."""
    f = algorithm1.consistency_model(
        lambda u, t: np.full_like(u, 7.0),
        config["sigma_min"],
        config["sigma_data"],
        config["clip_denoised"],
    )
    expected = np.clip(x, -1, 1) if config["clip_denoised"] else x
    np.testing.assert_array_equal(f(x, config["sigma_min"]), expected)


def test_open_end_adds_noise_after_the_last_evaluation() -> None:
    """Time points ending above eps: the output is the last evaluation plus
    z sqrt(tau_end^2 - eps^2) (Algorithm 1 line 5, run once more, as OpenAI does)."""
    eps, sd = 0.002, 0.5
    sigmas = algorithm1.openai_time_points([0, 22, 30], 40, eps, 80.0, 7.0)
    f = algorithm1.consistency_model(toy_network, eps, sd)
    rng = np.random.default_rng(0)
    x_T = 80.0 * rng.standard_normal((2, 3))
    noises = [rng.standard_normal((2, 3)) for _ in range(2)]
    with_noise = algorithm1.sample(f, sigmas, x_T, noises, eps=eps)
    without = algorithm1.sample(f, sigmas, x_T, [noises[0], np.zeros((2, 3))], eps=eps)
    scale = np.sqrt(sigmas[-1] ** 2 - eps**2)
    np.testing.assert_allclose(with_noise - without, noises[1] * scale, rtol=1e-14, atol=0)
    assert scale > 0.01
