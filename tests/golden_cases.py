"""The golden sampler cases and how the diffusers-style scheduler replays them.

Replay conventions (golden/README.md): a sampler case holds, per evaluation k, the sample
x_t[k], the network output model_out[k] and the draw noise[k] added after it. OpenAI's `ts`
are ascending indices into a `steps`-point grid; the diffusers-style scheduler runs them as
`num_train_timesteps=steps, timesteps=reversed(ts[:-1])`, which it can only when ts ends at
steps - 1 (its schedule always ends at sigma_min). `replay_bound` is the elementwise bound
on a replayed step (its derivation in its docstring).
"""

from __future__ import annotations

import math

import numpy as np
from bounds import sensitivity

from conformance.truth import golden, oracle
from reference.numpy_reference import formulas
from reference.numpy_reference.scheduler import CMStochasticIterativeScheduler

u = 2.0**-53
u32 = 2.0**-24

SAMPLER_CASES = golden.case_names("sampler")
FLOAT64_CASES = [n for n in SAMPLER_CASES if golden.load_case(n).config["dtype"] == "float64"]


def ends_at_sigma_min(case: golden.GoldenCase) -> bool:
    ts = case.config["ts"]
    return ts is None or ts[-1] == case.config["steps"] - 1


SCHEDULER_CASES = [n for n in SAMPLER_CASES if ends_at_sigma_min(golden.load_case(n))]
OPEN_END_CASES = [n for n in SAMPLER_CASES if not ends_at_sigma_min(golden.load_case(n))]


def scheduler_for(case: golden.GoldenCase) -> CMStochasticIterativeScheduler:
    """The diffusers-style scheduler that runs `case` (golden/README.md, "Kind of case")."""
    config = case.config
    scheduler = CMStochasticIterativeScheduler(
        num_train_timesteps=config["steps"],
        sigma_min=config["sigma_min"],
        sigma_max=config["sigma_max"],
        sigma_data=config["sigma_data"],
        rho=config["rho"],
        clip_denoised=config["clip_denoised"],
    )
    if config["sampler"] == "onestep":
        scheduler.set_timesteps(num_inference_steps=1)
    else:
        scheduler.set_timesteps(timesteps=list(reversed(config["ts"][:-1])))
    return scheduler


def openai_next_time_point(case: golden.GoldenCase, k: int) -> float | None:
    """OpenAI's float64 time point after evaluation k, next_t = t(ts[k+1]) (None for one-step
    sampling, which adds no noise). `schedule_default` records the same float64 computation
    for every grid the sampler cases use; after the last evaluation it is OpenAI's end point,
    0.002000000000000003 rather than t_min for steps=40, whence its last noise of scale 1.1e-10."""
    config = case.config
    if config["sampler"] == "onestep":
        return None
    schedule = golden.load_case("schedule_default")
    return float(schedule[f"multistep_t_n{config['steps']}"][config["ts"][k + 1]])


def openai_noise_scale(next_t: float, t_min: float) -> float:
    """`np.sqrt(next_t**2 - t_min**2)`, OpenAI's float64 arithmetic (stochastic_iterative_sampler).
    At its end point 0.002000000000000003 the squares cancel: 1.07e-10, not the exact 1.10e-10."""
    return math.sqrt(next_t**2 - t_min**2)


def replay_bound(
    case: golden.GoldenCase,
    k: int,
    sigma: float,
    tau: float,
    x: np.ndarray,
    F: np.ndarray,
    z: np.ndarray | None,
    result: np.ndarray,
) -> np.ndarray:
    """Elementwise bound on |ours - OpenAI| for step k (ours at sigma, re-noised to tau) fed
    OpenAI's x, F and z.

    With A = |c_skip x|, B = |c_out F|, C = |s_noise z scale| and delta the relative
    difference between our sigma and the one OpenAI evaluated at:
      float64: delta (kappa_skip A + kappa_out B) + (7 + 7) u (A + B + C)  (7 u each side,
               tests/test_reference_oracle.py);
      float32: delta (kappa_skip A + kappa_out B) + |eps32 - eps| (|F| + |x| / sd)
               + u32 (7 A + 6 B + 2 C + |result|)  (c_skip 5, c_out 4, a product each, their
               sum; the float64 noise scale rounded to float32, its product; the last sum);
    plus |z| |scale_OpenAI(next_t) - scale(tau)|: OpenAI's float64 noise scale at its next time
    point against the exact one at ours (after the last evaluation: 1.07e-10 |z| against our
    exact 0).
    """
    config = case.config
    eps, sd = config["sigma_min"], config["sigma_data"]
    c_skip, c_out = formulas.boundary_scalings(sigma, eps, sd)
    A, B = np.abs(c_skip * x), np.abs(c_out * F)
    kappa_skip, kappa_out, _ = sensitivity(sigma, eps, sd)
    delta = abs(float(case["sigma"][k, 0]) - sigma) / sigma
    bound = delta * (kappa_skip * A + kappa_out * B)
    C = 0.0
    next_t = openai_next_time_point(case, k)
    if z is not None and next_t is not None:
        C = np.abs(z * formulas.noise_scale(tau, eps))
        gap = abs(openai_noise_scale(next_t, eps) - oracle.noise_scale(tau, eps))
        bound = bound + np.abs(z) * float(gap)
    if config["dtype"] == "float64":
        bound = bound + 14 * u * (A + B + C)
    else:
        eps_shift = abs(float(np.float32(eps)) - eps)
        bound = bound + eps_shift * (np.abs(F) + np.abs(x) / sd)
        bound = bound + u32 * (7 * A + 6 * B + 2 * C + np.abs(result))
    return bound * (1 + 1e-6)  # the bound's own float64 evaluation
