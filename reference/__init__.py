"""Consistency-model sampling (Song et al. 2023, Algorithm 1), in three subpackages:

- `reference.numpy_reference`: the paper's float64 numpy reference (the formulas, Algorithm 1,
  Algorithm 4's editing, diffusers' scheduler API);
- `reference.torch_scheduler`: the torch implementation for GPUs, and its diffusers drop-in;
- `reference.toy_models`: closed-form models for the notebooks and the golden files' network.

Nothing is imported here, so `import reference.numpy_reference.formulas` loads only what that
module needs; `from reference import CMStochasticIterativeScheduler` gives the numpy reference's
class, loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["CMStochasticIterativeScheduler", "__version__"]


def __getattr__(name: str) -> Any:
    """`CMStochasticIterativeScheduler`, imported when it is first asked for."""
    if name == "CMStochasticIterativeScheduler":
        module = importlib.import_module("reference.numpy_reference.scheduler")
        return module.CMStochasticIterativeScheduler
    raise AttributeError(f"module 'reference' has no attribute {name!r}")
