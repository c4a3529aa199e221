"""Functional samplers written as JAX research code writes them: jnp arrays, PRNG keys split
by hand, a loop in Python or compiled end to end with `jax.jit` and `lax.fori_loop`, or
data-parallel under `jax.pmap` over the local devices. None knows the suite; `zoo_jax.py`
wraps each in a `FunctionalSampler` on a `JaxBridge`.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax


def karras(ramp, t_min, t_max, rho):
    """sigma at a ramp in [0, 1] (EDM eq. 5)."""
    a, b = t_max ** (1 / rho), t_min ** (1 / rho)
    return (a + ramp * (b - a)) ** rho


def boundary(sigma, t_min, sigma_data):
    """c_skip, c_out, c_in of CM Appendix C."""
    c_skip = sigma_data**2 / ((sigma - t_min) ** 2 + sigma_data**2)
    c_out = (sigma - t_min) * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
    return c_skip, c_out, 1 / (sigma**2 + sigma_data**2) ** 0.5


def eager_sampler(model, x, sigmas, noise, sigma_data=0.5, clip_denoised=True):
    """A Python loop over an explicit sigma list (evaluation points then sigma_min); the
    network on c_in x and 250 log(sigma + 1e-44); the noise from `noise(x)`."""
    eps = sigmas[-1]
    for sigma, tau in zip(sigmas[:-1], sigmas[1:], strict=True):
        c_skip, c_out, c_in = boundary(sigma, eps, sigma_data)
        denoised = c_skip * x + c_out * model(c_in * x, 250 * jnp.log(sigma + 1e-44))
        if clip_denoised:
            denoised = jnp.clip(denoised, -1.0, 1.0)
        x = denoised + noise(x) * (tau**2 - eps**2) ** 0.5
    return x


@partial(jax.jit, static_argnums=0, static_argnames=("clip",))
def fori_sampler(apply_fn, x, ts, key, t_min=0.002, t_max=80.0, rho=7.0, steps=40,
                 sigma_data=0.5, clip=True, s_noise=1.0):  # fmt: skip
    """OpenAI's JAX style, compiled end to end: ascending indices `ts` into a `steps`-point
    grid (the end point t_min exactly), a `lax.fori_loop`, the network on c_in x and
    0.25 log(sigma), draw i from `jax.random.fold_in(key, i)`. The re-noise scale is
    factored, sqrt((next_t - t_min)(next_t + t_min)): compiled by XLA, `next_t**2 - t_min**2`
    becomes a fused multiply-add that leaves the rounding residue of t_min**2 at next_t =
    t_min (noise of scale 1.9e-11 after the last evaluation at t_min = 0.002, NaN where the
    residue is negative), which the suite fails (STEP-4, STEP-5)."""
    ts = jnp.asarray(ts)

    def sigma_at(i):
        return jnp.where(i == steps - 1, t_min, karras(i / (steps - 1), t_min, t_max, rho))

    def body(i, x):
        t = sigma_at(ts[i])
        next_t = jnp.clip(sigma_at(ts[i + 1]), t_min, t_max)
        c_skip, c_out, c_in = boundary(t, t_min, sigma_data)
        x0 = c_skip * x + c_out * apply_fn(c_in * x, 0.25 * jnp.log(t))
        x0 = jnp.clip(x0, -1.0, 1.0) if clip else x0
        z = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
        return (x0 + s_noise * z * jnp.sqrt((next_t - t_min) * (next_t + t_min))).astype(x.dtype)

    return lax.fori_loop(0, ts.shape[0] - 1, body, x)


def split_sampler(denoiser, x, ts, key, t_min=0.002, t_max=80.0, rho=7.0, steps=40, s_noise=1.0,
                  draw_from_first=False):  # fmt: skip
    """OpenAI's stochastic iterative sampling in JAX: a denoiser D(x, sigma), the key split
    before each draw (`draw_from_first`: drawn from the first key of the split, the second
    carried, as xax's sampler does). Its grid point is (t_min ** (1 / rho)) ** rho at the end,
    0.002000000000000003: noise of scale 1.1e-10 after the last evaluation."""
    for i in range(len(ts) - 1):
        t = karras(ts[i] / (steps - 1), t_min, t_max, rho)
        x0 = denoiser(x, t * jnp.ones(x.shape[0], x.dtype))
        next_t = min(max(karras(ts[i + 1] / (steps - 1), t_min, t_max, rho), t_min), t_max)
        key, sub = jax.random.split(key)
        if draw_from_first:
            key, sub = sub, key
        z = jax.random.normal(sub, x.shape, x.dtype)
        x = x0 + s_noise * z * (next_t**2 - t_min**2) ** 0.5
    return x


@partial(jax.pmap, axis_name="batch", in_axes=(None, 0, None, None, None, None),
         static_broadcasted_argnums=(0, 5))  # fmt: skip
def _pmapped_loop(apply_fn, x, ts, key, config, clip):
    """The whole loop on one device's shard x of the batch (see `pmap_sampler`)."""
    t_min, t_max, rho, steps, sigma_data, s_noise, faulty = config
    devices, shard = lax.psum(1, "batch"), lax.axis_index("batch")  # a Python int, a tracer

    def sigma_at(i):
        return jnp.where(i == steps - 1, t_min, karras(i / (steps - 1), t_min, t_max, rho))

    def step(carry, pair):
        x, key = carry
        t, next_t = sigma_at(pair[0]), jnp.clip(sigma_at(pair[1]), t_min, t_max)
        c_skip, c_out, c_in = boundary(t, t_min, sigma_data)
        # the fault on device `faulty` alone: c_out without the boundary shift (EDM's)
        c_out = jnp.where(shard == faulty, t * sigma_data / (t**2 + sigma_data**2) ** 0.5, c_out)
        time = jnp.full(x.shape[:1], 250 * jnp.log(t + 1e-44), x.dtype)
        x0 = c_skip * x + c_out * apply_fn(c_in * x, time)
        x0 = jnp.clip(x0, -1.0, 1.0) if clip else x0
        # the whole batch's draw from the shared key, this device's rows of it: the sample
        # does not depend on how many devices share the batch
        key, sub = jax.random.split(key)
        z = jax.random.normal(sub, (devices * x.shape[0], *x.shape[1:]), x.dtype)
        z = z.reshape(devices, *x.shape)[shard]
        x_next = x0 + s_noise * z * jnp.sqrt((next_t - t_min) * (next_t + t_min))
        return (x_next.astype(x.dtype), key), None

    (x, _), _ = lax.scan(step, (x, key), jnp.stack([ts[:-1], ts[1:]], axis=1))
    return x


def pmap_sampler(apply_fn, x, ts, key, t_min=0.002, t_max=80.0, rho=7.0, steps=40,
                 sigma_data=0.5, clip_denoised=True, s_noise=1.0, faulty=-1):  # fmt: skip
    """OpenAI's multistep sampling data-parallel with `jax.pmap`: the batch split over the
    local devices (as many as divide it), the whole loop (`lax.scan`) run on each shard, the
    network F(c_in x, 250 log(sigma + 1e-44)) called inside it; ascending indices `ts` into a
    `steps`-point grid, its end point t_min exactly; the key split before each draw
    (`key, sub = split(key)`), each device taking its rows of the whole batch's draw. The
    re-noise scale is factored, sqrt((next_t - t_min)(next_t + t_min)): exactly 0 after the
    last evaluation however XLA fuses it (see `fori_sampler`). `faulty`: a device whose rows
    are denoised with c_out without the boundary shift (a fault of one shard)."""
    devices = math.gcd(x.shape[0], jax.local_device_count())
    shards = x.reshape(devices, x.shape[0] // devices, *x.shape[1:])
    config = (t_min, t_max, rho, steps, sigma_data, s_noise, faulty)
    ts = jnp.asarray(ts)
    return _pmapped_loop(apply_fn, shards, ts, key, config, bool(clip_denoised)).reshape(x.shape)


def key_steps_sampler(denoiser, like, n, key, sigma_min=0.002, sigma_max=80.0, rho=7.0,
                      s_noise=1.0, fault=None):  # fmt: skip
    """A step count on its own grid, as xax's consistency sampler walks it: the first n points
    of the (n + 1)-point Karras grid (its last, sigma_min, not evaluated), x_T = sigma_max z
    from the first key of a split (`init_key, key = split(key)`), then before each re-noise
    `noise_key, key = split(key)`; none after the last evaluation. A denoiser D(x, sigma).
    `fault`: "unscaled" (x_T = z) or "reused" (the same noise key every step: key never
    carried)."""
    sigmas = karras(jnp.linspace(0.0, 1.0, n + 1, dtype=like.dtype), sigma_min, sigma_max, rho)
    init_key, key = jax.random.split(key)
    scale = 1.0 if fault == "unscaled" else sigma_max
    x = scale * jax.random.normal(init_key, like.shape, like.dtype)
    for i in range(n):
        x = denoiser(x, sigmas[i])
        if i < n - 1:
            noise_key, carried = jax.random.split(key)
            key = key if fault == "reused" else carried
            z = jax.random.normal(noise_key, x.shape, x.dtype)
            x = x + s_noise * jnp.sqrt(sigmas[i + 1] ** 2 - sigma_min**2) * z
    return x


def pmap_hook_sampler(model, x, sigmas, noise, sigma_data=0.5, clip_denoised=True):
    """`eager_sampler` data-parallel: the batch split over the local devices with `jax.pmap`,
    each device's loop drawing its noise from the hook on its own rows."""
    devices = math.gcd(x.shape[0], jax.local_device_count())

    def loop(rows):
        return eager_sampler(model, rows, sigmas, noise, sigma_data, clip_denoised)

    shards = x.reshape(devices, x.shape[0] // devices, *x.shape[1:])
    return jax.pmap(loop, axis_name="batch")(shards).reshape(x.shape)
