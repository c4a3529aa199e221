"""A sampler that takes the number of steps n and computes its own grid
(`time_points="steps"`): the suite passes n, reads the sigmas it evaluated from the
recording and holds them to SCHED-1 and GOLD-1 (and SCHED-2 where a custom list is SCHED-1's
indices); tests on other custom time points are skipped with the reason; a grid of its own that departs (float32 pow) fails SCHED-1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conformance.functional import RAW_SIGMA, FunctionalSampler
from conformance.protocol.bridges import TorchBridge
from tests.functional.test_zoo import PROFILE
from tests.mutants import runner

NAMES = {k: k for k in ("num_train_timesteps", "sigma_min", "sigma_max", "rho")}


def steps_sampler(denoise, x, n, noise, num_train_timesteps=40, sigma_min=0.002,
                  sigma_max=80.0, rho=7.0, dtype=np.float64):  # fmt: skip
    """n steps on the ascending indices k (N // n) of its N-point Karras grid."""
    N = num_train_timesteps
    lo, hi = dtype(sigma_min) ** dtype(1 / rho), dtype(sigma_max) ** dtype(1 / rho)
    ramps = [dtype(k * (N // n)) / dtype(N - 1) for k in range(n)]
    sigmas = [float((hi + r * (lo - hi)) ** dtype(rho)) for r in ramps]
    for sigma, tau in zip(sigmas, [*sigmas[1:], sigma_min], strict=True):
        x = denoise(x, sigma)
        x = x + noise(x) * (tau**2 - sigma_min**2) ** 0.5
    return x


def _declare(sample, name: str) -> FunctionalSampler:
    return FunctionalSampler(
        sample,
        name=name,
        callable="denoiser",
        time_points="steps",
        noise="function",
        bridge=TorchBridge(),
        dtypes=("float64",),
        parameters=NAMES,
        defaults={"num_train_timesteps": 40, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0},
    )


def own_grid() -> FunctionalSampler:
    return _declare(steps_sampler, "own grid")


def float32_grid() -> FunctionalSampler:
    return _declare(lambda *a, **kw: steps_sampler(*a, **kw, dtype=np.float32), "float32 grid")


CLAUSES = ["SCHED-1", "SCHED-2", "GOLD-1", "STEP-3", "STEP-9", "CFG-1", "CONV-1"]


def _run(factory: str) -> runner.SuiteRun:
    return runner.run(
        f"tests.functional.test_own_grid:{factory}",
        CLAUSES,
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )


def test_a_sampler_on_its_own_grid_is_held_to_the_schedule() -> None:
    result = _run("own_grid")
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert set(CLAUSES) - {"STEP-9"} <= result.passed()
    # STEP-9 draws custom time points only: skipped with the reason, not a health-check error
    assert "STEP-9" not in result.passed()


def test_its_own_float32_grid_fails_the_schedule() -> None:
    result = _run("float32_grid")
    assert set(result.failed()) >= {"SCHED-1"}, result.failed()
    assert set(result.failed()) <= {"SCHED-1", "SCHED-2", "GOLD-1"}, result.failed()


def test_its_schedule_clauses_run_under_the_default_profile() -> None:
    """SCHED-2 draws custom time points, most of which a step count cannot express: they are
    rejected, and the examples that fit (SCHED-1's indices) are checked, under the suite's
    default profile too, without Hypothesis's filter_too_much health check erring. STEP-3
    draws step counts and custom lists alike: only custom lists rejected in a row skip it
    (once every twentieth custom list of a test did, counted across the step counts)."""
    result = runner.run(
        "tests.functional.test_own_grid:own_grid",
        ["SCHED-2", "STEP-3"],
        ["float64"],
        extra=["--hypothesis-profile=conformance-ci"],
    )
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert {"SCHED-2", "STEP-3"} <= result.passed(), result.output[-2000:]


def generator_own_grid() -> FunctionalSampler:
    """On its own grid, drawing from the caller's seeded torch generator."""

    def sample(denoise, x, n, generator, s_noise=1.0, **grid):
        def noise(x):
            return s_noise * torch.randn(x.shape, generator=generator, dtype=x.dtype)

        return steps_sampler(denoise, x, n, noise, **grid)

    return FunctionalSampler(
        sample,
        name="own grid, generator",
        callable="denoiser",
        time_points="steps",
        noise="generator",
        bridge=TorchBridge(),
        dtypes=("float64",),
        parameters={**NAMES, "s_noise": "s_noise"},
        defaults={"num_train_timesteps": 40, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0,
                  "s_noise": 1.0},
    )  # fmt: skip


def test_its_noise_convention_is_probed_on_a_step_count() -> None:
    """The start-up probe of the noise convention runs two steps by count (it once handed
    time points [22, 0], which such a sampler skips: an internal error of pytest)."""
    result = runner.run(
        "tests.functional.test_own_grid:generator_own_grid",
        ["STEP-3"],
        ["float64"],
        extra=["--conformance-claims=check", f"--hypothesis-profile={PROFILE}"],
    )
    assert result.exit_code == pytest.ExitCode.OK, result.output[-2000:]
    assert "STEP-3" in result.passed(), result.output[-2000:]


def test_custom_time_points_are_skipped_with_the_reason() -> None:
    from conformance.inputs.strategies import DEFAULT_CONFIG
    from conformance.protocol.values import StepInputs, TimestepSpec

    adapter = own_grid()
    x = adapter.asarray(np.ones((1, 2)), "float64", "cpu")
    with pytest.raises(pytest.skip.Exception, match="takes a step count .* custom time points"):
        adapter.run_steps(
            DEFAULT_CONFIG, TimestepSpec(timesteps=(22, 0)), "cpu", [StepInputs(x, x)]
        )


def test_a_network_taking_a_step_count_needs_to_see_x_itself() -> None:
    with pytest.raises(ValueError, match="'steps' with callable='network' needs c_in=False"):
        FunctionalSampler(
            steps_sampler,
            name="x",
            callable="network",
            time_points="steps",
            noise="function",
            bridge=TorchBridge(),
        )


def network_steps_log_time() -> FunctionalSampler:
    """The zoo's network on its own grid (it hands the network t = sigma), declared with the
    spec's model time 250 log(sigma + 1e-44) instead."""
    from tests.functional import public_samplers as ps

    return FunctionalSampler(
        ps.network_steps,
        name="network own grid, t misdeclared",
        callable="network",
        time_points="steps",
        noise="function",
        c_in=False,
        bridge=TorchBridge(),
        dtypes=("float32",),
        parameters=NAMES,
        defaults={"num_train_timesteps": 40, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0},
    )


def test_a_network_on_its_own_grid_has_its_model_time_read_through_the_loop() -> None:
    """Its scalings cannot be read from one-step runs at chosen points (it takes only n):
    CONV-1 reads them through whole runs, so a model time declared wrong is CONV-1's, with
    the sigma its scalings were applied at (the time read back through the declared map
    would be sigma = e^(t / 250): 80 reads as 1.38)."""
    result = runner.run(
        "tests.functional.test_own_grid:network_steps_log_time",
        ["CONV-1", "SCHED-1", "STEP-1"],
        ["float32"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert set(result.failed()) == {"CONV-1"}, {c: result.messages(c) for c in result.failed()}
    # the clauses that read sigmas from the recording skip with CONV-1's finding as reason
    assert not {"SCHED-1", "STEP-1"} & set(result.passed()), result.passed()
    message = result.messages("CONV-1")[0]
    assert "model time t = 250 log(sigma + 1e-44): at evaluation 0" in message, message
    assert "its c_skip" in message and "is that of sigma 80" in message, message


def test_a_probe_the_sampler_skips_leaves_the_claim_to_the_clauses(monkeypatch) -> None:
    """A start-up probe run that the sampler skips (one evaluating n + 1 points for n steps,
    say) leaves the noise convention to the clauses: pytest's skip raised at start-up would
    end pytest itself (an INTERNALERROR)."""
    from conformance.harness import claims

    adapter = generator_own_grid()

    def skipped(*args, **kwargs):
        pytest.skip("evaluated 3 points for n = 2 steps")

    monkeypatch.setattr(adapter, "run_steps", skipped)
    try:
        problems = claims.check(adapter, ["cpu"], ["float64"])
    except pytest.skip.Exception as skip:
        pytest.fail(f"the probe let the sampler's skip through: {skip}")
    assert problems == []


def network_noise_always_on() -> FunctionalSampler:
    """The zoo's network on its own grid, drawing from the caller's generator and with no
    s_noise of its own (mapped, as noise='generator' needs, and ignored, as a public sampler
    without one does): the noise in CONV-1's whole-run readings cannot be turned off."""
    from tests.functional import public_samplers as ps

    def sample(model, x, n, generator, s_noise=1.0, **grid):
        def noise(x):
            return torch.randn(x.shape, generator=generator, dtype=x.dtype)

        return ps.network_steps(model, x, n, noise, **grid)

    return FunctionalSampler(
        sample,
        name="network, own grid, noise always on",
        callable="network",
        time_points="steps",
        noise="generator",
        model_time=RAW_SIGMA,
        c_in=False,
        bridge=TorchBridge(),
        dtypes=("float32",),
        parameters={**NAMES, "s_noise": "s_noise"},
        defaults={"num_train_timesteps": 40, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0,
                  "s_noise": 1.0},
    )  # fmt: skip


def test_its_scalings_are_read_within_the_rounding_of_noise_left_on() -> None:
    """In float32 the noise left on rounds at ~1e-3 of c_skip x at sigma_max: the reading
    carries that error into CONV-1's tolerance, so that a right model time passes (it once
    failed CONV-1, hiding its schedule's clauses)."""
    result = runner.run(
        "tests.functional.test_own_grid:network_noise_always_on",
        ["CONV-1", "SCHED-1"],
        ["float32"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    assert not result.failed(), {c: result.messages(c) for c in result.failed()}
    assert {"CONV-1", "SCHED-1"} <= result.passed()


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"grid": "n+2"}, r"`grid` must be one of \('N', 'n', 'n\+1'\), got 'n\+2'"),
        ({"grid": "n", "time_points": "ts"}, r"`grid` 'n' is for time_points='steps'"),
        (
            {"grid": "n+1", "parameters": NAMES},
            r"`grid` 'n\+1': its N follows the step count .* neither a parameter nor fixed",
        ),
        (
            {"grid": "n", "fixed": {"num_train_timesteps": 40}},
            r"`grid` 'n': its N follows the step count",
        ),
    ],
)
def test_a_grid_is_declared_only_where_its_N_follows_the_step_count(
    kwargs: dict, says: str
) -> None:
    declared = {"time_points": "steps", "parameters": {}, **kwargs}
    with pytest.raises(ValueError, match=says):
        FunctionalSampler(
            steps_sampler,
            name="x",
            callable="denoiser",
            noise="function",
            bridge=TorchBridge(),
            **declared,
        )


@pytest.mark.parametrize(
    ("grid", "N"), [("n+1", {1: 2, 2: 3, 39: 40}), ("n", {1: 2, 2: 2, 40: 40})]
)
def test_each_test_runs_at_the_N_its_grid_implies(grid: str, N: dict) -> None:
    """N = n + 1 (the last point not evaluated) or N = n (every point; two for one step, whose
    one point is sigma_max either way), whatever N the test asked for: its truth is there."""
    from conformance.inputs.strategies import DEFAULT_CONFIG
    from conformance.protocol.values import TimestepSpec

    adapter = FunctionalSampler(
        steps_sampler,
        name="x",
        callable="denoiser",
        time_points="steps",
        grid=grid,
        noise="function",
        bridge=TorchBridge(),
    )
    for n, expected in N.items():
        for spec in (TimestepSpec(num_inference_steps=n), TimestepSpec(timesteps=tuple(range(n - 1, -1, -1)))):  # fmt: skip
            settled = adapter.settings({**DEFAULT_CONFIG, "num_train_timesteps": 201}, spec)
            assert settled["num_train_timesteps"] == expected, (grid, spec)
    assert adapter.settings(DEFAULT_CONFIG)["num_train_timesteps"] == 40  # no count: the fixed


def test_grids_whose_N_follows_the_count_are_held_to_the_schedule_and_openai_s() -> None:
    """The zoo's samplers on an (n + 1)-point grid (the last point skipped) and on the n-point
    grid pass SCHED-1, SCHED-2, GOLD-1 (OpenAI's n-point grids: its n - 1 steps, or its n)
    and XT-1, none skipped; the (n + 1)-point sampler declared with grid='N' fails them."""
    checked = ["SCHED-1", "SCHED-2", "GOLD-1", "XT-1"]
    for name in ("generator_grid_n_plus_1", "generator_grid_n"):
        result = runner.run(
            f"tests.functional.zoo_generator:{name}",
            checked,
            ["float64"],
            extra=[f"--hypothesis-profile={PROFILE}"],
        )
        assert not result.failed(), {c: result.messages(c) for c in result.failed()}
        assert set(checked) <= result.passed(), (name, result.passed())
    undeclared = runner.run(
        "tests.functional.zoo_generator:generator_grid_undeclared",
        ["GOLD-1"],
        ["float64"],
        extra=[f"--hypothesis-profile={PROFILE}"],
    )
    message = undeclared.messages("GOLD-1")[0]
    assert "sigmas vs OpenAI's time points" in message, message
