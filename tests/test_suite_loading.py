"""The conformance suite's plugin mechanics, run as a user runs them (pytester, in a
subprocess): choosing the implementation with `--impl` (built-in, entry point,
`module:attr`), an unknown name, the header, and a user's class that passes; and the loading
functions called directly (`conformance.harness.loading`: a file path given to `--impl`,
`declared_by`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conformance.harness import loading

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "conformance"


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run the suite in a subprocess from the pytester directory (where user modules live)."""
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{pytester.path}")
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)

    def run(*args: str, subset: str | None = None) -> pytest.RunResult:
        target = str(SUITE if subset is None else SUITE / subset)
        return pytester.runpytest_subprocess(target, "-p", "no:cacheprovider", *args, timeout=300)

    return run


def test_unknown_name_is_a_usage_error_listing_what_is_available(suite) -> None:
    result = suite("--impl=nothere", subset="test_config.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--impl: unknown implementation 'nothere'; available:",
            "*reference*built-in*",
            "*torch*built-in*",
            "*diffusers*built-in*",
            "*package.module:attr*",
        ]
    )


@pytest.mark.parametrize(
    ("impl", "says"),
    [
        ("no_such_module:Scheduler", "*cannot import module 'no_such_module'*"),
        ("user_module:Missing", "*module 'user_module' has no attribute 'Missing'*"),
        ("user_module:NotAScheduler", "*class NotAScheduler lacks set_timesteps, step*"),
    ],
)
def test_module_attr_that_cannot_be_used_is_a_usage_error(
    suite, pytester: pytest.Pytester, impl: str, says: str
) -> None:
    pytester.makepyfile(user_module="class NotAScheduler:\n    pass\n")
    result = suite(f"--impl={impl}", subset="test_config.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([says])


@pytest.mark.parametrize("attr", ["my_adapter", ""])
def test_a_file_path_gets_the_module_attr_form_with_its_folder_on_the_import_path(
    tmp_path: Path, attr: str
) -> None:
    """What a new user tries first: `--impl=/path/to/adapters.py:NAME`. Not a module that
    is not on the import path: the form `--impl` takes, with the folder to put on it."""
    (tmp_path / "adapters.py").write_text("my_adapter = None\n")
    impl = f"{tmp_path / 'adapters.py'}" + (f":{attr}" if attr else "")
    with pytest.raises(loading.ImplementationError) as raised:
        loading.load(impl)
    message = str(raised.value)
    assert "--impl takes package.module:attr, not a file path" in message
    command = f"PYTHONPATH={tmp_path} python -m pytest --pyargs conformance --impl=adapters:"
    assert command + (attr or "NAME") in message
    assert "no file" not in message  # the file exists; only the form is wrong


def test_declared_by_takes_over_diffusers_deviations_without_importing_it() -> None:
    from conformance.implementations.diffusers_deviations import DEVIATIONS

    assert loading.declared_by("diffusers") == DEVIATIONS
    assert loading.declared_by("reference") == ()


def test_header_shows_implementation_version_and_matrix(suite) -> None:
    result = suite("--impl=reference", "--collect-only", subset="test_config.py")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "conformance suite *: implementation reference 0.1.0",
            "*loaded: reference.numpy_reference.scheduler.CMStochasticIterativeScheduler*",
            "*matrix: devices cpu x dtypes float64",
            "*claims: devices cpu; dtypes float64; injected noise yes; noise convention "
            "numpy.standard_normal; stateful API yes (checked)",
            "*golden files: packaged",
            "*known deviations declared: 0 (each a clause on some dtypes and devices)",
        ]
    )


def test_subclass_of_diffusers_class_passes_with_its_deviations(
    suite, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        user_scheduler="""
        from diffusers import CMStochasticIterativeScheduler


        class MyScheduler(CMStochasticIterativeScheduler):
            '''A user's scheduler: diffusers' class, unchanged.'''
        """
    )
    result = suite("--impl=user_scheduler:MyScheduler", "--device=cpu", "-k", "not golden", "-rx")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(
        [
            "*implementation user_scheduler:MyScheduler * (diffusers *)",
            "*a subclass of diffusers' class (its deviations inherited)*",
        ]
    )
    result.stdout.fnmatch_lines(["XFAIL *known deviation of STEP-4*"])
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] > 50 and outcomes.get("failed", 0) == 0


ENTRY_POINT_MODULE = """
from conformance.protocol.values import Capabilities
from conformance.implementations.numpy_adapter import NumpySchedulerAdapter
from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler


def adapter():
    return NumpySchedulerAdapter(
        CMStochasticIterativeScheduler,
        name="acme-numpy",
        version="9.9",
        capabilities=Capabilities(devices=("cpu",), dtypes=("float64",), injected_noise=True),
    )
"""


def _install_entry_point(pytester: pytest.Pytester) -> None:
    """A distribution 'acme' registering `acme_conformance:adapter` as `acme` in the suite's
    entry-point group, importable from the pytester directory."""
    pytester.makepyfile(acme_conformance=ENTRY_POINT_MODULE)
    dist = pytester.mkdir("acme-1.0.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[cm_conformance.implementations]\nacme = acme_conformance:adapter\n"
    )


def test_entry_point_name_loads_the_registered_adapter(suite, pytester: pytest.Pytester) -> None:
    _install_entry_point(pytester)
    result = suite("--impl=acme", subset="test_config.py")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
    result.stdout.fnmatch_lines(["conformance suite *: implementation acme-numpy 9.9"])
    menu = suite("--impl=nothere", subset="test_config.py")
    menu.stderr.fnmatch_lines(["*acme*entry point acme_conformance:adapter*"])


def test_user_adapter_that_is_correct_passes(suite, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(acme_conformance=ENTRY_POINT_MODULE)
    result = suite("--impl=acme_conformance:adapter", "-q", subset="test_step.py")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]


def test_broken_user_class_fails_naming_the_clause(suite, pytester: pytest.Pytester) -> None:
    """c_out 0.1 % too large: STEP-1 fails, and says by how much, on which device and dtype."""
    pytester.makepyfile(
        broken_scheduler=textwrap.dedent(
            ENTRY_POINT_MODULE
            + """

class Broken(CMStochasticIterativeScheduler):
    def get_scalings_for_boundary_condition(self, sigma):
        c_skip, c_out = super().get_scalings_for_boundary_condition(sigma)
        return c_skip, c_out * 1.001


def broken():
    made = adapter()
    made.scheduler_class, made.name = Broken, "broken"
    return made
"""
        )
    )
    result = suite("--impl=broken_scheduler:broken", "-k", "denoise", subset="test_step.py")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "FAILED STEP-1 cpu/float64:",
            "  STEP-1 violated on cpu/float64: denoised (s_noise = 0, no clamp)",
            "    clause:     MUST, *",
            "*    error: * bound * (step bound, float64): a factor *",
        ]
    )


def test_golden_option_points_the_golden_tests_elsewhere(
    suite, golden_copy: Path, tmp_path: Path, conformance_report
) -> None:
    """`--golden DIR`: the golden tests read DIR's manifest (here: one sampler case only) and
    refuse a file that fails its checksum, as a failing test, not a crash."""
    import json

    manifest_path = golden_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    keep = {"schedule_default", "scalings_default", "cd_imagenet64_ts_0_22_39_f64"}
    manifest["cases"] = [c for c in manifest["cases"] if c["name"] in keep]
    manifest_path.write_text(json.dumps(manifest))
    report = tmp_path / "report.json"
    result = suite(
        "--impl=reference",
        f"--golden={golden_copy}",
        f"--conformance-report={report}",
        "-v",
        subset="test_golden.py",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
    result.stdout.fnmatch_lines([f"*golden files: {golden_copy}*"])
    result.stdout.fnmatch_lines(
        ["*test_trajectories_replayed_step_by_step[[]cd_imagenet64_ts_0_22_39_f64-cpu] PASSED*"]
    )
    assert "five_points" not in result.stdout.str()
    # The report names no path of this machine: the directory's name, as it was given.
    data = conformance_report(report)
    assert data["run"]["golden"] == "golden" and str(tmp_path) not in report.read_text()
    # A corrupted file is refused by its checksum at start-up, naming it: a broken golden
    # directory, not a failure of the implementation.
    target = golden_copy / "cd_imagenet64_ts_0_22_39_f64.safetensors"
    target.write_bytes(target.read_bytes()[:-8] + b"\0" * 8)
    result = suite("--impl=reference", f"--golden={golden_copy}", subset="test_golden.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cd_imagenet64_ts_0_22_39_f64.safetensors* fails its checksum*"])
