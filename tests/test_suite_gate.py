"""The gate's contract with CI, run as a user runs it (a subprocess each): it fails closed on
a device or dtype it cannot test and on a false claim, a run that tested nothing is not
green, the README's adapter example works as written, and `-n 2` reports what a serial
run does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "conformance"
README = REPO / "README.md"


def run_suite(
    *args: str, cwd: Path = REPO, path: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"}
    env["PYTHONPATH"] = ":".join(str(p) for p in (REPO, *path))
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


# -- failing closed ---------------------------------------------------------------------------


def test_device_asked_for_and_absent_stops_the_run() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = run_suite(str(SUITE / "test_config.py"), "--impl=torch", "--device=cuda")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:]
    assert (
        "--device cuda: not available: no CUDA device on this machine "
        "(torch.cuda.is_available() is False)" in done.stderr
    )
    assert "nothing was run" in done.stderr


def test_dtype_or_device_not_claimed_stops_the_run() -> None:
    done = run_suite(
        str(SUITE / "test_config.py"), "--impl=reference", "--dtype=float32", "--device=cuda"
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--dtype float32: reference does not claim it (claims float64)" in done.stderr
    assert "--device cuda: reference does not claim it (claims cpu)" in done.stderr


def test_a_run_that_tested_nothing_is_not_green(tmp_path: Path) -> None:
    """Every test skipped (float16 for clauses checked on float64/float32 only): exit status 5
    and the verdict "nothing tested", not a pass."""
    report = tmp_path / "r.json"
    done = run_suite(
        str(SUITE / "test_scalings.py"),
        "--impl=torch",
        "--dtype=float16",
        "-k",
        "not boundary",
        f"--conformance-report={report}",
    )
    assert done.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, done.stdout[-2000:]
    assert "nothing was tested: every conformance test was skipped" in done.stdout
    data = json.loads(report.read_text())
    assert data["verdict"] == "nothing tested" and data["exit_status"] == 5


# -- the common mistakes, caught at start-up ------------------------------------------------------


def test_numpy_class_given_bare_stops_at_start_up_naming_the_adapter() -> None:
    """A numpy scheduler given as a bare class is taken to work on torch tensors: one probe of
    its schedule stops the run, instead of dozens of "expected an array of the
    implementation's framework" failures."""
    done = run_suite(
        str(SUITE / "test_config.py"),
        "--impl=reference.numpy_reference.scheduler:CMStochasticIterativeScheduler",
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:]
    assert "does not work on its adapter's arrays; nothing was run" in done.stderr
    assert (
        "set_timesteps made `sigmas` a numpy.ndarray, but its adapter (TorchSchedulerAdapter, "
        "bridge TorchBridge) works on other arrays" in done.stderr
    )
    assert (
        "wrap it in conformance.implementations.numpy_adapter.NumpySchedulerAdapter" in done.stderr
    )


@pytest.mark.parametrize("damage", ["corrupted", "missing"])
def test_broken_golden_directory_stops_at_start_up_naming_the_file(
    golden_copy: Path, damage: str
) -> None:
    """A corrupted or incomplete golden directory is a broken installation, never counted
    against the implementation: exit status 4 at start-up, the file named."""
    golden = golden_copy
    victim = golden / "cd_imagenet64_ts_0_22_39_f64.safetensors"
    if damage == "corrupted":
        data = bytearray(victim.read_bytes())
        data[-1] ^= 0xFF
        victim.write_bytes(bytes(data))
    else:
        victim.unlink()
    done = run_suite(str(SUITE / "test_golden.py"), "--impl=reference", f"--golden={golden}")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:]
    assert "'cd_imagenet64_ts_0_22_39_f64.safetensors'" in done.stderr, done.stderr
    says = "fails its checksum" if damage == "corrupted" else "is missing from"
    assert says in done.stderr and "nothing was run" in done.stderr
    assert "not the implementation's failure" in done.stderr


def test_missing_extra_gets_a_hint_naming_it(tmp_path: Path) -> None:
    """`--impl=diffusers` where diffusers is not installed (shadowed here by a package that
    raises as a missing one does): the extra to install is named."""
    (tmp_path / "diffusers").mkdir()
    (tmp_path / "diffusers" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'diffusers'\", name='diffusers')\n"
    )
    env_path = (tmp_path,)
    done = run_suite(str(SUITE / "test_config.py"), "--impl=diffusers", path=env_path)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:]
    assert "No module named 'diffusers'" in done.stderr
    assert 'pip install "cm-conformance[diffusers]"' in done.stderr, done.stderr


def test_suite_named_without_pyargs_outside_a_checkout_gets_the_fix(tmp_path: Path) -> None:
    done = run_suite("conformance", "--impl=reference", cwd=tmp_path)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:]
    assert "python -m pytest --pyargs conformance --impl=NAME" in done.stderr, done.stderr


def test_a_run_that_tests_nothing_prints_its_verdict_line() -> None:
    done = run_suite(str(SUITE / "test_config.py"), "--impl=reference", "-k", "no_such_test")
    assert done.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, done.stdout[-2000:]
    assert "conformance of reference 0.1.0 (suite 0.1.0): NOTHING TESTED" in done.stdout
    assert "nothing was tested: every conformance test was skipped or deselected" in done.stdout


# -- claims checked at start-up -----------------------------------------------------------------

FALSE_CLAIMS = '''
from conformance.protocol.values import Capabilities
from conformance.implementations.numpy_adapter import NumpySchedulerAdapter
from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler as NumpyReference


class NoBookkeeping(NumpyReference):
    index_for_timestep = None


def not_stateful():
    return NumpySchedulerAdapter(
        NoBookkeeping, name="nobook", version="0",
        capabilities=Capabilities(dtypes=("float64",), injected_noise=True, stateful=True),
    )


def no_bfloat16_in_numpy():
    return NumpySchedulerAdapter(
        NumpyReference, name="np16", version="0",
        capabilities=Capabilities(dtypes=("bfloat16",), injected_noise=True),
    )


def other_draws():  # torch imported here only: the other cases run without it
    from conformance.implementations.torch_adapter import TorchSchedulerAdapter
    from reference.torch_scheduler.scheduler import CMStochasticIterativeScheduler as TorchReference

    class GeneratorIgnored(TorchReference):
        """Draws from torch's global RNG whatever generator it is given."""

        def _standard_normal(self, F, x, generator, noise):
            return super()._standard_normal(F, x, None, noise)

    return TorchSchedulerAdapter(
        GeneratorIgnored, name="otherdraws", version="0",
        capabilities=Capabilities(
            dtypes=("float32",), injected_noise=True, noise_convention="torch.randn"
        ),
    )
'''


@pytest.mark.parametrize(
    ("factory", "says"),
    [
        ("not_stateful", "stateful=True, but NoBookkeeping has no index_for_timestep"),
        (
            "other_draws",
            "noise_convention='torch.randn', but one step with generator(seed=20240) on "
            "cpu/float32 drew other numbers than otherdraws's reproduce_noise gives",
        ),
        ("no_bfloat16_in_numpy", "dtype bfloat16 on cpu: asarray(..., 'bfloat16', 'cpu') raised"),
    ],
)
def test_false_claim_stops_the_run_naming_it(tmp_path: Path, factory: str, says: str) -> None:
    (tmp_path / "claims_module.py").write_text(FALSE_CLAIMS)
    done = run_suite(
        str(SUITE / "test_noise.py"), f"--impl=claims_module:{factory}", path=(tmp_path,)
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:]
    assert "a claim of its adapter is false; nothing was run" in done.stderr
    assert says in done.stderr, done.stderr


def test_trusted_claims_leave_the_verdict_to_the_clauses(tmp_path: Path) -> None:
    (tmp_path / "claims_module.py").write_text(FALSE_CLAIMS)
    done = run_suite(
        str(SUITE / "test_noise.py"),
        "--impl=claims_module:other_draws",
        "--conformance-claims=trust",
        "-k",
        "declared_convention",
        path=(tmp_path,),
    )
    assert done.returncode == pytest.ExitCode.TESTS_FAILED
    assert "FAILED NOISE-2 cpu/float32:\n  NOISE-2 violated on cpu/float32: " in done.stdout


# -- the README's adapter example, as written -------------------------------------------------


def readme_block(language: str, first_line: str) -> str:
    """The README's fenced block in `language` whose first line is `first_line`."""
    for block in re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"README.md has no {language} block starting with {first_line!r}")


def build_example_package(root: Path, *, injected_noise: bool | None = None) -> None:
    """mypackage (its adapter module verbatim from the README, MyScheduler built on diffusers'
    class) and a `.dist-info` whose entry_points.txt is the README's pyproject snippet, so
    that `--impl=myscheduler` finds it as it finds an installed distribution's."""
    adapter_module = readme_block("python", "# mypackage/conformance.py")
    if injected_noise is not None:  # the claim the user made about such a class
        adapter_module = adapter_module.replace(
            "injected_noise=False", f"injected_noise={injected_noise}"
        )
    package = root / "mypackage"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "conformance.py").write_text(adapter_module)
    (package / "sched.py").write_text(
        textwrap.dedent(
            '''
            from diffusers import CMStochasticIterativeScheduler


            class MyScheduler(CMStochasticIterativeScheduler):
                """A user's scheduler built on diffusers' class."""
            '''
        )
    )
    toml = readme_block("toml", "# pyproject.toml of mypackage")
    # `name = "module:attr"` (TOML) becomes `name = module:attr` (entry_points.txt).
    entry = [
        re.sub(r'^(\S+)\s*=\s*"(.*)"$', r"\1 = \2", line)
        for line in toml.splitlines()
        if line and not line.startswith(("#", "["))
    ]
    dist = root / "mypackage-1.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mypackage\nVersion: 1.2.0\n")
    (dist / "entry_points.txt").write_text(
        "[cm_conformance.implementations]\n" + "\n".join(entry) + "\n"
    )


def test_readme_adapter_example_passes_with_diffusers_deviations_taken_over(
    tmp_path: Path, conformance_report
) -> None:
    build_example_package(tmp_path)
    report = tmp_path / "report.json"
    done = run_suite(
        "--pyargs",
        "conformance",
        "--impl=myscheduler",
        "-k",
        "last_step or begin_index",
        f"--conformance-report={report}",
        "-rx",
        cwd=tmp_path,
        path=(tmp_path,),
    )
    assert done.returncode == pytest.ExitCode.OK, done.stdout[-3000:] + done.stderr[-2000:]
    assert "conformance suite 0.1.0: implementation myscheduler 1.2.0" in done.stdout
    # The example claims cpu and cuda: cuda is in the matrix, skipped with the reason where
    # this machine has none.
    matrix = re.search(r"matrix: devices (.*) x dtypes", done.stdout)
    assert matrix, done.stdout[-3000:]
    if _cuda_available():
        assert matrix.group(1) == "cpu, cuda", matrix.group(0)
    else:
        assert matrix.group(1).startswith("cpu, cuda (skipped: "), matrix.group(0)
    # diffusers' behaviour, declared by diffusers and taken over: known deviations, not failures.
    assert re.search(
        r"XFAIL \S*test_step.py::test_last_step_adds_no_noise\[float32-cpu\] - known deviation "
        r"of STEP-4 on cpu/float32: fitted noise scale",
        done.stdout,
    ), done.stdout[-3000:]
    data = conformance_report(report)
    assert data["verdict"] == "pass" and data["implementation"]["name"] == "myscheduler"
    cells = data["counts"]["cells"]
    assert cells["known deviation"] > 0 and cells["failed"] == cells["error"] == 0
    own = [d for d in data["deviations"] if d["reason"].startswith("float16 samples")]
    assert len(own) == 1 and not own[0]["observed"]  # declared, not observed: reported
    assert len(data["deviations"]) == 24  # diffusers' 23, taken over, and its own


def test_readme_example_with_a_false_injected_noise_claim_stops_at_start_up(
    tmp_path: Path,
) -> None:
    build_example_package(tmp_path, injected_noise=True)
    done = run_suite(
        "--pyargs", "conformance", "--impl=myscheduler", cwd=tmp_path, path=(tmp_path,)
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:]
    assert (
        "injected_noise=True, but MyScheduler.step(self, model_output, timestep, sample, "
        "generator, return_dict) has no `noise` parameter" in done.stderr
    )


# -- pytest-xdist -------------------------------------------------------------------------------

#: The numpy reference with one declared departure (an IndexError where INDEX-3 asks for a
#: ValueError), so that a known deviation, passes and a skip all travel from the workers.
INDEXES = """
from conformance.protocol.values import Capabilities
from conformance.protocol.deviations import Deviation
from conformance.implementations.numpy_adapter import NumpySchedulerAdapter
from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler as Reference


class Indexes(Reference):
    def index_for_timestep(self, timestep, schedule_timesteps=None):
        try:
            return super().index_for_timestep(timestep, schedule_timesteps)
        except ValueError:
            raise IndexError("index 0 is out of bounds for dimension 0 with size 0") from None


def adapter():
    return NumpySchedulerAdapter(
        Indexes, name="indexes", version="0",
        capabilities=Capabilities(dtypes=("float64",), injected_noise=True),
        deviations=(Deviation("INDEX-3", "indexes an empty result", "IndexError",
                              match="raised IndexError"),),
    )
"""


def test_parallel_run_reports_what_a_serial_run_does(tmp_path: Path, conformance_report) -> None:
    (tmp_path / "indexes.py").write_text(INDEXES)

    def run(workers: int) -> tuple[dict, list[str]]:
        report = tmp_path / f"report-{workers}.json"
        done = run_suite(
            str(SUITE / "test_index.py"),
            str(SUITE / "test_noise.py"),
            "--impl=indexes:adapter",
            # NOISE-3 measures the implementation's own unseeded draws (fresh entropy): its
            # figures differ between any two runs, serial or parallel.
            "-k",
            "not statistical_moments",
            f"-n{workers}",
            f"--conformance-report={report}",
            path=(tmp_path,),
        )
        assert done.returncode == pytest.ExitCode.OK, done.stdout[-3000:]
        lines = done.stdout.splitlines()
        table = lines[lines.index(next(x for x in lines if x.startswith("conformance of"))) :]
        table = table[: next(i for i, x in enumerate(table) if x.startswith("====="))]
        table = [x for x in table if not x.startswith("report written:")]  # its own path
        return conformance_report(report), table

    serial, serial_table = run(0)
    parallel, parallel_table = run(2)
    assert parallel["run"]["workers"] == 2 and serial["run"]["workers"] == 0
    assert parallel_table == serial_table
    for key in ("started", "duration_s", "run"):
        del serial[key], parallel[key]
    assert parallel == serial
    cells = serial["counts"]["cells"]
    assert cells["known deviation"] == 1 and cells["passed"] >= 5 and cells["skipped"] == 1
    # three need a noise convention (none claimed); one is for functional samplers (conventions)
    assert serial["counts"]["tests"]["skipped"] == 4


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


# -- the README's commands ------------------------------------------------------------------------


def command_after(text: str, marker: str) -> str:
    """The one-line command of the bash block that follows `marker`."""
    return text.split(marker, 1)[1].split("```bash\n", 1)[1].split("\n", 1)[0]


def test_readme_commands_in_the_order_a_user_acts_and_the_pin_placeholder_explained() -> None:
    """The main job first, without torch; the CPU wheel only before what needs torch (the
    project's tests); the test command with its duration; pip upgraded where `--group`
    needs a newer one than a new venv holds."""
    text = README.read_text()
    markers = ("<!-- main-command -->", "<!-- cpu-wheel -->", "<!-- test-command -->")
    order = [text.index(m) for m in markers]
    assert order == sorted(order), "main job, then the CPU wheel, then the test command"
    main = command_after(text, markers[0])
    assert "torch" not in main and "[" not in main, main  # no extra: no torch
    assert "whl/cpu" in command_after(text, markers[1])
    test_part = text[order[1] : order[2]]
    assert re.search(r"about \d+ to \d+ minutes on 2 CPU\s+cores", test_part), test_part
    for group in re.finditer(r"--group", text):
        before = text[max(0, group.start() - 400) : group.start()]
        assert "--upgrade pip" in before, text[group.start() - 200 : group.start() + 50]
    commands = [
        line
        for block in re.findall(r"```(?:bash|yaml)\n(.*?)```", text, flags=re.DOTALL)
        for line in block.splitlines()
    ]
    mixed = [c for c in commands if ".venv/bin/" in c.replace(". .venv/bin/activate", "")]
    assert not mixed, "activate the venv, then `python -m ...`, in every command"
    pins = re.findall(r"cm-conformance(?:\[\w+\])? @ git\+\S+@(\S+?)\"", text)
    assert pins and set(pins) == {"COMMIT_SHA"}, pins  # explained next to the snippet
    assert "replace" in text and "`COMMIT_SHA` with the full 40-character SHA" in text
