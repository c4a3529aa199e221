"""`torch.compile` and the torch scheduler, on CPU.

- `step` traces into one graph with no graph break (torch._dynamo.explain), with injected
  noise, with the global RNG, and with per-sample timesteps; a `torch.Generator` argument is
  the one thing dynamo cannot trace (it breaks the graph there; pass `noise=` instead).
- A whole loop under `fullgraph=True` compiles at most twice however long it is: once for
  the first step, once more with the step index made dynamic.
- With inductor the update is a single fused kernel (`test_inductor_*`: one real compile,
  about 30 s on two cores; deselect with `-k "not inductor"`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bounds import step_bound, step_magnitude, to_numpy, worst_ratio
from torch._dynamo.utils import counters

from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler as NumpyScheduler
from reference.torch_scheduler.scheduler import CMStochasticIterativeScheduler


def ready(n: int = 6) -> CMStochasticIterativeScheduler:
    """A scheduler whose step index is known (the first `scale_model_input` sets it)."""
    scheduler = CMStochasticIterativeScheduler()
    scheduler.set_timesteps(num_inference_steps=n)
    scheduler.scale_model_input(torch.zeros(1), scheduler.timesteps[0])
    return scheduler


@pytest.fixture
def tensors():
    g = torch.Generator().manual_seed(0)
    x = 80 * torch.randn(2, 3, 8, 8, generator=g)
    return x, torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)


@pytest.mark.parametrize("noise", [True, False], ids=["noise", "global-rng"])
def test_step_traces_without_graph_break(tensors, noise):
    x, F, z = tensors
    scheduler = ready()
    explanation = torch._dynamo.explain(scheduler.step)(
        F, scheduler.timesteps[0], x, noise=z if noise else None
    )
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_per_sample_step_traces_without_graph_break(tensors):
    x, F, z = tensors
    scheduler = ready()
    explanation = torch._dynamo.explain(scheduler.step)(F, scheduler.timesteps[[0, 3]], x, noise=z)
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_generator_is_where_dynamo_breaks(tensors):
    """Documented limitation: dynamo cannot put a torch.Generator into a graph."""
    x, F, _ = tensors
    scheduler = ready()
    explanation = torch._dynamo.explain(scheduler.step)(
        F, scheduler.timesteps[0], x, generator=torch.Generator().manual_seed(1)
    )
    assert explanation.graph_break_count >= 1


def test_fullgraph_loop_compiles_at_most_twice(tensors):
    x, F, z = tensors
    torch._dynamo.reset()
    counters.clear()
    eager, compiled_scheduler = ready(), ready()
    compiled = torch.compile(compiled_scheduler.step, fullgraph=True, backend="eager")
    x_eager = x_compiled = x
    for t_eager, t in zip(eager.timesteps, compiled_scheduler.timesteps, strict=True):
        x_eager = eager.step(F, t_eager, x_eager, noise=z).prev_sample
        x_compiled = compiled(F, t, x_compiled, noise=z).prev_sample
    assert torch.equal(x_compiled, x_eager)  # the same kernels, traced
    assert compiled_scheduler.step_index == eager.step_index == 6
    assert counters["stats"]["unique_graphs"] <= 2


def test_compiled_step_without_index_says_what_to_do(tensors):
    x, F, z = tensors
    scheduler = CMStochasticIterativeScheduler()
    scheduler.set_timesteps(num_inference_steps=2)
    torch._dynamo.reset()
    compiled = torch.compile(scheduler.step, fullgraph=True, backend="eager")
    with pytest.raises(Exception, match="scale_model_input"):
        compiled(F, scheduler.timesteps[0], x, noise=z)


def test_inductor_fuses_the_update_into_one_kernel(tensors):
    from torch._inductor.utils import run_and_get_code

    x, F, z = tensors
    torch._dynamo.reset()
    scheduler, ref = ready(2), NumpyScheduler()
    ref.set_timesteps(num_inference_steps=2)
    compiled = torch.compile(scheduler.step, fullgraph=True)
    out, code = run_and_get_code(compiled, F, scheduler.timesteps[0], x, noise=z)
    kernels = sum(source.count("async_compile.cpp_pybinding(") for source in code)
    assert kernels == 1, "\n".join(code)
    expected = ref.step(
        F.double().numpy(), ref.timesteps[0], x.double().numpy(), noise=z.double().numpy()
    )
    S = step_magnitude(
        x.double().numpy(),
        F.double().numpy(),
        z.double().numpy(),
        ref.sigmas[0],
        ref.sigmas[1],
        ref.config,
    )
    assert worst_ratio(to_numpy(out.prev_sample), expected[0], step_bound(torch.float32, S)) <= 1.0
    assert np.isfinite(to_numpy(out.prev_sample)).all()
