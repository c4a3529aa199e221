"""The standard-normal draw z of Algorithm 1 (line 4), made as diffusers makes it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

Generator = torch.Generator | Sequence[torch.Generator] | None
_CPU = torch.device("cpu")


def randn_like_diffusers(
    shape: tuple[int, ...],
    generator: Generator,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """A standard-normal draw made exactly as diffusers' `randn_tensor` makes it
    (diffusers 0.42.1, `utils/torch_utils.py`): on the generator's device when that is
    the CPU (then moved), one draw of shape (1, ...) per generator when given a list."""
    if generator is None:  # the global RNG of `device`
        return torch.randn(shape, device=device, dtype=dtype)
    rand_device = device
    first = generator[0] if isinstance(generator, (list, tuple)) else generator
    if first.device.type != device.type:
        if first.device.type != "cpu":
            raise ValueError(
                f"`generator` lives on {first.device}, it cannot draw noise for a sample "
                f"on {device}; use a generator on {device.type} or on the CPU"
            )
        rand_device = _CPU
    if isinstance(generator, (list, tuple)) and len(generator) == 1:
        generator = generator[0]
    if isinstance(generator, (list, tuple)):
        one = (1,) + tuple(shape[1:])
        parts = [torch.randn(one, generator=g, device=rand_device, dtype=dtype) for g in generator]
        z = torch.cat(parts, dim=0)
    else:
        z = torch.randn(shape, generator=generator, device=rand_device, dtype=dtype)
    # A CPU draw for a device sample: an asynchronous copy, no host-device synchronisation.
    return z.to(device, non_blocking=True)
