"""Adapter for schedulers that work on numpy arrays: the float64 numpy reference."""

from __future__ import annotations

from conformance.implementations.scheduler import SchedulerAdapter
from conformance.protocol.bridges import NumpyBridge
from conformance.protocol.values import Capabilities


class NumpySchedulerAdapter(SchedulerAdapter):
    """A scheduler class with diffusers' API on numpy arrays (CPU only); `generator` is a
    `numpy.random.Generator` (the array bridge `NumpyBridge`)."""

    bridge = NumpyBridge()


def reference_adapter() -> NumpySchedulerAdapter:
    """`--impl=reference`: `reference.numpy_reference.scheduler.CMStochasticIterativeScheduler`."""
    import reference
    from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler

    return NumpySchedulerAdapter(
        CMStochasticIterativeScheduler,
        name="reference",
        version=reference.__version__,
        capabilities=Capabilities(
            devices=("cpu",),
            dtypes=("float64",),
            injected_noise=True,
            noise_convention="numpy.standard_normal",
            stateful=True,
        ),
        description=(
            "reference.numpy_reference.scheduler.CMStochasticIterativeScheduler (float64 numpy)"
        ),
    )
