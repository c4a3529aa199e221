"""What the report says about a run besides its outcomes: the implementation, the devices,
the filters and profile, the platform and library versions (a `conformance.harness.report.RunInfo`,
gathered from the pytest session)."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

import pytest
from hypothesis import settings

from conformance import __version__
from conformance.harness.activation import SuiteState
from conformance.harness.report import RunInfo


def of(
    config: pytest.Config,
    state: SuiteState,
    started: str,
    duration_s: float,
    exit_status: int | None,
) -> RunInfo:
    """The run's context, for `conformance.harness.report.build`."""
    adapter = state.adapter
    workers = getattr(config.option, "numprocesses", None) or 0
    return RunInfo(
        suite_version=__version__,
        implementation={
            "name": adapter.name,
            "version": str(adapter.version),
            "loaded": adapter.description or state.impl_spec,
            "impl_option": state.impl_spec,
            "capabilities": adapter.capabilities.as_dict(),
            "conventions": [line.strip() for line in adapter.header_lines()],
        },
        devices=[
            {
                "name": device,
                "available": state.device_status[device][0],
                "reason": state.device_status[device][1],
                "detail": _device_detail(device) if state.device_status[device][0] else "",
            }
            for device in state.devices
        ],
        dtypes=list(state.dtypes),
        declared=[d.as_dict() for d in adapter.deviations],
        started=started,
        duration_s=duration_s,
        exit_status=exit_status,
        hypothesis_profile=settings.get_current_profile_name(),
        strict=bool(config.getoption("conformance_strict")),
        workers=int(workers) if isinstance(workers, int) else 0,
        golden=state.golden_label,
        filters={
            "devices": state.requested_devices,
            "dtypes": state.requested_dtypes,
            "keyword": config.getoption("keyword") or None,
            "markers": config.getoption("markexpr") or None,
            "claims": config.getoption("conformance_claims"),
        },
        platform={
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "versions": _versions(),
        },
    )


def _versions() -> dict[str, str]:
    """Installed versions (whether this process imported them or not: with pytest-xdist the
    controller imports less than the workers)."""
    versions = {"python": platform.python_version()}
    for name in ("numpy", "torch", "mpmath", "safetensors", "hypothesis", "pytest", "diffusers"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _device_detail(device: str) -> str:
    if device.startswith("cuda"):
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            return str(torch.cuda.get_device_name(int(device.partition(":")[2] or 0)))
    if device == "cpu":
        return platform.processor() or platform.machine()
    return ""
