"""The building blocks of the functional entry: the array bridges, the scripted model's
recording, and FunctionalSampler's refusal of declarations it cannot serve."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conformance.functional import EDM_TIME, QUARTER_LOG, FunctionalSampler, TimeMap
from conformance.functional.scripted import DrawList, NoiseSource, Recording, ScriptedCallable
from conformance.implementations.numpy_adapter import reference_adapter
from conformance.implementations.torch_adapter import torch_reference_adapter
from conformance.protocol.adapter import unmet_requirement
from conformance.protocol.bridges import NumpyBridge, TorchBridge
from tests.functional import zoo

VALUES = np.array([[0.1, -2.5, 80.0], [1e-3, 3.0, -0.75]])


@pytest.mark.parametrize("bridge", [NumpyBridge(), TorchBridge()], ids=["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bridge_round_trip(bridge, dtype: str) -> None:
    array = bridge.asarray(VALUES, dtype, "cpu")
    info = bridge.describe(array)
    assert (info.shape, info.dtype, info.device) == ((2, 3), dtype, "cpu")
    np.testing.assert_array_equal(bridge.to_numpy(array), VALUES.astype(dtype).astype(np.float64))
    copy = bridge.copy(array)
    assert bridge.same_values(copy, array) and copy is not array
    assert bridge.describe([1.0]) is None


def test_torch_bridge_draws_as_torch_randn() -> None:
    bridge = TorchBridge()
    z = bridge.draw_noise(bridge.generator(3, "cpu"), (2, 5), "float32", "cpu")
    expected = torch.randn((2, 5), generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    assert torch.equal(z, expected)


def test_builtin_adapters_use_the_bridges() -> None:
    assert isinstance(reference_adapter().bridge, NumpyBridge)
    assert isinstance(torch_reference_adapter().bridge, TorchBridge)


def test_time_maps_invert() -> None:
    sigmas = np.array([0.002, 0.5, 80.0])
    for time_map in (EDM_TIME, QUARTER_LOG, TimeMap("ln sigma / 4", lambda s: np.log(s) / 4)):
        np.testing.assert_allclose(time_map.sigma(time_map.forward(sigmas)), sigmas, rtol=1e-12)


def test_recording_counts_calls_and_draws() -> None:
    bridge = TorchBridge()
    recording = Recording()
    model = ScriptedCallable(bridge, recording, lambda k, x, t: torch.full_like(x, float(k)))
    source = NoiseSource(recording, lambda j, like: bridge.asarray(np.full(2, j), "float64", "cpu"))
    draws = DrawList(source, 3)
    x = torch.zeros(2, dtype=torch.float64)
    assert float(model(x, torch.tensor([1.5, 1.5]))[0]) == 0.0
    assert float(draws[0][0]) == 0.0
    assert float(model(x, 2.5)[0]) == 1.0
    assert [c.time.tolist() for c in recording.calls] == [[1.5, 1.5], [2.5]]
    assert recording.draws_between(0) == 1 and recording.draws_between(1) == 0


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("callable", "unet"),
        ("time_points", "indices"),
        ("noise", "key"),
        ("parameters", {"s": "s"}),
    ],
)
def test_bad_declarations_are_refused(argument: str, value: object) -> None:
    kwargs = {
        "name": "bad",
        "callable": "network",
        "time_points": "ts",
        "noise": "randn_like",
        "bridge": TorchBridge(),
        argument: value,
    }
    with pytest.raises(ValueError, match=argument):
        FunctionalSampler(lambda *a, **k: None, **kwargs)


def test_not_offered_primitives_have_reasons() -> None:
    openai = zoo.openai()
    for need in ("stateful", "add_noise", "sigma_to_t", "boundary_scalings", "c_in", "denoise"):
        reason = unmet_requirement(openai, need)
        assert reason and openai.name in reason, need
    assert unmet_requirement(openai, "known_noise") is None
    assert unmet_requirement(openai, "conventions") is None
    assert unmet_requirement(reference_adapter(), "conventions")
    assert unmet_requirement(reference_adapter(), "add_noise") is None
