"""Argument checks and conversions of the torch scheduler, on host metadata only.

Each check raises `TypeError` (wrong kind of value) or `ValueError` (right kind, outside what
is allowed) with a message that names the argument, the value and what is allowed. None
reads a device tensor's values (no host-device synchronisation), except `host_timestep(s)`,
whose purpose is to read them.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

CPU = torch.device("cpu")


def check_sample(name: str, value: object) -> torch.Tensor:
    """A floating tensor (`sample`, `model_output`, `original_samples`, `noise`)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"`{name}` must have a floating dtype, got {value.dtype}")
    return value


def check_model_output(F: torch.Tensor, x: torch.Tensor) -> None:
    """`model_output` has the sample's shape and device (no broadcast)."""
    if F.shape != x.shape or F.device != x.device:
        raise ValueError(
            "`model_output` and `sample` must have the same shape and device, got "
            f"{tuple(F.shape)} on {F.device} and {tuple(x.shape)} on {x.device}"
        )


def check_noise(noise: object, x: torch.Tensor, name: str = "noise") -> torch.Tensor:
    """An injected draw of the sample's shape, on its device (no broadcast)."""
    z = check_sample(name, noise)
    if z.shape != x.shape or z.device != x.device:
        raise ValueError(
            f"`{name}` must have the sample's shape {tuple(x.shape)} and device {x.device}, "
            f"got {tuple(z.shape)} on {z.device}"
        )
    return z


def check_noise_source(noise: object, generator: object) -> None:
    if noise is not None and generator is not None:
        raise ValueError("pass either `noise` or `generator` to `step`, not both")


def check_generator(generator: object, x: torch.Tensor) -> None:
    """A `torch.Generator`, or a list of them with one per batch element."""
    if isinstance(generator, (list, tuple)):
        if x.dim() == 0 or len(generator) != x.shape[0]:
            raise ValueError(
                f"a list of generators must hold one per batch element "
                f"({x.shape[0] if x.dim() else 'no batch axis'}), got {len(generator)}"
            )
        bad = [type(g).__name__ for g in generator if not isinstance(g, torch.Generator)]
        if bad:
            raise TypeError(f"`generator` list must hold torch.Generator objects, got {bad}")
    elif not isinstance(generator, torch.Generator):
        raise TypeError(
            "`generator` must be a torch.Generator, a list of them or None, "
            f"got {type(generator).__name__}"
        )


def check_timestep_kind(timestep: object) -> bool:
    """Model times are floats; an integer is almost always an index passed by mistake.
    Returns whether `timestep` holds one model time per batch element (1-D)."""
    if isinstance(timestep, torch.Tensor):
        check_float_timestep(timestep)
        dim = timestep.dim()
        if dim > 1:
            raise ValueError(
                "`timestep` must be a scalar or a 1-D tensor (one model time per batch "
                f"element), got shape {tuple(timestep.shape)}"
            )
        return dim == 1
    if isinstance(timestep, (bool, np.bool_, numbers.Integral)) or (
        isinstance(timestep, np.ndarray) and timestep.dtype.kind not in "f"
    ):
        raise TypeError(
            f"`timestep` must be a model time (a float from `scheduler.timesteps`), got "
            f"{timestep!r}; integer indices go to `set_timesteps(timesteps=...)`"
        )
    if not isinstance(timestep, (numbers.Real, np.ndarray, list, tuple)):
        raise TypeError(
            f"`timestep` must be a float, a tensor or a 1-D sequence of floats, got "
            f"{type(timestep).__name__}"
        )
    if isinstance(timestep, np.ndarray):
        return timestep.ndim == 1
    return isinstance(timestep, (list, tuple))


def check_float_timestep(timestep: torch.Tensor) -> None:
    if not timestep.is_floating_point():
        raise TypeError(
            f"`timestep` must be a model time (a float from `scheduler.timesteps`), got a "
            f"tensor of dtype {timestep.dtype}; integer indices go to "
            "`set_timesteps(timesteps=...)`"
        )


def check_per_sample_length(timestep: object, x: torch.Tensor) -> None:
    """A 1-D `timestep` holds one model time per batch element."""
    batch = x.shape[0] if x.dim() > 0 else None
    length = timestep.shape[0] if isinstance(timestep, torch.Tensor) else len(timestep)
    if batch != length:
        raise ValueError(
            f"a 1-D `timestep` must hold one model time per batch element "
            f"({batch} for a sample of shape {tuple(x.shape)}), got {length}"
        )


def host_timestep(timestep: object) -> float:
    """One model time as a Python float (reading a device tensor synchronises)."""
    if isinstance(timestep, torch.Tensor):
        if timestep.numel() != 1 or timestep.dim() > 1:
            raise ValueError(
                f"`timestep` must be a scalar, got a tensor of shape {tuple(timestep.shape)}"
            )
        return float(timestep.detach().reshape(()).cpu().double())
    value = np.asarray(timestep)
    if value.ndim != 0:
        raise ValueError(f"`timestep` must be a scalar, got an array of shape {value.shape}")
    if value.dtype == np.bool_ or value.dtype.kind not in "fiu":
        raise TypeError(f"`timestep` must be a real number, got {timestep!r}")
    return float(value)


def host_timesteps(timesteps: object) -> list[float]:
    """A 0-dim or 1-D batch of model times as Python floats."""
    if isinstance(timesteps, torch.Tensor):
        values = timesteps.detach().cpu().double().reshape(-1).numpy()
    else:
        values = np.atleast_1d(np.asarray(timesteps))
        if values.dtype == np.bool_ or values.dtype.kind not in "fiu":
            raise TypeError(f"`timesteps` must be real numbers, got {timesteps!r}")
        if values.ndim != 1:
            raise ValueError(f"`timesteps` must be 1-D, got shape {values.shape}")
    return [float(v) for v in values]


def host_array(values: object) -> np.ndarray:
    """A tensor or an array-like as a float64 numpy array (a device tensor is read)."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def as_device(device: str | torch.device | None) -> torch.device:
    """A torch.device with its index filled in for CUDA ("cuda" is the current device), so
    that it compares equal to the `device` of a tensor living there; None is the CPU."""
    if device is None:
        return CPU
    if isinstance(device, torch.device) and (device.type != "cuda" or device.index is not None):
        return device
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"`device` must be None, a torch.device or a device string, got {device!r}"
        ) from exc
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def as_sigma(sigma: float | torch.Tensor) -> torch.Tensor:
    """sigma as a tensor in at least float32 (float64 for Python numbers and arrays)."""
    if isinstance(sigma, torch.Tensor):
        if not sigma.is_floating_point():
            sigma = sigma.to(torch.float64)
        return sigma if sigma.dtype == torch.float64 else sigma.to(torch.float32)
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real | np.ndarray):
        raise TypeError(f"`sigma` must be a real number or a tensor, got {sigma!r}")
    return torch.as_tensor(np.asarray(sigma, dtype=np.float64))
