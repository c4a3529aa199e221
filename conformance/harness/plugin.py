"""The pytest plugin of the conformance suite: its options and its hooks.

Registered, with its options, by `conformance/conftest.py` when the suite is run from a
checkout (`pytest conformance --impl=NAME`), and by the `pytest11` entry point
(`conformance/harness/entry_point.py`) when the distribution is installed and the command line
targets the suite (`pytest --pyargs conformance --impl=NAME`); it does nothing to a session
that does not run the suite. The work is done elsewhere:

- `conformance.harness.activation`: whether the suite runs, loading the implementation, the matrix,
  failing closed on what was asked for and cannot be tested, the claims (`claims`);
- `conformance.harness.fixtures`: the fixtures of the clause modules; this module gives each
  clause test the rest of what it needs, so that a test is its clause marker, its strategy and
  its body: `@given`'s settings with the `function_scoped_fixture` health check suppressed
  (`with_fixtures`), and the collection of its violations (`pytest_pyfunc_call`);
- `conformance.harness.timeout`: the time limit of each test;
- `conformance.harness.records`: each test phase classified into one `Outcome` record;
- `conformance.harness.report`: the table and the JSON report, from the records and the run's
  context (`conformance.harness.run_info`); `conformance.harness.markdown` the Markdown summary;
- `conformance.harness.failures`: the block a failing clause prints in place of a traceback.

With pytest-xdist, records travel from the workers to the controller in each test report's
`user_properties`; the controller (or the single process) collects them in
`pytest_runtest_logreport`, so a parallel run reports cell for cell what a serial one does.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import InvalidArgument

from conformance import __version__
from conformance.harness import (
    activation,
    failures,
    fixtures,
    markdown,
    records,
    report,
    run_info,
)
from conformance.harness import timeout as time_limit
from conformance.harness.activation import SuiteState
from conformance.harness.fixtures import MEASURE, STATE, coordinates
from conformance.inputs.strategies import register_profiles
from conformance.measuring.checks import Measure, collect_violations
from conformance.protocol import clauses, deviations
from conformance.protocol.adapter import unmet_requirement
from conformance.protocol.values import DTYPES

PLUGIN_NAME = "conformance.harness.plugin"
#: Seconds a conformance test may run (`--conformance-timeout`) with the default profile's 25
#: examples per test; a profile with more examples gets proportionally more (`thorough`, 1000
#: examples: 600 s). A test that runs out of time fails alone: the next one gets its full
#: limit. The first test of a run gets DEFAULT_WARMUP seconds more (`--conformance-warmup`):
#: the implementation's first call may compile (JAX, torch.compile) or warm up.
DEFAULT_TIMEOUT = 15.0
DEFAULT_EXAMPLES = 25
DEFAULT_WARMUP = 60.0

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

ACTIVE = pytest.StashKey[bool]()
RECORDS = pytest.StashKey[list[records.Outcome]]()
STARTED = pytest.StashKey[tuple[str, float]]()
WARMED = pytest.StashKey[bool]()


# -- options and start-up -------------------------------------------------------------------


def add_options(parser: pytest.Parser) -> None:
    """The suite's command-line options (idempotent). Added only to sessions that run the
    suite (see `conformance.harness.activation.targets_suite`), so that an installed suite adds no
    `--device` or `--dtype` to anyone else's pytest runs."""
    group = parser.getgroup("conformance", "consistency-model scheduler conformance suite")
    if any(option.dest == "impl" for option in group.options):
        return
    group.addoption(
        "--impl",
        default=None,
        metavar="NAME",
        help="implementation under test: reference, torch, diffusers, a name registered "
        "under the entry-point group cm_conformance.implementations, or package.module:attr "
        f"(default: {activation.DEFAULT_IMPL})",
    )
    group.addoption(
        "--device",
        action="append",
        default=None,
        metavar="DEVICE",
        help="device to test on (repeatable; default: every device the implementation "
        "claims, those absent from this machine skipped). A device asked for that is not "
        "claimed or not present stops the run",
    )
    group.addoption(
        "--dtype",
        action="append",
        default=None,
        choices=DTYPES,
        help="sample dtype to test (repeatable; default: every dtype the implementation "
        "claims). A dtype asked for that is not claimed stops the run",
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
        default=None,
        metavar="SECONDS",
        help=f"time limit of one conformance test (default {DEFAULT_TIMEOUT:g} s per "
        f"{DEFAULT_EXAMPLES} hypothesis examples of the profile; 0: none); a test that runs "
        "out of time fails alone, the next gets its full limit",
    )
    group.addoption(
        "--conformance-warmup",
        type=float,
        default=DEFAULT_WARMUP,
        metavar="SECONDS",
        help="seconds the first test of the run gets on top of its limit, for the "
        f"implementation's first call (compilation, warm-up; default {DEFAULT_WARMUP:g})",
    )
    group.addoption(
        "--conformance-report",
        default=None,
        metavar="PATH",
        help="write the conformance report (JSON, format cm-conformance-report/3) to PATH",
    )
    group.addoption(
        "--conformance-markdown",
        default=None,
        metavar="PATH",
        help="append the run's summary in Markdown to PATH (verdict, versions, the clause "
        "table, failures with their diagnoses), e.g. $GITHUB_STEP_SUMMARY",
    )
    group.addoption(
        "--conformance-strict",
        action="store_true",
        default=False,
        help="a SHOULD clause not met fails the run (default: a warning)",
    )
    group.addoption(
        "--conformance-claims",
        choices=("check", "trust"),
        default="check",
        help="check the adapter's claims at start-up and stop on a false one (default), or "
        "trust them (the clauses then report what a false claim breaks)",
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
    config.stash[RECORDS] = []
    if config.getoption("impl", None) is None and not activation.targets_suite(
        [str(a) for a in config.args] + (["--pyargs"] if config.getoption("pyargs") else []),
        invocation_dir=Path(config.invocation_params.dir),
    ):
        return
    state = activation.activate(config)
    config.stash[STATE] = state
    config.stash[ACTIVE] = True
    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "conformance.harness.fixtures")
    config.pluginmanager.register(RecordSink(config.stash[RECORDS]))
    if config.getoption("hypothesis_profile", None) is None:
        state.previous_profile = settings.get_current_profile_name()
        settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", DEFAULT_PROFILE))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give back the hypothesis profile (a session run inside another, by pytester, must not
    change the outer one's)."""
    state = config.stash.get(STATE, None)
    if state is not None and state.previous_profile is not None:
        settings.load_profile(state.previous_profile)


def _active(config: pytest.Config) -> SuiteState | None:
    return config.stash[STATE] if config.stash.get(ACTIVE, False) else None


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    session.config.stash[STARTED] = (started, time.monotonic())


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = _active(config)
    if state is None:
        return None
    adapter = state.adapter
    caps = adapter.capabilities
    default_note = " (the default; choose with --impl=NAME)" if state.impl_defaulted else ""
    devices = []
    for device in state.devices:
        ok, why = state.device_status[device]
        devices.append(device if ok else f"{device} (skipped: {why})")
    golden = "packaged" if state.golden_label == "packaged" else str(state.golden_dir)
    lines = [
        f"conformance suite {__version__}: implementation {adapter.name} {adapter.version}"
        f"{default_note}",
        f"  loaded: {adapter.description or state.impl_spec}",
        f"  matrix: devices {', '.join(devices)} x dtypes {', '.join(state.dtypes)}",
        f"  claims: devices {', '.join(caps.devices)}; dtypes {', '.join(caps.dtypes)}; "
        f"injected noise {'yes' if caps.injected_noise else 'no'}; noise convention "
        f"{caps.noise_convention or 'none'}; stateful API {'yes' if caps.stateful else 'no'}"
        + (" (checked)" if config.getoption("conformance_claims") == "check" else " (trusted)"),
        *(f"  {line}" for line in adapter.header_lines()),
        f"  golden files: {golden}",
        f"  known deviations declared: {len(adapter.deviations)} (each a clause on some "
        "dtypes and devices)",
    ]
    if not time_limit.available():
        lines.append("  no per-test time limit on this platform (needs SIGALRM in the main thread)")
    elif time_limit_of(config):
        lines.append(
            f"  time limit per test: {time_limit_of(config):g} s; the first test "
            f"{warmup_of(config):g} s more for the implementation's first call (compilation, "
            "warm-up: --conformance-warmup); a test that runs out fails alone"
        )
    return lines


# -- collection: the matrix ----------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = _active(metafunc.config)
    if state is None or not activation.in_suite(metafunc.definition.path):
        return
    names = metafunc.fixturenames
    if "golden_case" in names:
        # Each sampler case runs in its own dtype, if that dtype is in the matrix.
        from conformance.truth import golden

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
    state = _active(config)
    if state is None:
        return
    known = clauses.clauses()
    for item in items:
        if not activation.in_suite(item.path):
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
        with_fixtures(item, state.adapter.rejects_examples)
        reason = _skip_reason(state, item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def with_fixtures(item: pytest.Item, rejects: bool = False) -> None:
    """Let a clause test's `@given` share its function-scoped fixtures (`measure`: one per
    test, collecting over all the examples) among its examples: the loaded profile's settings
    (`--hypothesis-profile`, else the suite's), the health check `function_scoped_fixture`
    suppressed, and `filter_too_much` too for an implementation that `rejects` examples it
    cannot be given (`Adapter.rejects_examples`: an example that fits may follow many that do
    not). A test with settings of its own keeps them (Hypothesis takes one `@settings` per
    test; so does a parametrized test's second item)."""
    test = getattr(item, "obj", None)
    if not hasattr(test, "hypothesis"):
        return
    profile = settings.default
    suppressed = [*profile.suppress_health_check, HealthCheck.function_scoped_fixture]
    suppressed += [HealthCheck.filter_too_much] if rejects else []
    with contextlib.suppress(InvalidArgument):
        settings(parent=profile, suppress_health_check=suppressed)(test)


def _skip_reason(state: SuiteState, item: pytest.Item) -> str | None:
    adapter = state.adapter
    _, device, _ = coordinates(item)
    if device is not None:
        ok, why = state.device_status[device]
        if not ok:
            return f"{device}: {why}"
    for marker in item.iter_markers("requires"):
        for need in marker.args:
            reason = unmet_requirement(adapter, need)
            if reason:
                return reason
    return None


# -- running: the time limit --------------------------------------------------------------


def time_limit_of(config: pytest.Config) -> float:
    """`--conformance-timeout`, else DEFAULT_TIMEOUT scaled to the profile's examples."""
    given = config.getoption("conformance_timeout", None)
    if given is not None:
        return float(given)
    examples = settings.default.max_examples
    return DEFAULT_TIMEOUT * max(1.0, examples / DEFAULT_EXAMPLES)


def warmup_of(config: pytest.Config) -> float:
    """`--conformance-warmup`: what the first test gets on top of its limit."""
    return float(config.getoption("conformance_warmup", DEFAULT_WARMUP) or 0.0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Interrupt a conformance test that runs past its time limit (its own: a test that ran
    out before leaves this one's intact; the first test has the first call's allowance)."""
    __tracebackhide__ = True  # a traceback shows the implementation's frames, not this one
    seconds = time_limit_of(item.config)
    if not seconds or _active(item.config) is None or not activation.in_suite(item.path):
        return (yield)
    clause, device, dtype = coordinates(item)
    where = "/".join(x for x in (device, dtype) if x) or "any device and dtype"
    limit = f"its time limit of {seconds:g} s (--conformance-timeout)"
    if not item.config.stash.get(WARMED, False) and warmup_of(item.config):
        item.config.stash[WARMED] = True  # the implementation's first call is in this test
        seconds += warmup_of(item.config)
        limit += (
            f" and the first test's {warmup_of(item.config):g} s for the first call "
            "(--conformance-warmup)"
        )
    message = (
        f"{clause} on {where}: the test ran past {limit}: the implementation hangs or is far "
        "too slow"
    )
    with time_limit.limit(seconds, message), plain_numbers():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """Collect the violations of a conformance test over all its checks and examples, and
    raise them once at the end (`conformance.measuring.checks.collect_violations`)."""
    __tracebackhide__ = True
    measure = pyfuncitem.funcargs.get("measure")
    active = _active(pyfuncitem.config) is not None and activation.in_suite(pyfuncitem.path)
    if not active or not isinstance(measure, Measure):
        return (yield)
    with collect_violations(measure):
        return (yield)


@contextlib.contextmanager
def plain_numbers() -> Iterator[None]:
    """numpy 2 scalars repr as `0.002`, not `np.float64(0.002)`, in the messages a test
    writes (numpy 1 does so already)."""
    if int(np.__version__.split(".")[0]) < 2:
        yield
        return
    with np.printoptions(legacy="1.25"):
        yield


# -- outcomes --------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Classify the phase into a record (carried in `user_properties`); a known deviation or
    a SHOULD clause not met becomes an xfail, never a pass."""
    test_report = yield
    state = _active(item.config)
    if state is None or not activation.in_suite(item.path):
        return test_report
    done = (
        test_report.when == "call"
        or (test_report.when == "setup" and not test_report.passed)
        or (test_report.when == "teardown" and test_report.failed)
    )
    if not done:
        return test_report
    clause, device, dtype = coordinates(item)
    checks = item.stash.get(MEASURE, None)
    outcome = records.classify(
        # From the package on, wherever it is installed and whatever the rootdir.
        nodeid=f"conformance/{Path(str(item.path)).name}::{item.nodeid.partition('::')[2]}",
        clause=clause,
        device=device,
        dtype=dtype,
        phase=test_report.when,
        outcome=test_report.outcome,
        exception=call.excinfo.value if call.excinfo is not None else None,
        text=_skip_message(test_report) if test_report.skipped else str(test_report.longrepr),
        worst=checks.worst if checks is not None else None,
        noise_layers=sorted(checks.noise_layers) if checks is not None else (),
        absorbed=checks.deviations_seen if checks is not None else (),
        declared=deviations.applicable(state.adapter.deviations, clause, device, dtype),
        strict=item.config.getoption("conformance_strict"),
    )
    if outcome.status == "known deviation":
        d = outcome.deviation or {}
        test_report.outcome = "skipped"
        # The reason once per group in the summary; in full with -v.
        reason = f". {d.get('reason')}" if item.config.getoption("verbose") > 0 else ""
        test_report.wasxfail = (
            f"known deviation of {clause} on {outcome.where}: {d.get('measured')}{reason}"
        )
    elif outcome.status == "warning":
        test_report.outcome = "skipped"
        test_report.wasxfail = (
            f"SHOULD clause {clause} not met on {outcome.where}: {outcome.message}"
        )
    elif outcome.status in records.FAILING:
        found = list(records.violations_in(call.excinfo.value if call.excinfo else None))
        if found and test_report.failed:
            # The block a person reads, in place of the harness's frames.
            verbose = item.config.getoption("verbose") > 0
            test_report.longrepr = (
                failures.blocks_verbose(found[0]) if verbose else failures.block(found[0])
            )
        else:
            title = clauses.clauses().get(clause, "")
            test_report.sections.append(
                ("conformance", f"clause {clause} ({title}) {outcome.status} on {outcome.where}")
            )
        if outcome.status == "failed" and checks is not None and checks.declared:
            figures = "; ".join(d.measured for d in checks.declared)
            test_report.sections.append(
                ("conformance", f"the declared deviation of {clause} ({figures}) does not cover it")
            )
    test_report.user_properties.append((records.PROPERTY, outcome.as_dict()))
    return test_report


def _skip_message(test_report: pytest.TestReport) -> str:
    longrepr = test_report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class RecordSink:
    """Collects the session's records, from this process's tests or, under pytest-xdist, from
    the workers' reports (registered on the controller as on a single process)."""

    def __init__(self, collected: list[records.Outcome]) -> None:
        self.collected = collected

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == records.PROPERTY:
                self.collected.append(records.Outcome.from_dict(value))


# -- the report ------------------------------------------------------------------------------


def _session_report(config: pytest.Config, exit_status: int | None) -> dict[str, Any]:
    started, start = config.stash.get(STARTED, ("", time.monotonic()))
    info = run_info.of(config, config.stash[STATE], started, time.monotonic() - start, exit_status)
    return report.build(config.stash[RECORDS], info)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that tested nothing is not green (exit status 5); write the JSON report."""
    config = session.config
    if _active(config) is None or _is_worker(config) or config.getoption("collectonly"):
        return
    data = _session_report(config, int(exitstatus))
    if data["verdict"] == "nothing tested" and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
        data["exit_status"] = int(session.exitstatus)
    config.stash[FINAL] = data
    written = []
    path = config.getoption("conformance_report", None)
    if path:
        target = _target(config, path)
        report.write(data, target)
        written.append(f"report written: {target}")
    path = config.getoption("conformance_markdown", None)
    if path:
        target = _target(config, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as out:  # appended: $GITHUB_STEP_SUMMARY
            out.write(markdown.render(data))
        written.append(f"Markdown summary written: {target}")
    config.stash[WRITTEN] = written


def _target(config: pytest.Config, path: str) -> Path:
    target = Path(path)
    return target if target.is_absolute() else Path(config.invocation_params.dir) / target


FINAL = pytest.StashKey[dict[str, Any]]()
WRITTEN = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    data = config.stash.get(FINAL, None)
    if data is None:
        return
    for line in report.summary_lines(data, verbose=config.getoption("verbose")):
        terminalreporter.write_line(line)
    for line in config.stash.get(WRITTEN, []):
        terminalreporter.write_line(line)
