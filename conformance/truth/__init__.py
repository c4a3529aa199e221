"""The truth every clause is held to: the mpmath oracle (`oracle`), OpenAI's golden tensors
(`golden`), and the expected value of each quantity, rounded once to float64 (`expected`,
re-exported here as `truth.step`, `truth.schedule`, ...)."""

from conformance.truth.expected import (
    Array,
    ExactSchedule,
    add_noise,
    boundary_scalings,
    c_in,
    edm_scalings,
    model_times,
    noise_scale,
    scale_model_input,
    schedule,
    sigma,
    step,
    tau,
)

__all__ = [
    "Array",
    "ExactSchedule",
    "add_noise",
    "boundary_scalings",
    "c_in",
    "edm_scalings",
    "model_times",
    "noise_scale",
    "scale_model_input",
    "schedule",
    "sigma",
    "step",
    "tau",
]
