"""The torch scheduler on a CUDA GPU: no host-device synchronisation after `set_timesteps`
(sync debug mode set to "error"), a whole sampling loop captured in a CUDA graph and
replayed, every dtype against the float64 reference, device generators drawing as
diffusers' `randn_tensor`. Skipped where torch sees no CUDA device.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from bounds import DTYPES, step_bound, step_magnitude, to_numpy, worst_ratio

from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler as NumpyScheduler
from reference.torch_scheduler.scheduler import CMStochasticIterativeScheduler, randn_like_diffusers
from reference.toy_models.golden_network import A, B, C, D

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SCHEDULES = [dict(timesteps=[22, 0]), dict(num_inference_steps=4), dict(num_inference_steps=1)]
SHAPE = (2, 3, 16, 16)


@contextlib.contextmanager
def no_sync_allowed():
    """Every synchronising CUDA call raises inside this block."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def toy_network(u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The golden files' toy network F(u, t) = A tanh(u + B sin(t / C)) + D u (golden/README.md)."""
    t = t.reshape((-1,) + (1,) * (u.dim() - 1)) if t.dim() == 1 else t
    return A * torch.tanh(u + B * torch.sin(t.to(u.dtype) / C)) + D * u


@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_loop_has_no_host_device_sync(dtype, schedule):
    scheduler = CMStochasticIterativeScheduler()
    scheduler.set_timesteps(device="cuda", **schedule)
    assert scheduler.sigmas.is_cuda and scheduler.timesteps.is_cuda
    g = torch.Generator(device="cuda").manual_seed(0)
    cpu_g = torch.Generator().manual_seed(0)
    x = scheduler.init_noise_sigma * torch.randn(SHAPE, device="cuda", generator=g).to(dtype)
    with no_sync_allowed():
        for t in scheduler.timesteps:
            F = toy_network(scheduler.scale_model_input(x, t), t)
            x = scheduler.step(F, t, x, generator=g).prev_sample
        # per-sample timesteps on the device, a CPU generator (drawn there, copied over
        # asynchronously), the global RNG and injected noise
        t_batch = scheduler.timesteps[torch.zeros(SHAPE[0], dtype=torch.long, device="cuda")]
        for kwargs in (dict(generator=cpu_g), dict(), dict(noise=torch.randn_like(x))):
            u = scheduler.scale_model_input(x, t_batch)
            scheduler.step(toy_network(u, t_batch), t_batch, x, **kwargs)
    assert x.dtype == dtype and x.is_cuda
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_steps_within_bound_of_reference(dtype):
    scheduler, ref = CMStochasticIterativeScheduler(), NumpyScheduler()
    scheduler.set_timesteps(num_inference_steps=4, device="cuda")
    ref.set_timesteps(num_inference_steps=4)
    g = torch.Generator(device="cuda").manual_seed(1)
    x = (80 * torch.randn(SHAPE, device="cuda", generator=g, dtype=torch.float64)).to(dtype)
    for k, t in enumerate(scheduler.timesteps):
        F = torch.randn(SHAPE, device="cuda", generator=g, dtype=torch.float64).to(dtype)
        z = torch.randn(SHAPE, device="cuda", generator=g, dtype=torch.float64).to(dtype)
        prev = scheduler.step(F, t, x, noise=z).prev_sample
        assert prev.dtype == dtype and prev.is_cuda
        xs, Fs, zs = to_numpy(x), to_numpy(F), to_numpy(z)
        expected = ref.step(Fs, ref.timesteps[k], xs, noise=zs).prev_sample
        S = step_magnitude(xs, Fs, zs, ref.sigmas[k], ref.sigmas[k + 1], ref.config)
        ratio = worst_ratio(to_numpy(prev), expected, step_bound(dtype, S))
        assert ratio <= 1.0, f"step {k} in {dtype}: {ratio:.3g} of the bound"
        x = prev


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sampling_loop_captured_in_a_cuda_graph(dtype):
    """Capture scale_model_input, the network and step for every step, replay, and land on
    the eager loop's result exactly (the same kernels on the same inputs)."""
    n = 4
    scheduler = CMStochasticIterativeScheduler()
    g = torch.Generator(device="cuda").manual_seed(2)
    x_T = (80 * torch.randn(SHAPE, device="cuda", generator=g)).to(dtype)
    noises = [torch.randn(SHAPE, device="cuda", generator=g).to(dtype) for _ in range(n)]

    def loop(x: torch.Tensor) -> torch.Tensor:
        scheduler.set_timesteps(num_inference_steps=n, device="cuda")
        for t, z in zip(scheduler.timesteps, noises, strict=True):
            F = toy_network(scheduler.scale_model_input(x, t), t)
            x = scheduler.step(F, t, x, noise=z).prev_sample
        return x

    eager = loop(x_T.clone())
    static_x = x_T.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        loop(static_x)  # warm-up on a side stream, as torch.cuda.graphs asks
    torch.cuda.current_stream().wait_stream(side)
    scheduler.set_timesteps(num_inference_steps=n, device="cuda")  # tables exist before capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        x = static_x
        for t, z in zip(scheduler.timesteps, noises, strict=True):
            F = toy_network(scheduler.scale_model_input(x, t), t)
            x = scheduler.step(F, t, x, noise=z).prev_sample
        static_out = x
    static_x.copy_(x_T)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(static_out, eager)


@pytest.mark.parametrize("seeds", [0, [1, 2]], ids=["one", "list"])
def test_device_generators_draw_as_diffusers(seeds):
    from diffusers.utils.torch_utils import randn_tensor

    def make():
        if isinstance(seeds, int):
            return torch.Generator(device="cuda").manual_seed(seeds)
        return [torch.Generator(device="cuda").manual_seed(s) for s in seeds]

    device = torch.device("cuda", torch.cuda.current_device())
    for dtype in DTYPES:
        ours = randn_like_diffusers(SHAPE, make(), device, dtype)
        theirs = randn_tensor(SHAPE, generator=make(), device=device, dtype=dtype)
        assert torch.equal(ours, theirs)


def test_unknown_device_timestep_gives_nan_rows_without_sync():
    scheduler = CMStochasticIterativeScheduler()
    scheduler.set_timesteps(num_inference_steps=4, device="cuda")
    x = torch.zeros(2, 3, device="cuda")
    t = torch.stack([scheduler.timesteps[1], scheduler.timesteps[1] + 1e-9])
    with no_sync_allowed():
        out = scheduler.step(x, t, x, noise=torch.zeros_like(x)).prev_sample
    result = to_numpy(out)
    assert np.isfinite(result[0]).all() and np.isnan(result[1]).all()
