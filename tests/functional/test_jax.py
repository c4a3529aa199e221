"""The JAX bridge: arrays in and out (float64 in a scoped x64), PRNG-key draws by the declared
splitting and their verification (CONV-1), compiled samplers recorded through io_callback,
and the error a tracer gets when the sampler was not declared compiled."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from conformance.functional import ConventionError, FunctionalSampler  # noqa: E402
from conformance.harness.timeout import ImplementationHang  # noqa: E402
from conformance.inputs.strategies import DEFAULT_CONFIG  # noqa: E402
from conformance.protocol.bridges import JaxBridge  # noqa: E402
from conformance.protocol.values import StepInputs, TimestepSpec  # noqa: E402
from tests.functional import jax_samplers, zoo  # noqa: E402

VALUES = np.array([[0.1, -2.5, 80.0], [1e-3, 3.0, -0.75]])


def _x64() -> bool:
    return bool(jnp.zeros(1, dtype=float).dtype == jnp.float64)


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_bridge_round_trip_keeps_x64_scoped(dtype: str) -> None:
    bridge = JaxBridge()
    x64_before = _x64()
    array = bridge.asarray(VALUES, dtype, "cpu")
    info = bridge.describe(array)
    assert (info.type, info.shape, info.dtype, info.device) == ("jax.Array", (2, 3), dtype, "cpu")
    expected = VALUES.astype(jnp.dtype(dtype)).astype(np.float64)  # rounded once (ml_dtypes)
    np.testing.assert_array_equal(bridge.to_numpy(array), expected)
    assert bridge.same_values(bridge.copy(array), array)
    assert _x64() == x64_before  # the user's setting is untouched
    assert bridge.describe(np.zeros(2)) is None


@pytest.mark.parametrize("keys", ["split", "split_first", "fold_in"])
def test_key_draws_follow_the_declared_splitting(keys: str) -> None:
    bridge = JaxBridge(keys=keys)
    key = jax.random.PRNGKey(7)
    got = bridge.reproduce_noise_from(key, (2, 3), "float32", "cpu", 3)
    if keys == "split":  # key, sub = split(key) before each draw
        k1, s1 = jax.random.split(key)
        k2, s2 = jax.random.split(k1)
        _, s3 = jax.random.split(k2)
        subs = [s1, s2, s3]
    elif keys == "split_first":  # sub, key = split(key) before each draw
        s1, k1 = jax.random.split(key)
        s2, k2 = jax.random.split(k1)
        s3, _ = jax.random.split(k2)
        subs = [s1, s2, s3]
    else:
        subs = [jax.random.fold_in(key, j) for j in range(3)]
    for z, sub in zip(got, subs, strict=True):
        np.testing.assert_array_equal(np.asarray(z), np.asarray(jax.random.normal(sub, (2, 3))))
    assert len({float(z[0, 0]) for z in got}) == 3


def test_a_bad_key_splitting_is_refused() -> None:
    with pytest.raises(ValueError, match="keys"):
        JaxBridge(keys="split_n")


def _misused(before_split: bool):
    def sample(denoiser, x, ts, key, s_noise=1.0, **kw):
        for i in range(len(ts)):
            x = denoiser(x, 80.0 / (i + 1) * jnp.ones(x.shape[0], x.dtype))
            if i == len(ts) - 1:
                break
            if before_split:  # draws from the key, then splits it
                z = jax.random.normal(key, x.shape, x.dtype)
                key, _ = jax.random.split(key)
            else:  # one sub-key for every draw
                z = jax.random.normal(jax.random.split(key)[1], x.shape, x.dtype)
            x = x + s_noise * z
        return x

    return FunctionalSampler(
        sample,
        name="misused keys",
        callable="denoiser",
        time_points="timesteps",
        noise="generator",
        bridge=JaxBridge(keys="split"),
        parameters={"s_noise": "s_noise"},
    )


@pytest.mark.parametrize(
    ("before_split", "says"),
    [(True, "the key given itself: drawn before splitting it"), (False, "a key used twice")],
)
def test_key_misuse_is_named_by_conv1_and_left_to_noise2(before_split: bool, says: str) -> None:
    """The same noise drawn again is no splitting convention: CONV-1 names the misuse and
    holds, and NOISE-2, which counts the draws from the keys, fails (one bug, one failure)."""
    held = _misused(before_split).check_conventions("cpu", "float32")
    assert held[-1].startswith("noise keys (split"), held
    assert says in held[-1] and held[-1].endswith("(NOISE-2's finding)"), held[-1]


def test_declared_keys_hold_for_the_zoo() -> None:
    held = zoo.jax_split().check_conventions("cpu", "float64")
    assert "noise keys (split: key, sub = jax.random.split(key) before each draw; " in held[-1]
    assert held[-1].endswith(": 3 draws")  # one after the last evaluation (its departure)


def test_keys_split_the_other_way_round_are_declared() -> None:
    """xax's order (`noise_key, key = split(key)`): declared keys="split_first", it holds;
    declared "split", CONV-1 names draw 0's key."""
    adapter = zoo.jax_split()
    adapter.sample_fn = functools.partial(jax_samplers.split_sampler, draw_from_first=True)
    with pytest.raises(
        ConventionError,
        match=r"noise keys \(split: .*draw 0 expected key .* \(declare keys='split_first'",
    ):
        adapter.check_conventions("cpu", "float64")
    adapter.bridge = JaxBridge(keys="split_first")
    held = adapter.check_conventions("cpu", "float64")
    assert held[-1].startswith("noise keys (split_first: sub, key = jax.random.split(key)")


def test_a_compiled_sampler_is_recorded_through_io_callback() -> None:
    adapter = zoo.jax_fori()
    held = adapter.check_conventions("cpu", "float64")
    assert held[0] == "time points (ts): 3 evaluations"
    assert held[-1].startswith("noise keys (fold_in")
    x = adapter.asarray(80.0 * VALUES, "float64", "cpu")
    inputs = [StepInputs(adapter.asarray(VALUES, "float64", "cpu"), x)] * 2
    results = adapter.run_steps(DEFAULT_CONFIG, TimestepSpec(timesteps=(30, 0)), "cpu", inputs)
    assert [r.sigma for r in results][0] == pytest.approx(80.0, rel=1e-12)
    assert str(results[-1].prev_sample.dtype) == "float64"


@pytest.mark.parametrize(
    "raised", [ImplementationHang("past the time limit"), ConventionError("not as declared")]
)
def test_what_the_scripted_model_raises_in_a_compiled_run_surfaces_as_itself(
    raised: BaseException,
) -> None:
    """XLA re-raises an exception of an io_callback as its own error ("CpuCallback error"):
    the suite's time limit or finding raised by the scripted model in a compiled sampler
    reaches the test as itself, so that the time limit is reported as one."""
    adapter = zoo.jax_fori()

    def network(u: np.ndarray, sigma: float) -> np.ndarray:
        raise raised

    x_T = adapter.asarray(80.0 * VALUES, "float32", "cpu")
    with pytest.raises(type(raised), match=str(raised)):
        adapter.trajectory(DEFAULT_CONFIG, TimestepSpec(timesteps=(30, 0)), "cpu", x_T, network, [])
    assert adapter.bridge.take_host_error() is None  # taken once


def test_a_tracer_gets_an_error_that_says_what_to_do() -> None:
    adapter = zoo.jax_fori()
    adapter.bridge = JaxBridge(keys="fold_in")  # compiled=False: not declared
    with pytest.raises(TypeError, match=r"JAX tracer.*JaxBridge\(compiled=True\)"):
        adapter.check_conventions("cpu", "float32")


def test_float64_runs_in_x64_and_float32_as_the_user_has_it() -> None:
    bridge = JaxBridge()
    seen = {}

    def sample(model, x, sigmas, noise, **kw):
        seen[str(x.dtype)] = str(jnp.asarray(1.0).dtype)
        return jax_samplers.eager_sampler(model, x, sigmas, noise, **kw)

    adapter = FunctionalSampler(
        sample,
        name="probe",
        callable="network",
        time_points="sigmas",
        noise="function",
        bridge=bridge,
        dtypes=("float64", "float32"),
    )
    for dtype in ("float64", "float32"):
        adapter.check_conventions("cpu", dtype)
    assert seen == {"float64": "float64", "float32": "float64" if _x64() else "float32"}


def test_a_compiled_float64_run_restores_x64_process_wide() -> None:
    adapter = zoo.jax_fori()
    before = _x64()
    adapter.check_conventions("cpu", "float64")
    assert _x64() == before
    x = adapter.asarray(VALUES, "float32", "cpu")
    inputs = [StepInputs(adapter.asarray(VALUES, "float32", "cpu"), x)] * 2
    results = adapter.run_steps(DEFAULT_CONFIG, TimestepSpec(timesteps=(30, 0)), "cpu", inputs)
    assert str(results[-1].prev_sample.dtype) == "float32"


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("typed", [False, True])
def test_a_substituted_key_draws_as_the_other_eager_and_traced(compiled: bool, typed: bool) -> None:
    """Two runs given different keys share x_T's draw by substituting its key: a
    `jax.random.normal` call on that key draws what the other key gives, every other key
    draws its own, a legacy or a typed key, in Python or traced under jit."""
    bridge = JaxBridge()
    make = jax.random.key if typed else jax.random.PRNGKey
    root, other, unrelated = make(1), make(2), make(3)

    def draws(a, b):
        return jax.random.normal(a, (3,)), jax.random.normal(b, (3,))

    run = jax.jit(draws) if compiled else draws
    with bridge.substitute_key(root, other):
        substituted, kept = run(root, unrelated)
    np.testing.assert_array_equal(substituted, jax.random.normal(other, (3,)))
    np.testing.assert_array_equal(kept, jax.random.normal(unrelated, (3,)))
    assert not np.array_equal(jax.random.normal(root, (3,)), substituted)  # restored after


#: Run in a process of its own with two host devices (XLA reads the flag when jax starts).
TWO_DEVICES = """
import json, jax
from tests.functional import zoo  # noqa: F401 (registers the members)
from tests.functional.test_zoo import PROFILE
from tests.mutants import runner
assert jax.local_device_count() == 2
out = {}
for name, clauses in (("jax_pmap", ["SCHED-1", "STEP-1", "NOISE-2", "CONV-1"]),
                      ("jax_pmap_second_device_c_out", ["SCHED-1", "STEP-1", "NOISE-2", "CONV-1"]),
                      ("jax_pmap_hook", ["STEP-1", "STEP-3", "CONV-1"])):
    run = runner.run(
        f"tests.functional.zoo_jax:{name}", clauses, ["float32"],
        extra=[f"--hypothesis-profile={PROFILE}", "--conformance-timeout=0"],
    )
    out[name] = {"failed": sorted(run.failed()), "passed": sorted(run.passed()),
                 "messages": run.messages("STEP-1")[:1]}
print(json.dumps(out))
"""


def test_a_sampler_pmapped_over_two_devices_is_gated_row_by_row() -> None:
    """The batch split over two devices by `jax.pmap`: each device's call is answered its
    rows and recorded whole, its keys watched on the first device, a hook's draw handed
    each device its rows; the conforming samplers pass, and a fault on the second device's
    rows alone fails STEP-1 alone."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    verdicts = json.loads(done.stdout.strip().splitlines()[-1])
    assert verdicts["jax_pmap"]["failed"] == [], verdicts
    assert {"SCHED-1", "STEP-1", "NOISE-2", "CONV-1"} <= set(verdicts["jax_pmap"]["passed"])
    faulty = verdicts["jax_pmap_second_device_c_out"]
    assert faulty["failed"] == ["STEP-1"], verdicts
    assert "STEP-1 violated" in faulty["messages"][0], faulty
    assert verdicts["jax_pmap_hook"]["failed"] == [], verdicts
    assert {"STEP-1", "STEP-3", "CONV-1"} <= set(verdicts["jax_pmap_hook"]["passed"])
