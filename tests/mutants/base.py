"""What the mutants are made from: the project's two implementations, with hooks.

`TorchBase` is `reference.torch_scheduler.scheduler.CMStochasticIterativeScheduler` with each
formula behind one small method, so that a mutant overrides exactly the line it breaks and every
path that uses the formula sees the same bug (the per-step table that `step` and
`scale_model_input` read, and the public `get_scalings*` and `sigma_to_t`):

    inference_indices(n)       set_timesteps(num_inference_steps=n): descending indices
    ramp_indices(indices, custom)   the index list the ramp i / (N - 1) is taken from
    _sigmas_at(ramp_indices)   the Karras sigmas
    sigma_to_t(sigmas)         model times (`timesteps` come from it)
    boundary(sigma)            (c_skip, c_out) of CM Appendix C (eq. 43)
    edm(sigma)                 (c_skip, c_out) of EDM Table 1
    c_in(sigma)                1 / sqrt(sigma^2 + sigma_data^2)
    noise(sigma, sigma_next)   s_noise sqrt(tau^2 - eps^2), tau = sigma_next clamped

The hooks take float64 numpy arrays (the table is built on the host) and, for `boundary`
and `edm`, torch tensors too (the public methods); a mutant written with plain arithmetic
serves both. The first four are methods of the parent (`reference.numpy_reference.bookkeeping`,
shared with the numpy reference); the others feed the parent's `_step_table`. With no hook overridden, `TorchBase`
computes what its parent does, bit for bit; the variant "torch_base" of
tests/test_mutants.py checks that it passes the suite.

The numpy reference needs no hooks: its `step` already calls the overridable
`get_scalings_for_boundary_condition`, and its other formulas are methods.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

import reference
from conformance.implementations.numpy_adapter import NumpySchedulerAdapter, reference_adapter
from conformance.implementations.torch_adapter import (
    TorchSchedulerAdapter,
    torch_reference_adapter,
)
from conformance.protocol.adapter import Adapter
from conformance.protocol.values import Capabilities
from reference.numpy_reference import formulas
from reference.numpy_reference import scheduler as numpy_scheduler
from reference.numpy_reference.bookkeeping import HostSchedule
from reference.torch_scheduler import checks as torch_checks
from reference.torch_scheduler import scheduler as torch_scheduler
from reference.torch_scheduler.scheduler import C_IN, C_OUT, C_SKIP, NOISE_SCALE, SIGMA

Array = NDArray[np.float64]

#: What the built-in `--impl=torch` claims; a torch mutant claims the same.
TORCH_CLAIMS: Capabilities = torch_reference_adapter().capabilities
#: What the built-in `--impl=reference` claims; a numpy mutant claims the same.
NUMPY_CLAIMS: Capabilities = reference_adapter().capabilities

Parent = torch_scheduler.CMStochasticIterativeScheduler


class TorchBase(Parent):
    """The torch scheduler, unchanged, its formulas behind hooks (the zoo's control)."""

    # -- hooks: the parent's formulas ------------------------------------------------------------

    def boundary(self, sigma: Any) -> tuple[Any, Any]:
        """(c_skip, c_out) of CM Appendix C for a float64 array (table) or a tensor (method)."""
        if isinstance(sigma, torch.Tensor):
            return Parent.get_scalings_for_boundary_condition(self, sigma)
        return formulas.boundary_scalings(sigma, self.sigma_min, self.sigma_data)

    def edm(self, sigma: Any) -> tuple[Any, Any]:
        """(c_skip, c_out) of EDM Table 1 for a float64 array or a tensor."""
        if isinstance(sigma, torch.Tensor):
            return Parent.get_scalings(self, sigma)
        return formulas.edm_scalings(sigma, self.sigma_data)

    def c_in(self, sigma: Array) -> Array:
        return formulas.c_in(sigma, self.sigma_data)

    def noise(self, sigma: Array, sigma_next: Array) -> Array:
        """s_noise sqrt(tau^2 - eps^2) with tau = sigma_next clamped (Algorithm 1, line 5)."""
        tau = np.clip(sigma_next, self.sigma_min, self.sigma_max)
        return self.s_noise * formulas.noise_scale(tau, self.sigma_min)

    # -- the parent's methods, routed through the hooks -------------------------------------------

    def get_scalings(self, sigma: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.edm(torch_checks.as_sigma(sigma))

    def get_scalings_for_boundary_condition(
        self, sigma: float | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.boundary(torch_checks.as_sigma(sigma))

    def _step_table(self, host: HostSchedule) -> Array:
        """The parent's per-step table (`reference.torch_scheduler.schedule.step_table`), from
        the hooks."""
        sigma = host.sigmas[: host.n]
        c_skip, c_out = self.boundary(sigma)
        table = np.empty((host.n, 5))
        table[:, SIGMA] = sigma
        table[:, C_IN] = self.c_in(sigma)
        table[:, C_SKIP] = c_skip
        table[:, C_OUT] = c_out
        table[:, NOISE_SCALE] = self.noise(sigma, host.sigmas_next)
        return table


class NumpyBase(numpy_scheduler.CMStochasticIterativeScheduler):
    """The numpy reference, unchanged (the zoo's other control)."""


def torch_adapter(scheduler_class: type, name: str, what: str = "") -> Adapter:
    """A torch mutant or variant, claiming what `--impl=torch` claims."""
    return TorchSchedulerAdapter(
        scheduler_class,
        name=name,
        version=f"{reference.__version__} (torch {torch.__version__})",
        capabilities=TORCH_CLAIMS,
        description=f"{scheduler_class.__module__}.{scheduler_class.__qualname__}: {what}",
    )


def numpy_adapter(scheduler_class: type, name: str, what: str = "") -> Adapter:
    """A numpy mutant or variant, claiming what `--impl=reference` claims."""
    return NumpySchedulerAdapter(
        scheduler_class,
        name=name,
        version=reference.__version__,
        capabilities=NUMPY_CLAIMS,
        description=f"{scheduler_class.__module__}.{scheduler_class.__qualname__}: {what}",
    )


def adapter_for(scheduler_class: type, name: str, what: str = "") -> Adapter:
    """The adapter that fits the class's base (torch or numpy)."""
    if issubclass(scheduler_class, Parent):
        return torch_adapter(scheduler_class, name, what)
    if issubclass(scheduler_class, numpy_scheduler.CMStochasticIterativeScheduler):
        return numpy_adapter(scheduler_class, name, what)
    raise TypeError(f"{scheduler_class.__qualname__} derives from neither reference scheduler")
