"""The torch scheduler's schedule: the float64 host schedule of
`reference.numpy_reference.bookkeeping` turned into a table of per-step scalars, copied to the
devices that use it, and kept for reuse.

One row per evaluation n: sigma_n, c_in(sigma_n) (EDM Table 1), c_skip and c_out of CM
Appendix C (eq. 43), and s_noise * sqrt(tau_n^2 - eps^2) with tau_n = clip(sigma_{n+1},
sigma_min, sigma_max) (Algorithm 1 line 5). `step` reads one row, in float64 for float64
samples and in float32 for every narrower dtype (`compute_dtype`).
"""

from __future__ import annotations

import numpy as np
import torch

from reference.numpy_reference import formulas
from reference.numpy_reference.bookkeeping import Array, HostSchedule

# Columns of the per-step table (one row per evaluation n).
SIGMA, C_IN, C_SKIP, C_OUT, NOISE_SCALE = range(5)
#: How many schedules (index list, device, config) a scheduler keeps for `set_timesteps`.
KEPT_SCHEDULES = 8


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the per-step scalars for samples of `dtype`: float64 for float64,
    float32 for everything narrower (float32, float16, bfloat16)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def step_table(
    sigma: Array,
    sigma_next: Array,
    sigma_min: float,
    sigma_max: float,
    sigma_data: float,
    s_noise: float,
) -> Array:
    """The per-step scalars in float64, one row per evaluation (the module docstring):
    the noise scale is exactly 0 when the next sigma is eps."""
    tau = formulas.tau(sigma_next, sigma_min, sigma_max)
    c_skip, c_out = formulas.boundary_scalings(sigma, sigma_min, sigma_data)
    table = np.empty((len(sigma), 5))
    table[:, SIGMA] = sigma
    table[:, C_IN] = formulas.c_in(sigma, sigma_data)
    table[:, C_SKIP] = c_skip
    table[:, C_OUT] = c_out
    table[:, NOISE_SCALE] = s_noise * formulas.noise_scale(tau, sigma_min)
    return table


class Schedule:
    """What `set_timesteps` builds for one index list on one device, kept for reuse: the host
    schedule and its table (the truth, read-only), `timesteps` and `sigmas` on the device
    (handed out as copies), and the table on each (device, compute dtype) that used it."""

    def __init__(self, host: HostSchedule, table_host: Array, device: torch.device) -> None:
        self.host = host
        self.table_host = table_host
        table_host.setflags(write=False)
        wide = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self.timesteps = torch.from_numpy(host.timesteps.copy()).to(device, wide)
        self.sigmas = torch.from_numpy(host.sigmas.copy()).to(device, wide)
        self.tables: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}
        # Row i of a table as 0-dim tensors, made on first use (see `scalars`).
        self._rows: dict[tuple[torch.device, torch.dtype], list] = {}
        if device.type != "mps":
            self.table(device, torch.float64)
        self.table(device, torch.float32)

    def table(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The per-step table on `device` in `dtype`, copied there once (asynchronously)."""
        key = (device, dtype)
        table = self.tables.get(key)
        if table is None:
            host = torch.tensor(self.table_host, dtype=dtype)  # a copy: the host truth stays
            table = self.tables[key] = host.to(device, non_blocking=True)
        return table

    def scalars(self, i: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """Row i, (sigma, c_in, c_skip, c_out, noise scale), as 0-dim tensors on `device`.

        Eager, the row's views are made on first use and kept: reading them again is a list
        lookup instead of four indexing calls. Under torch.compile the row is indexed in the
        graph, so that the step index can stay a symbolic int (a list lookup would
        specialise on it: one graph per step)."""
        if torch.compiler.is_compiling():
            return self.table(device, dtype)[i].unbind()
        key = (device, dtype)
        rows = self._rows.get(key)
        if rows is None:
            rows = self._rows[key] = [None] * self.host.n
        row = rows[i]
        if row is None:
            row = rows[i] = self.table(device, dtype)[i].unbind()
        return row

    def host_rows(self, indices: list[int], dtype: torch.dtype) -> torch.Tensor:
        """Rows of the host table, shape [len(indices), 5], as a CPU tensor in `dtype`."""
        return torch.from_numpy(self.table_host[indices]).to(dtype)


class KeptSchedules:
    """The last `KEPT_SCHEDULES` schedules a scheduler built, by (index list, device, config):
    a pipeline asks for the same schedule on every call."""

    def __init__(self) -> None:
        self._kept: dict[tuple, Schedule] = {}

    def get(self, key: tuple) -> Schedule | None:
        return self._kept.get(key)

    def keep(self, key: tuple, schedule: Schedule) -> Schedule:
        """Keep `schedule` under `key`, forgetting the oldest kept."""
        if len(self._kept) >= KEPT_SCHEDULES:
            del self._kept[next(iter(self._kept))]
        self._kept[key] = schedule
        return schedule

    def clear(self) -> None:
        self._kept.clear()
