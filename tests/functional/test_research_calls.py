"""The model as research code calls it: extra positional and keyword arguments (class
labels, `s=`), the time as a scalar, a (B,) vector or a (B, 1, 1, 1) tensor; the scripted
model records the time whatever its shape and answers in the shape of the input it was
given. CONV-1 and the step clauses then check the sampler as it is."""

from __future__ import annotations

import pytest
import torch

from conformance.functional import FunctionalSampler
from conformance.functional.scripted import Recording, ScriptedCallable
from conformance.protocol.bridges import TorchBridge
from tests.functional import samplers
from tests.functional.test_zoo import PROFILE
from tests.mutants import runner


@pytest.mark.parametrize(
    "time",
    [2.5, torch.tensor(2.5), torch.full((2,), 2.5), torch.full((2, 1, 1, 1), 2.5)],
    ids=["python float", "0-d", "(B,)", "(B,1,1,1)"],
)
def test_the_scripted_model_takes_research_calls(time) -> None:
    recording = Recording()
    model = ScriptedCallable(TorchBridge(), recording, lambda k, x, t: torch.ones_like(x))
    x = torch.zeros((2, 3, 4, 4), dtype=torch.float64)
    out = model(x, time, torch.tensor([3, 7]), s=1.0, class_labels=None)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert set(recording.calls[0].time.tolist()) == {2.5}


def _labelled(model, x, sigmas, noise, **kw):
    """edm_sampler whose network takes class labels, `s=` and a (B, 1, 1, 1) time."""
    labels = torch.zeros(x.shape[0], dtype=torch.long)

    def net(x_in, t):
        t = torch.as_tensor(t, dtype=torch.float64).expand(x.shape[0]).view(-1, 1, 1, 1)
        return model(x_in, t, labels, s=1.0)

    return samplers.edm_sampler(net, x, sigmas, noise, **kw)


def adapter() -> FunctionalSampler:
    return FunctionalSampler(
        _labelled,
        name="labelled",
        callable="network",
        time_points="sigmas",
        noise="function",
        bridge=TorchBridge(),
        dtypes=("float64",),
        parameters={"sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
    )


def test_a_sampler_calling_its_model_as_research_code_does_is_gated() -> None:
    held = adapter().check_conventions("cpu", "float64")
    assert "model time t = 250 log(sigma + 1e-44)" in held
    result = runner.run(
        "tests.functional.test_research_calls:adapter",
        ["STEP-1", "STEP-3", "CONV-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert {"STEP-1", "STEP-3", "CONV-1"} <= result.passed()


def _four_d(model, x, sigmas, noise, **kw):
    """edm_sampler run on a (B, m, 1, 1) view of the sample, as image code runs: its network
    sees and answers, and its noise hook draws, in that shape."""
    out = samplers.edm_sampler(model, x.reshape(x.shape[0], -1, 1, 1), sigmas, noise, **kw)
    return out.reshape(x.shape)


def four_d() -> FunctionalSampler:
    return FunctionalSampler(
        _four_d,
        name="four_d",
        callable="network",
        time_points="sigmas",
        noise="function",
        bridge=TorchBridge(),
        dtypes=("float64",),
        parameters={"sigma_data": "sigma_data", "clip_denoised": "clip_denoised"},
    )


def test_a_sampler_that_reshapes_its_sample_is_answered_in_its_shape() -> None:
    """The suite records the network's input in the shape it handed the sampler and answers
    (network output, draws) in the sampler's own shape: a sampler that works on (B, m, 1, 1)
    is gated as it is (the answers were once in the suite's shape: a broadcasting error)."""
    result = runner.run(
        "tests.functional.test_research_calls:four_d",
        ["STEP-1", "STEP-3", "CONV-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert {"STEP-1", "STEP-3", "CONV-1"} <= result.passed()
