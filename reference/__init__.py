"""Consistency-model sampling (Song et al. 2023, Algorithm 1): a float64 numpy reference,
an mpmath oracle, golden tensors from OpenAI's code, and a torch implementation."""

from reference.numpy_scheduler import CMStochasticIterativeScheduler

__version__ = "0.1.0"
__all__ = ["CMStochasticIterativeScheduler", "__version__"]
