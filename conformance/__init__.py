"""The conformance suite for consistency-model sampling schedulers.

Run it against an implementation with `pytest conformance --impl=NAME` from a checkout
or `pytest --pyargs conformance --impl=NAME` once installed. The clauses are in
`conformance/SPEC.md`. What an implementer writes against is importable from here
(`from conformance import FunctionalSampler, TorchBridge`); the package's layers are
`protocol`, `inputs`, `truth`, `measuring`, `functional`, `implementations`, `harness`,
and the clause modules `test_*.py` (CONTRIBUTING.md maps them).
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Loaded on first use (PEP 562), so that pytest's plugin entry point, which imports this
# package in every pytest session, loads none of the suite.
_PUBLIC = {
    "Adapter": "conformance.protocol.adapter",
    "Capabilities": "conformance.protocol.values",
    "TimestepSpec": "conformance.protocol.values",
    "Deviation": "conformance.protocol.deviations",
    "ArrayBridge": "conformance.protocol.bridges",
    "TorchBridge": "conformance.protocol.bridges",
    "NumpyBridge": "conformance.protocol.bridges",
    "JaxBridge": "conformance.protocol.bridges",
    "FunctionalSampler": "conformance.functional",
    "TimeMap": "conformance.functional",
    "TimeEmbedding": "conformance.functional",
    "ConventionError": "conformance.functional",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'conformance' has no attribute {name!r}")
