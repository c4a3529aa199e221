"""When the suite acts, and what it acts on.

`targets_suite` decides whether a pytest command line runs the conformance suite (the one
place that test is written: the `pytest11` entry point, the checkout's conftest and the
plugin all ask it); `in_suite` whether a test file belongs to it. `activate` then loads the
implementation, fixes the device x dtype matrix and checks the claims, failing closed: a
device or dtype asked for explicitly that the implementation does not claim, or the machine
does not have, and a claim found false, stop the run with the reason.

This module imports nothing heavy at import time: the entry point loads it in every pytest
session of an environment where the suite is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from conformance.protocol.adapter import Adapter

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the conformance package
PACKAGE = "conformance"
DEFAULT_IMPL = "reference"


def in_suite(path: Any) -> bool:
    """Whether `path` is the suite's package or a file in it."""
    resolved = Path(str(path)).resolve()
    return resolved == PACKAGE_DIR or PACKAGE_DIR in resolved.parents


def targets_suite(args: list[str], *, invocation_dir: Path | None = None) -> bool:
    """Whether a pytest command line runs the conformance suite: it gives `--impl`, or names
    the package (`--pyargs conformance[.module]`) or a path inside it."""
    pyargs = "--pyargs" in args
    base = invocation_dir or Path.cwd()
    for arg in args:
        if arg.startswith("--impl"):
            return True
        if arg.startswith("-"):
            continue
        target = arg.split("::")[0]
        if pyargs and (target == PACKAGE or target.startswith(PACKAGE + ".")):
            return True
        if in_suite(base / target):
            return True
    return False


@dataclass
class SuiteState:
    """What the session knows about the implementation under test and its matrix."""

    adapter: Adapter
    impl_spec: str
    impl_defaulted: bool
    devices: list[str]
    dtypes: list[str]
    device_status: dict[str, tuple[bool, str]]
    golden_dir: Path
    golden_label: str  # how the report names it: "packaged" or the --golden argument
    requested_devices: list[str] | None = None
    requested_dtypes: list[str] | None = None
    previous_profile: str | None = None


def activate(config: pytest.Config) -> SuiteState:
    """Load `--impl`, fix the matrix, check the claims: a `pytest.UsageError` (exit status 4)
    names what is wrong."""
    import pytest

    from conformance.harness import claims, loading

    _suite_named_without_pyargs(config)
    impl_spec = config.getoption("impl")
    defaulted = impl_spec is None
    try:
        adapter = loading.load(DEFAULT_IMPL if defaulted else impl_spec)
    except loading.ImplementationError as exc:
        raise pytest.UsageError(f"--impl: {exc}") from None
    caps = adapter.capabilities
    requested_devices = config.getoption("device")
    requested_dtypes = config.getoption("dtype")
    devices = list(dict.fromkeys(requested_devices or caps.devices))
    dtypes = list(dict.fromkeys(requested_dtypes or caps.dtypes))
    device_status = {d: adapter.device_available(d) for d in devices}
    problems = []
    for device in requested_devices or ():
        if device not in caps.devices and device.split(":")[0] not in caps.devices:
            problems.append(
                f"--device {device}: {adapter.name} does not claim it (claims "
                f"{', '.join(caps.devices)})"
            )
        elif not device_status[device][0]:
            problems.append(f"--device {device}: not available: {device_status[device][1]}")
    for dtype in requested_dtypes or ():
        if dtype not in caps.dtypes:
            problems.append(
                f"--dtype {dtype}: {adapter.name} does not claim it (claims "
                f"{', '.join(caps.dtypes)})"
            )
    if problems:
        raise pytest.UsageError(
            "the conformance run cannot test what was asked for; nothing was run:\n  "
            + "\n  ".join(problems)
        )
    if config.getoption("conformance_claims") == "check":
        available = [d for d in devices if device_status[d][0]]
        if available and dtypes:
            mismatch = claims.framework(adapter, available[0], dtypes[0])
            if mismatch:
                raise pytest.UsageError(
                    f"{adapter.name}: the implementation does not work on its adapter's arrays; "
                    f"nothing was run:\n  {mismatch}"
                )
        false = claims.check(adapter, available, dtypes)
        if false:
            raise pytest.UsageError(
                f"{adapter.name}: a claim of its adapter is false; nothing was run "
                "(fix the adapter's Capabilities):\n  " + "\n  ".join(false)
            )
    golden, label = _golden(config)
    _verify_golden(golden, label)
    return SuiteState(
        adapter=adapter,
        impl_spec=DEFAULT_IMPL if defaulted else impl_spec,
        impl_defaulted=defaulted,
        devices=devices,
        dtypes=dtypes,
        device_status=device_status,
        golden_dir=golden,
        golden_label=label,
        requested_devices=requested_devices,
        requested_dtypes=requested_dtypes,
    )


def _golden(config: pytest.Config) -> tuple[Path, str]:
    import pytest

    option = config.getoption("golden")
    if option is None:
        from conformance.truth.golden import default_golden_dir

        return default_golden_dir(), "packaged"
    golden = Path(option)
    if not golden.is_absolute():
        golden = Path(config.invocation_params.dir) / golden
    if not (golden / "manifest.json").is_file():
        raise pytest.UsageError(f"--golden: {str(golden)!r} holds no manifest.json")
    # The report names no absolute path of the machine that ran it.
    return golden, option if not Path(option).is_absolute() else golden.name


def _verify_golden(golden: Path, label: str) -> None:
    """Every case of the golden directory loads, checksum, tensors and shapes as its manifest
    says: a broken or incomplete directory is a broken installation (or a bad `--golden`),
    stopped at start-up with the file named, never counted against the implementation."""
    import pytest

    from conformance.truth import golden as golden_files

    try:
        for name in golden_files.case_names(directory=golden):
            golden_files.load_case(name, golden)
    except golden_files.GoldenFileError as exc:
        where = "the packaged golden files" if label == "packaged" else f"--golden {label}"
        fix = (
            "reinstall the suite, or restore golden/ with `git checkout golden`"
            if label == "packaged"
            else "point --golden at a complete directory"
        )
        raise pytest.UsageError(
            f"{where}: {exc}; nothing was run (a broken golden directory is not the "
            f"implementation's failure: {fix})"
        ) from None


def _suite_named_without_pyargs(config: pytest.Config) -> None:
    """`pytest conformance ...` outside a checkout: pytest would say only "file or directory
    not found: conformance"; say that the installed suite is named with `--pyargs`."""
    import pytest

    if config.getoption("pyargs"):
        return
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        target = str(arg).split("::")[0]
        if target.split("/")[0] != PACKAGE or (base / target).exists():
            continue
        raise pytest.UsageError(
            f"{target}: no such file or directory here ({base}); to run the installed suite "
            "from outside a checkout, name it with --pyargs: "
            "python -m pytest --pyargs conformance --impl=NAME"
        )
