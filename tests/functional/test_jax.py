"""The JAX bridge: arrays in and out (float64 in a scoped x64), PRNG-key draws by the declared
splitting and their verification (CONV-1), compiled samplers recorded through io_callback,
and the error a tracer gets when the sampler was not declared compiled."""

from __future__ import annotations

import functools

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from conformance.functional import ConventionError, FunctionalSampler  # noqa: E402
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
def test_key_misuse_fails_the_declared_splitting(before_split: bool, says: str) -> None:
    with pytest.raises(ConventionError, match="noise keys \\(split") as caught:
        _misused(before_split).check_conventions("cpu", "float32")
    assert says in str(caught.value)


def test_declared_keys_hold_for_the_zoo() -> None:
    held = zoo.jax_split().check_conventions("cpu", "float64")
    assert "noise keys (split: key, sub = jax.random.split(key) before each draw; " in held[-1]
    assert held[-1].endswith(": 3 draws")  # one after the last evaluation (its departure)


def test_keys_split_the_other_way_round_are_declared() -> None:
    """xax's order (`noise_key, key = split(key)`): declared keys="split_first", it holds;
    declared "split", CONV-1 names draw 0's key."""
    adapter = zoo.jax_split()
    adapter.sample_fn = functools.partial(jax_samplers.split_sampler, draw_from_first=True)
    with pytest.raises(ConventionError, match=r"noise keys \(split: .*draw 0 expected key"):
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


def test_x_T_drawn_from_a_key_is_refused() -> None:
    """Drawing x_T consumes a key of the split the steps' keys come from: not supported; the
    error names both arguments and what is allowed."""
    with pytest.raises(
        ValueError, match="`x_T` 'drawn' with noise='generator' and bridge JaxBridge"
    ):
        FunctionalSampler(
            lambda *a, **kw: None,
            name="draws x_T from its key",
            callable="denoiser",
            time_points="ts",
            noise="generator",
            x_T="drawn",
            bridge=JaxBridge(),
            parameters={"s_noise": "s_noise"},
        )
