"""The pytest plugin of the conformance suite.

Registered, with its options, by `conformance/conftest.py` when the suite is run from a
checkout (`pytest conformance --impl=NAME`), and by the `pytest11` entry point
(`conformance/entry_point.py`) when the distribution is installed and the command line
targets the suite (`pytest --pyargs conformance --impl=NAME`). It does nothing to a test
session that collects no conformance test.

It adds the options (`--impl`, `--device`, `--dtype`, `--golden`, `--conformance-report`,
`--conformance-timeout`), loads the implementation at start-up (an unknown name is a
usage error listing what is available), parametrizes the tests over the device x dtype
matrix, skips what the implementation does not claim or the machine does not have,
gives each test a time limit, turns a failure that a declared deviation explains into a
known deviation, prints the header and the summary table, and writes the JSON report.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings

from conformance import __version__, deviations, loading, report, spec
from conformance.adapter import DTYPES, Adapter, unmet_requirement
from conformance.measure import ClauseViolation, Measure
from conformance.strategies import register_profiles

PLUGIN_NAME = "conformance.plugin"
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_IMPL = "reference"
#: Seconds a conformance test may run (`--conformance-timeout`); once one test has run out of
#: time the rest get AFTER_HANG_TIMEOUT, so that a hanging implementation costs minutes.
DEFAULT_TIMEOUT = 15.0
AFTER_HANG_TIMEOUT = 2.0

register_profiles()
#: The suite's default profile: the project's "ci" profile (derandomized, 25 examples, no
#: deadline) without the shrink phase, so that a failing implementation costs no more time
#: than a passing one (each failure still reports its example). `--hypothesis-profile=ci`
#: shrinks, `thorough` draws 1000 examples.
DEFAULT_PROFILE = "conformance-ci"
settings.register_profile(
    DEFAULT_PROFILE,
    parent=settings.get_profile("ci"),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


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
    results: list[dict[str, Any]] = field(default_factory=list)
    previous_profile: str | None = None


STATE = pytest.StashKey[SuiteState]()
MEASURE = pytest.StashKey[Measure]()
ACTIVE = pytest.StashKey[bool]()


# -- options and start-up -------------------------------------------------------------------


def add_options(parser: pytest.Parser) -> None:
    """The suite's command-line options (idempotent). Added only to sessions that run the
    suite (see `conformance/conftest.py` and `conformance/entry_point.py`), so that an
    installed suite adds no `--device` or `--dtype` to anyone else's pytest runs."""
    group = parser.getgroup("conformance", "consistency-model scheduler conformance suite")
    if any(option.dest == "impl" for option in group.options):
        return
    group.addoption(
        "--impl",
        default=None,
        metavar="NAME",
        help="implementation under test: reference, torch, diffusers, a name registered "
        f"under the entry-point group {loading.ENTRY_POINT_GROUP}, or package.module:attr "
        f"(default: {DEFAULT_IMPL})",
    )
    group.addoption(
        "--device",
        action="append",
        default=None,
        metavar="DEVICE",
        help="device to test on (repeatable; default: every device the implementation "
        "claims, those absent from this machine skipped)",
    )
    group.addoption(
        "--dtype",
        action="append",
        default=None,
        choices=DTYPES,
        help="sample dtype to test (repeatable; default: every dtype the implementation claims)",
    )
    group.addoption(
        "--golden",
        default=None,
        metavar="DIR",
        help="directory of golden files (manifest.json format cm-golden/1; default: the "
        "project's golden/)",
    )
    group.addoption(
        "--conformance-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit of one conformance test (default {DEFAULT_TIMEOUT:g}; 0: none); after "
        f"a test runs out of time the others get {AFTER_HANG_TIMEOUT:g} s",
    )
    group.addoption(
        "--conformance-report",
        default=None,
        metavar="PATH",
        help="write the conformance report (JSON) to PATH",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(id): the SPEC.md clause a conformance test checks")
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): capabilities the test needs (stateful, injected_noise, "
        "noise_convention, known_noise)",
    )
    config.addinivalue_line("markers", "dtypes(*names): restrict a test to these sample dtypes")
    config.stash[ACTIVE] = False
    if config.getoption("impl", None) is not None or _invoked_on_suite(config):
        _activate(config)


def _invoked_on_suite(config: pytest.Config) -> bool:
    """Whether the command line names the conformance package (a path or --pyargs)."""
    for arg in config.args:
        target = str(arg).split("::")[0]
        if config.getoption("pyargs") and (
            target == "conformance" or target.startswith("conformance.")
        ):
            return True
        path = (Path(config.invocation_params.dir) / target).resolve()
        if path == PACKAGE_DIR or PACKAGE_DIR in path.parents:
            return True
    return False


def _activate(config: pytest.Config) -> SuiteState:
    """Load the implementation and fix the matrix (a usage error if the name is unknown)."""
    if config.stash.get(ACTIVE, False):
        return config.stash[STATE]
    impl_spec = config.getoption("impl")
    defaulted = impl_spec is None
    try:
        adapter = loading.load(DEFAULT_IMPL if defaulted else impl_spec)
    except loading.ImplementationError as exc:
        raise pytest.UsageError(f"--impl: {exc}") from None
    claims = adapter.capabilities
    devices = list(dict.fromkeys(config.getoption("device") or claims.devices))
    dtypes = list(dict.fromkeys(config.getoption("dtype") or claims.dtypes))
    golden_dir = config.getoption("golden")
    if golden_dir is None:
        from reference.golden import default_golden_dir

        golden = default_golden_dir()
    else:
        golden = Path(golden_dir)
        if not golden.is_absolute():
            golden = Path(config.invocation_params.dir) / golden
        if not (golden / "manifest.json").is_file():
            raise pytest.UsageError(f"--golden: {str(golden)!r} holds no manifest.json")
    state = SuiteState(
        adapter=adapter,
        impl_spec=DEFAULT_IMPL if defaulted else impl_spec,
        impl_defaulted=defaulted,
        devices=devices,
        dtypes=dtypes,
        device_status={d: adapter.device_available(d) for d in devices},
        golden_dir=golden,
    )
    config.stash[STATE] = state
    config.stash[ACTIVE] = True
    if config.getoption("hypothesis_profile", None) is None:
        state.previous_profile = settings.get_current_profile_name()
        settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", DEFAULT_PROFILE))
    return state


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give back the hypothesis profile (a session run inside another, by pytester, must not
    change the outer one's)."""
    state = config.stash.get(STATE, None)
    if state is not None and state.previous_profile is not None:
        settings.load_profile(state.previous_profile)


def suite_state(config: pytest.Config) -> SuiteState:
    return _activate(config)


def is_conformance_item(item: pytest.Item) -> bool:
    path = Path(str(item.path)).resolve()
    return PACKAGE_DIR in path.parents


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not config.stash.get(ACTIVE, False):
        return None
    state = config.stash[STATE]
    adapter = state.adapter
    caps = adapter.capabilities
    default_note = " (the default; choose with --impl=NAME)" if state.impl_defaulted else ""
    devices = []
    for device in state.devices:
        ok, why = state.device_status[device]
        devices.append(device if ok else f"{device} (skipped: {why})")
    lines = [
        f"conformance suite {__version__}: implementation {adapter.name} {adapter.version}"
        f"{default_note}",
        f"  loaded: {adapter.description or state.impl_spec}",
        f"  matrix: devices {', '.join(devices)} x dtypes {', '.join(state.dtypes)}",
        f"  claims: devices {', '.join(caps.devices)}; dtypes {', '.join(caps.dtypes)}; "
        f"injected noise {'yes' if caps.injected_noise else 'no'}; noise convention "
        f"{caps.noise_convention or 'none'}; stateful API {'yes' if caps.stateful else 'no'}",
        *(f"  {line}" for line in adapter.header_lines()),
        f"  golden files: {state.golden_dir}",
        f"  known deviations declared: {len(adapter.deviations)}",
    ]
    if not _can_time_out():
        lines.append("  no per-test time limit on this platform (needs SIGALRM in the main thread)")
    elif config.getoption("conformance_timeout"):
        lines.append(f"  time limit per test: {config.getoption('conformance_timeout'):g} s")
    return lines


# -- collection: the matrix ----------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if PACKAGE_DIR not in Path(str(metafunc.definition.path)).resolve().parents:
        return
    state = suite_state(metafunc.config)
    names = metafunc.fixturenames
    if "golden_case" in names:
        # Each sampler case runs in its own dtype, if that dtype is in the matrix.
        from reference import golden

        cases = [
            pytest.param(case["name"], case["config"]["dtype"], id=case["name"])
            for case in golden.load_manifest(state.golden_dir)["cases"]
            if case["kind"] == "sampler" and case["config"]["dtype"] in state.dtypes
        ]
        if not cases:  # an empty parameter set would reach the report with no dtype
            reason = f"no golden sampler case in the selected dtypes {list(state.dtypes)}"
            cases = [pytest.param(None, None, marks=pytest.mark.skip(reason=reason))]
        metafunc.parametrize(("golden_case", "dtype"), cases)
    elif "dtype" in names:
        marker = metafunc.definition.get_closest_marker("dtypes")
        dtypes: list = [d for d in state.dtypes if marker is None or d in marker.args]
        if not dtypes:  # e.g. --dtype float16 for a test of float64/float32 only
            reason = f"checks only {list(marker.args)}; none of them is selected"
            dtypes = [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
        metafunc.parametrize("dtype", dtypes)
    if "device" in names:
        metafunc.parametrize("device", state.devices)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(is_conformance_item(item) for item in items):
        return
    state = suite_state(config)
    known = spec.clauses()
    for item in items:
        if not is_conformance_item(item):
            continue
        markers = list(item.iter_markers("clause"))
        if len(markers) != 1 or len(markers[0].args) != 1 or markers[0].args[0] not in known:
            found = [m.args for m in markers]
            item.add_marker(
                pytest.mark.xfail(
                    reason=f"suite bug: needs exactly one known clause marker, has {found}",
                    strict=True,
                    run=False,
                )
            )
            continue
        reason = _skip_reason(state, item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def _skip_reason(state: SuiteState, item: pytest.Item) -> str | None:
    adapter = state.adapter
    caps = adapter.capabilities
    params = getattr(item, "callspec", None)
    params = params.params if params is not None else {}
    device, dtype = params.get("device"), params.get("dtype")
    if device is not None:
        ok, why = state.device_status[device]
        if not ok:
            return f"{device}: {why}"
        kind = device.split(":")[0]
        if device not in caps.devices and kind not in caps.devices:
            return (
                f"{adapter.name} does not claim device {device} (claims {', '.join(caps.devices)})"
            )
    if dtype is not None and dtype not in caps.dtypes:
        return f"{adapter.name} does not claim dtype {dtype} (claims {', '.join(caps.dtypes)})"
    for marker in item.iter_markers("requires"):
        for need in marker.args:
            reason = unmet_requirement(adapter, need)
            if reason:
                return reason
    return None


# -- time limit ------------------------------------------------------------------------------


class ImplementationHang(BaseException):  # noqa: N818 (what happened, not an error class)
    """A conformance test ran out of time. A BaseException, so that hypothesis does not run the
    example again (it would hang again, with no alarm left)."""


HUNG = pytest.StashKey[bool]()


def _can_time_out() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Interrupt a conformance test that runs past its time limit (SIGALRM, restoring any
    alarm another plugin such as pytest-timeout had set)."""
    seconds = item.config.getoption("conformance_timeout", 0.0)
    if not seconds or not is_conformance_item(item) or not _can_time_out():
        return (yield)
    if item.config.stash.get(HUNG, False):
        seconds = min(seconds, AFTER_HANG_TIMEOUT)
    clause, device, dtype = _coordinates(item)
    where = "/".join(x for x in (device, dtype) if x) or "any device and dtype"

    def on_alarm(signum: int, frame: object) -> None:
        item.config.stash[HUNG] = True
        raise ImplementationHang(
            f"{clause} on {where}: the test ran past its time limit of {seconds:g} s "
            "(--conformance-timeout): the implementation hangs or is far too slow"
        )

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:
            left = max(outer_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


# -- fixtures --------------------------------------------------------------------------------


def _coordinates(item: pytest.Item) -> tuple[str, str | None, str | None]:
    marker = item.get_closest_marker("clause")
    clause = marker.args[0] if marker is not None and marker.args else "?"
    params = getattr(item, "callspec", None)
    params = params.params if params is not None else {}
    return clause, params.get("device"), params.get("dtype")


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Adapter:
    """The adapter of the implementation under test."""
    return suite_state(request.config).adapter


@pytest.fixture(scope="session")
def golden_dir(request: pytest.FixtureRequest) -> Path:
    """The golden directory (`--golden`, default the project's)."""
    return suite_state(request.config).golden_dir


@pytest.fixture
def measure(request: pytest.FixtureRequest, impl: Adapter) -> Measure:
    """The checks of this test, bound to its clause, device and dtype."""
    clause, device, dtype = _coordinates(request.node)
    declared = deviations.find(impl.deviations, clause, device, dtype)
    checks = Measure(impl, clause, device, dtype, declared)
    request.node.stash[MEASURE] = checks
    return checks


# -- outcomes: deviations and the report -------------------------------------------------------


def _violations(exc: BaseException) -> Iterator[ClauseViolation]:
    if isinstance(exc, ClauseViolation):
        yield exc
    for inner in getattr(exc, "exceptions", ()):
        yield from _violations(inner)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    test_report = yield
    if not is_conformance_item(item) or not item.config.stash.get(ACTIVE, False):
        return test_report
    phase_done = (
        test_report.when == "call"
        or (test_report.when == "setup" and not test_report.passed)
        or (test_report.when == "teardown" and test_report.failed)
    )
    if not phase_done:
        return test_report
    state = item.config.stash[STATE]
    clause, device, dtype = _coordinates(item)
    checks = item.stash.get(MEASURE, None)
    entry: dict[str, Any] = {
        "nodeid": item.nodeid,
        "clause": clause,
        "device": device,
        "dtype": dtype,
        "worst": checks.worst.as_dict() if checks and checks.worst else None,
        "noise_layers": sorted(checks.noise_layers) if checks else [],
        "deviation": None,
        "message": None,
        # Every declared deviation a check of this test matched, whatever its outcome (a test
        # runs all its checks: measure.Measure collects its violations).
        "deviations_seen": (
            [d.as_dict() for d in checks.deviations_observed()] if checks is not None else []
        ),
        "level": None,
    }
    declared = deviations.find(state.adapter.deviations, clause, device, dtype)
    title = spec.clauses().get(clause, "")
    where = "/".join(x for x in (device, dtype) if x) or "any device and dtype"
    if test_report.passed and checks is not None and checks.deviations_seen:
        deviation, violation = checks.deviations_seen[0]
        entry["status"] = "known deviation"
        entry["deviation"] = deviation.as_dict()
        entry["message"] = _first_line(str(violation))
        seen = [v for _, v in checks.deviations_seen if v.max_abs_error is not None]
        if seen:
            entry["max_abs_error"] = max(v.max_abs_error for v in seen)
            entry["max_rel_error"] = max(v.max_rel_error for v in seen)
            entry["ratio"] = max(v.ratio for v in seen)
        test_report.outcome = "skipped"
        test_report.wasxfail = (
            f"known deviation of {clause} on {where}: {deviation.measured}. {deviation.reason}"
        )
    elif test_report.passed:
        entry["status"] = "passed"
        if declared:
            entry["message"] = "declared deviation not observed"
    elif test_report.skipped:
        entry["status"] = "skipped"
        entry["message"] = _skip_message(test_report)
    else:
        excinfo = call.excinfo
        message = excinfo.exconly() if excinfo is not None else str(test_report.longrepr)
        found = list(_violations(excinfo.value)) if excinfo is not None else []
        explained = _explain(declared, found, message)
        figures = [v for v in found if v.max_abs_error is not None]
        if figures:
            entry["max_abs_error"] = max(v.max_abs_error for v in figures)
            entry["max_rel_error"] = max(v.max_rel_error for v in figures)
            entry["ratio"] = max(v.ratio for v in figures)
        if explained is not None and test_report.when == "call":
            entry["status"] = "known deviation"
            entry["deviation"] = explained.as_dict()
            test_report.outcome = "skipped"
            test_report.wasxfail = (
                f"known deviation of {clause} on {where}: {explained.measured}. {explained.reason}"
            )
        else:
            entry["status"] = "failed"
            note = f"clause {clause} ({title}) failed on {where}"
            if declared:
                declared_figures = "; ".join(d.measured for d in declared)
                note += f"; the declared deviation ({declared_figures}) does not cover it"
            test_report.sections.append(("conformance", note))
        entry["message"] = _first_line(str(found[0]) if found else message)
        entry["level"] = found[0].level if found else None
    state.results.append(entry)
    return test_report


def _explain(
    declared: list[deviations.Deviation], found: list[ClauseViolation], message: str
) -> deviations.Deviation | None:
    """The declared deviation that explains a failure: every clause violation in it (a
    hypothesis failure may hold several) by one declared deviation, or, for a failure that
    is no clause violation (the implementation raised), the whole message."""
    if not declared:
        return None
    if not found:
        return next((d for d in declared if d.match and d.explains(message)), None)
    chosen = None
    for violation in found:
        text = str(violation)
        hit = next(
            (
                d
                for d in declared
                if d.explains(
                    text, violation.ratio, violation.max_rel_error, violation.max_abs_error
                )
            ),
            None,
        )
        if hit is None:
            return None
        chosen = chosen or hit
    return chosen


def _skip_message(test_report: pytest.TestReport) -> str:
    longrepr = test_report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _first_line(text: str, limit: int = 400) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not config.stash.get(ACTIVE, False):
        return
    state = config.stash[STATE]
    if not state.results:
        return
    for line in report.summary_lines(report.build(state, config)):
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    path = config.getoption("conformance_report", None)
    if not path or not config.stash.get(ACTIVE, False):
        return
    target = Path(path)
    if not target.is_absolute():
        target = Path(config.invocation_params.dir) / target
    report.write(report.build(config.stash[STATE], config), target)
