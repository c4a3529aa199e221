"""The protocol's value types: what an implementation claims (`Capabilities`), a timestep
request (`TimestepSpec`), a stored schedule (`Schedule`), one call of the loop body
(`StepInputs`, `StepResult`), the dtype and device vocabularies, and how device names match.
Plain data; imports nothing of the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DTYPES = ("float64", "float32", "float16", "bfloat16")
DEVICES = ("cpu", "cuda")

NoiseConvention = Literal["torch.randn", "numpy.standard_normal", "jax.random.normal"]
NOISE_CONVENTIONS = ("torch.randn", "numpy.standard_normal", "jax.random.normal")


@dataclass(frozen=True)
class Capabilities:
    """What an implementation claims. Every field is checked by some clause of SPEC.md.

    devices:        devices it runs on ("cpu", "cuda", "cuda:1", ...).
    dtypes:         sample dtypes it supports, from `DTYPES`.
    injected_noise: `step(..., noise=z)` uses the given standard-normal z.
    noise_convention: how `step(..., generator=g)` draws z, so that the suite can
                    draw the same numbers: "torch.randn" (diffusers' `randn_tensor`:
                    `torch.randn(shape, generator=g, dtype=sample dtype)` on the
                    generator's device), "numpy.standard_normal"
                    (`g.standard_normal(shape)` on a `numpy.random.Generator`),
                    "jax.random.normal" (`jax.random.normal(key_j, shape, dtype)`, key_j
                    derived from a PRNG key by the bridge's declared splitting), or
                    None (its own way: only the statistical layer can check it).
                    "torch.randn" includes `randn_tensor`'s list of generators, one per
                    batch element: one draw of shape (1, ...) from each, concatenated.
    stateful:       it has diffusers' stateful scheduler API (`scheduler()`).
    """

    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float32",)
    injected_noise: bool = False
    noise_convention: NoiseConvention | None = None
    stateful: bool = True

    def __post_init__(self) -> None:
        unknown = [d for d in self.dtypes if d not in DTYPES]
        if unknown:
            raise ValueError(f"`dtypes` must be drawn from {DTYPES}, got {unknown}")
        if self.noise_convention is not None and self.noise_convention not in NOISE_CONVENTIONS:
            raise ValueError(
                f"`noise_convention` must be None or one of {NOISE_CONVENTIONS}, "
                f"got {self.noise_convention!r}"
            )

    @property
    def generator_list(self) -> bool:
        """`step(..., generator=[g_0, g_1, ...])`, one generator per batch element, draws by
        the convention: part of "torch.randn" (diffusers' `randn_tensor`)."""
        return self.noise_convention == "torch.randn"

    def as_dict(self) -> dict[str, Any]:
        return {
            "devices": list(self.devices),
            "dtypes": list(self.dtypes),
            "injected_noise": self.injected_noise,
            "noise_convention": self.noise_convention,
            "stateful": self.stateful,
        }


@dataclass(frozen=True)
class Schedule:
    """`sigmas` (evaluation points then sigma_min) and `timesteps` (model times), as the
    implementation stores them (native arrays)."""

    sigmas: Any
    timesteps: Any
    #: The relative error with which each sigma is known, where it was read back from a
    #: model time given in a dtype below float64 (a functional sampler); None: exact.
    sigma_error: Any = None


@dataclass
class StepInputs:
    """One call of Algorithm 1's loop body at schedule position k: the raw network output
    F and the sample x (native arrays), and the injected noise z when there is one."""

    model_output: Any
    sample: Any
    noise: Any = None


@dataclass
class StepResult:
    """What the loop body produced at one position: `scale_model_input(x, t)` and
    `step(F, t, x).prev_sample` (native arrays; None where the call was not made).

    An implementation that runs its own loop (a functional sampler) chains its samples: it
    reports the sample it actually used at the position (`sample`, native; None: the one
    given), the sigma it used there (`sigma`, float64; None: not reported), the sigma it
    re-noised to (`sigma_next`: the next evaluation point, sigma_min after the last) and the
    number of noise draws it made between this evaluation and the next (`draws`; None:
    unknown). `sigma_error`, `sigma_next_error`: the relative error with which `sigma` and
    `sigma_next` are known (read back from a model time given in float32, say)."""

    scaled: Any
    prev_sample: Any
    sample: Any = None
    sigma: float | None = None
    sigma_next: float | None = None
    draws: int | None = None
    sigma_error: float = 0.0
    sigma_next_error: float = 0.0


@dataclass(frozen=True)
class TimestepSpec:
    """Either `num_inference_steps` or custom `timesteps` (indices), as for `set_timesteps`."""

    num_inference_steps: int | None = None
    timesteps: tuple[int, ...] | None = None

    def kwargs(self) -> dict[str, Any]:
        if self.timesteps is not None:
            return {"timesteps": list(self.timesteps)}
        return {"num_inference_steps": self.num_inference_steps}

    def indices(self, num_train_timesteps: int) -> list[int]:
        """The descending index list that `set_timesteps` uses (SPEC.md, SCHED-1 and SCHED-2)."""
        if self.timesteps is not None:
            return list(self.timesteps)
        n, N = self.num_inference_steps, num_train_timesteps
        return [k * (N // n) for k in range(n)][::-1]


def same_device(requested: str, actual: str) -> bool:
    """ "cuda" matches "cuda:N" (the current device); "cuda:1" only "cuda:1"."""
    if requested == actual:
        return True
    kind, _, index = requested.partition(":")
    actual_kind, _, actual_index = actual.partition(":")
    if kind != actual_kind:
        return False
    if not index:
        return True
    return index == (actual_index or "0")
