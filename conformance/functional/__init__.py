"""Research code with its own sampling loop, gated as it runs: `FunctionalSampler` declares the
function's conventions in one call; the suite drives it with a scripted model (`scripted`) and,
where the function draws from the framework's global random state, routes those draws
(`global_noise`)."""

from conformance.functional.declaration import (
    EDM_TIME,
    QUARTER_LOG,
    RAW_SIGMA,
    THOUSAND_QUARTER_LOG,
    ConventionError,
    TimeEmbedding,
    TimeMap,
)
from conformance.functional.sampler import FunctionalSampler

__all__ = [
    "EDM_TIME",
    "QUARTER_LOG",
    "RAW_SIGMA",
    "THOUSAND_QUARTER_LOG",
    "ConventionError",
    "FunctionalSampler",
    "TimeEmbedding",
    "TimeMap",
]
