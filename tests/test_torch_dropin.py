"""The schedulers as drop-ins for diffusers' `CMStochasticIterativeScheduler` (0.42.1):
what ordinary diffusers usage expects of them, for the numpy reference, the torch
scheduler and the diffusers-facing class alike.

- Right after `__init__` a scheduler holds diffusers' training schedule: the N points of
  the Karras grid (float64, sigma_min not appended) and their model times; training code
  calls `add_noise` and `scale_model_input` on it, and `step` walks it to its last point
  (sigma_min, whose next sigma is sigma_min: noise scale 0), then refuses to go on.
- `add_noise(x0, z, t)` with one model time (0-dim or one element) noises the whole batch
  at that time (the img2img pattern); a length neither 1 nor the batch size is refused.
- `step` returns diffusers' output semantics (attribute, key, position, `keys`, `values`,
  `to_tuple`); `return_dict=False` a tuple.

The truth is the mpmath oracle (the schedule, c_in, the step) and diffusers' own class.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import CMStochasticIterativeScheduler as DiffusersScheduler
from diffusers.utils import BaseOutput

from conformance.truth import oracle
from reference.numpy_reference import scheduler as numpy_scheduler
from reference.torch_scheduler import diffusers_scheduler
from reference.torch_scheduler import scheduler as torch_scheduler

CLASSES = {
    "numpy": numpy_scheduler.CMStochasticIterativeScheduler,
    "torch": torch_scheduler.CMStochasticIterativeScheduler,
    "diffusers_wrapper": diffusers_scheduler.CMStochasticIterativeScheduler,
}
CONFIG = dict(num_train_timesteps=201, sigma_min=0.002, sigma_max=80.0, sigma_data=0.5)
N = CONFIG["num_train_timesteps"]
BOUNDS = dict(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5)
#: Worst error of the float64 schedule against the oracle: min(|ln sigma| + 4 rho + 1, 32)
#: ULP (the reference's bound, tests/test_reference_oracle.py); 33 ULP relative covers it.
SCHEDULE_RTOL = 33 * 2.0**-52
#: diffusers evaluates the Karras form naively in float64 (29 ULP at the default config,
#: more for N = 201 near sigma_min): its sigmas agree with ours within 1e-13 relative.
DIFFUSERS_RTOL = 1e-13


@pytest.fixture(params=list(CLASSES))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def fresh(kind: str) -> object:
    return CLASSES[kind](**CONFIG)


def native(kind: str, array: np.ndarray) -> object:
    return array if kind == "numpy" else torch.from_numpy(array)


def to_numpy(value: object) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


# -- the training schedule, right after __init__ ------------------------------------------------


def test_init_holds_the_training_schedule(kind: str) -> None:
    s = fresh(kind)
    sigmas, timesteps = to_numpy(s.sigmas), to_numpy(s.timesteps)
    assert sigmas.dtype == timesteps.dtype == np.float64
    assert sigmas.shape == timesteps.shape == (N,)  # sigma_min not appended
    exact = [oracle.karras_sigma(i, N, 0.002, 80.0, 7.0) for i in range(N)]
    np.testing.assert_allclose(sigmas, [float(e) for e in exact], rtol=SCHEDULE_RTOL, atol=0)
    assert sigmas[0] == 80.0 and sigmas[-1] == 0.002  # the ends exactly
    exact_t = [float(oracle.sigma_to_t(sigma)) for sigma in sigmas]
    np.testing.assert_allclose(timesteps, exact_t, rtol=2 * 2.0**-52, atol=1e-12)
    theirs = DiffusersScheduler(**CONFIG)
    np.testing.assert_allclose(sigmas, theirs.sigmas.numpy(), rtol=DIFFUSERS_RTOL, atol=0)
    assert s.num_inference_steps is None and s.step_index is None and s.begin_index is None


def test_scale_model_input_and_add_noise_on_the_training_schedule(kind: str) -> None:
    """Training code: noise a batch at random training times, scale it for the network."""
    s = fresh(kind)
    sigmas, timesteps = to_numpy(s.sigmas), to_numpy(s.timesteps)
    picks = [0, 57, 200, 57]
    x0 = np.linspace(-1, 1, 4 * 6).reshape(4, 6)
    z = np.cos(np.arange(24.0)).reshape(4, 6)
    noisy = to_numpy(s.add_noise(native(kind, x0), native(kind, z), native(kind, timesteps[picks])))
    expected = x0 + z * sigmas[picks][:, None]
    np.testing.assert_allclose(noisy, expected, rtol=2 * 2.0**-53, atol=2.0**-53)
    k = 57
    scaled = to_numpy(s.scale_model_input(native(kind, x0), native(kind, timesteps[k : k + 1])[0]))
    c_in = float(oracle.c_in(sigmas[k], 0.5))
    np.testing.assert_allclose(scaled, x0 * c_in, rtol=3 * 2.0**-53, atol=0)


def test_step_walks_the_training_schedule_to_its_end(kind: str) -> None:
    """Each step against the oracle's; the last point's next sigma is sigma_min (noise scale
    exactly 0, where diffusers takes `sigmas[-1]`); one more step is a clear ValueError."""
    s = fresh(kind)
    sigmas, timesteps = to_numpy(s.sigmas), to_numpy(s.timesteps)
    x = np.array([0.3, -0.7, 0.9])
    F = np.array([0.2, 0.1, -0.4])
    z = np.array([1.0, -1.0, 0.5])
    for i in (N - 2, N - 1):  # the last two points, reached with a begin index
        s = fresh(kind)
        s.set_begin_index(i)
        while s.step_index is None or s.step_index < N:
            t = native(kind, timesteps)[s.step_index if s.step_index is not None else i]
            j = s.step_index if s.step_index is not None else i
            out = to_numpy(s.step(native(kind, F), t, native(kind, x), noise=native(kind, z))[0])
            sigma_next = sigmas[j + 1] if j + 1 < N else 0.002
            exact = [
                float(oracle.step(*e, sigmas[j], sigma_next, **BOUNDS))
                for e in zip(F, x, z, strict=True)
            ]
            # At most 13 roundings of u64 each of S = |c_skip x| + |c_out F| + |scale z| < 2
            # (the step bound of tests/bounds.py at float64).
            np.testing.assert_allclose(out, exact, rtol=0, atol=26 * 2.0**-53)
        with pytest.raises(ValueError, match=r"schedule has 201 timesteps and all were stepped"):
            s.step(native(kind, F), native(kind, timesteps)[-1], native(kind, x))


def test_set_timesteps_replaces_the_training_schedule(kind: str) -> None:
    s = fresh(kind)
    s.set_timesteps(timesteps=[106, 0])
    assert to_numpy(s.sigmas).shape == (3,) and to_numpy(s.sigmas)[-1] == 0.002


# -- add_noise: one model time for the whole batch ----------------------------------------------


@pytest.mark.parametrize("shape", [(), (1,)])
@pytest.mark.parametrize("begin", [None, 1])
def test_add_noise_broadcasts_one_timestep(kind: str, shape: tuple, begin: int | None) -> None:
    s = fresh(kind)
    s.set_timesteps(num_inference_steps=10)
    if begin is not None:
        s.set_begin_index(begin)
    sigmas, timesteps = to_numpy(s.sigmas), to_numpy(s.timesteps)
    x0 = np.arange(12.0).reshape(4, 3) / 12
    z = np.ones((4, 3))
    t = np.full(shape, timesteps[5])
    out = to_numpy(s.add_noise(native(kind, x0), native(kind, z), native(kind, t)))
    sigma = sigmas[5 if begin is None else begin]  # a begin index wins (img2img)
    np.testing.assert_allclose(out, x0 + z * sigma, rtol=2 * 2.0**-53, atol=0)
    assert out.shape == (4, 3)


def test_add_noise_refuses_another_length(kind: str) -> None:
    s = fresh(kind)
    x0 = np.zeros((4, 3))
    t = to_numpy(s.timesteps)[:3]
    with pytest.raises(ValueError, match=r"`timesteps` must hold one model time per batch"):
        s.add_noise(native(kind, x0), native(kind, x0), native(kind, t))


# -- step's output -----------------------------------------------------------------------------


def test_step_output_reads_as_diffusers(kind: str) -> None:
    s = fresh(kind)
    s.set_timesteps(timesteps=[106, 0])
    x = native(kind, np.full((2, 3), 0.5))
    t = native(kind, to_numpy(s.timesteps))[0]
    out = s.step(x, t, x, noise=x)
    sample = out.prev_sample
    assert out["prev_sample"] is sample and out[0] is sample
    assert list(out.keys()) == ["prev_sample"] and list(out.values()) == [sample]
    assert out.to_tuple() == (sample,) and out[:1] == (sample,)
    assert list(out) == ["prev_sample"] and len(out) == 1  # a dict iterates over its keys
    with pytest.raises(KeyError):
        out["sample"]
    if kind == "diffusers_wrapper":
        assert type(out).__module__ == "diffusers.schedulers.scheduling_consistency_models"
        assert isinstance(out, BaseOutput)
    s.set_timesteps(timesteps=[106, 0])
    as_tuple = s.step(x, t, x, noise=x, return_dict=False)
    assert type(as_tuple) is tuple and len(as_tuple) == 1
    np.testing.assert_array_equal(to_numpy(as_tuple[0]), to_numpy(sample))
