"""Finding the schedule position of a model time without a host-device synchronisation.

The ordinary loop passes elements of `scheduler.timesteps`: `schedule_position` recognises
one by its storage offset, from host metadata alone. Per-sample timesteps on a device are
matched there by `rows_for_times`. Everything else is looked up on the host
(`reference.numpy_reference.bookkeeping.lookup`), reading the value.
"""

from __future__ import annotations

import torch


def schedule_position(timestep: torch.Tensor, schedule: torch.Tensor) -> int | None:
    """The index of `timestep` if it is an element (a view) of `schedule`, read from its
    storage offset: host metadata only, no synchronisation. None for any other tensor."""
    if (
        timestep.dim() != 0
        or timestep.dtype != schedule.dtype
        or timestep.device != schedule.device
        or timestep.untyped_storage().data_ptr() != schedule.untyped_storage().data_ptr()
    ):
        return None
    offset = timestep.storage_offset() - schedule.storage_offset()
    index, rest = divmod(offset, schedule.stride(0))
    return index if rest == 0 and 0 <= index < len(schedule) else None


def rows_for_times(
    timestep: torch.Tensor, schedule: torch.Tensor, table: torch.Tensor
) -> torch.Tensor:
    """The table rows of a batch of model times, found on their device without a
    host-device synchronisation: shape [batch, 5]; the rows of a time that is not in
    `schedule` are NaN (raising would need the host to read the comparison)."""
    match = timestep.to(schedule.dtype).reshape(-1, 1) == schedule.reshape(1, -1)
    rows = table[match.to(torch.int32).argmax(dim=1)]
    return torch.where(match.any(dim=1, keepdim=True), rows, torch.full_like(rows, torch.nan))


def matched_on_device(timestep: object) -> bool:
    """Whether per-sample `timestep` is matched where it lives: a tensor on a device, or any
    tensor under torch.compile (the host cannot read it there)."""
    return isinstance(timestep, torch.Tensor) and (
        timestep.device.type != "cpu" or torch.compiler.is_compiling()
    )
