"""Known deviations of diffusers' `CMStochasticIterativeScheduler` (diffusers 0.42.1) from
conformance/SPEC.md, each with the figure this suite measured and the reason.

Measured with `pytest conformance --impl=diffusers --conformance-report r.json` (CPU,
torch 2.13, the default hypothesis profile); the figures are the worst seen, the declared
limits are derived from the cause, not fitted to the measurement. A failure beyond a
declared limit still fails.
"""

from __future__ import annotations

from conformance.protocol.deviations import Deviation

U32 = 2.0**-24  # float32 unit roundoff
#: The ratio of float32's unit roundoff to float64's: an error up to this many times a
#: float64 bound is what float32 arithmetic gives (every bound is linear in u or below).
FLOAT32_ON_FLOAT64 = 2.0**29

FLOAT32_SCHEDULE = (
    "set_timesteps stores sigmas as float32 (`.astype(np.float32)`), so each sigma is the "
    "float64 value rounded once to float32"
)
FLOAT32_SCALARS = (
    "step, scale_model_input and add_noise take sigma from the float32 `sigmas` and compute "
    "c_in, c_skip, c_out and the noise scale in float32, so float64 samples get float32 "
    "accuracy (about 2e-6 absolute on OpenAI's float64 trajectories)"
)
LAST_STEP_NOISE = (
    "after the last evaluation the noise scale is sqrt(sigma_hat^2 - sigma_min^2) with "
    "sigma_hat = float32(sigma_min) and both squares rounded to float32, so it is not 0 but up "
    "to 2 sqrt(u32) sigma_min = 4.9e-4 sigma_min (6.7e-7 for sigma_min = 0.002), and a draw "
    "is made and added"
)
NAN_NOISE_SCALE = (
    "whenever the next sigma is sigma_min (after the last evaluation, or after an evaluation "
    "at index N - 1 of custom timesteps), the noise scale is the square root of "
    "float32(sigma)^2 - sigma_min^2 computed in float32, which for about a quarter of "
    "sigma_min values (0.0123, 0.7, 1.3 for instance) is negative: the step's output is all "
    "NaN, with s_noise = 0 and with one timestep too (0 times NaN)"
)

DEVIATIONS: tuple[Deviation, ...] = (
    # -- the float32 schedule -----------------------------------------------------------------
    *(
        Deviation(
            clause,
            FLOAT32_SCHEDULE,
            "relative error 4.75e-8 (sigma_min stored as 0.0020000000949949026); "
            "limit 2^-24 = 5.96e-8, one rounding to float32",
            max_rel_error=U32,
        )
        for clause in ("SCHED-1", "SCHED-2", "GOLD-1")
    ),
    # -- float32 arithmetic on float64 samples ---------------------------------------------------
    *(
        Deviation(
            clause,
            FLOAT32_SCALARS,
            f"on float64 samples, worst error {measured} times the float64 bound; limit 2^29 = "
            "5.4e8, float32's unit roundoff over float64's",
            max_ratio=FLOAT32_ON_FLOAT64,
            dtypes=("float64",),
        )
        # STEP-2, STEP-5, INDEX-4, NOISE-2, ADD-1 and ADD-2 compare the implementation with
        # itself or take their truth at its own sigmas: its float32 arithmetic is not theirs.
        for clause, measured in (
            ("CIN-1", "1.2e7"),
            ("STEP-1", "6.3e5"),
            ("STEP-3", "6.3e5"),
            ("GOLD-3", "9.5e5 (the last step's 6.7e-7 noise included)"),
            ("STEP-4", "1.1e3 (the fitted last-step noise scale 6.7e-7 over 6.1e-10)"),
        )
    ),
    # -- c_skip at sigma_min ---------------------------------------------------------------------
    Deviation(
        "SCAL-2",
        "c_skip = sigma_data**2 / (...) divides a Python float by a tensor, which torch computes "
        "as the float times the tensor's reciprocal: two roundings, so c_skip(sigma_min) is "
        "1 - 2^-53 instead of 1 for some sigma_data (0.5588 for one), in float32 1 - 2^-24",
        "c_skip(sigma_min) = 0.9999999999999999 for sigma_data = 0.5588056961640764; "
        "limit 2^-23 = 1.2e-7, two float32 roundings below 1",
        max_abs_error=2.0**-23,
    ),
    # -- the noise after the last evaluation ----------------------------------------------------
    Deviation(
        "STEP-4",
        LAST_STEP_NOISE,
        "fitted noise scale 6.68e-7 = 3.34e-4 sigma_min; limit 2^-11 = 4.9e-4 sigma_min",
        max_rel_error=2.0**-11,
    ),
    # GOLD-3 sees the same noise on OpenAI's float32 trajectories and defers it to STEP-4 (a
    # departure of the step is the step clauses' finding): no declaration of its own.
    *(
        Deviation(clause, NAN_NOISE_SCALE, "NaN prev_sample", match=r"non-finite")
        for clause in ("STEP-1", "STEP-2", "STEP-3", "STEP-4", "STEP-5", "INDEX-4", "NOISE-2")
    ),
    # -- bad input ------------------------------------------------------------------------------
    Deviation(
        "CFG-2",
        "the constructor validates nothing: N = 0 or 1, sigma_min <= 0 or >= sigma_max, NaN, "
        "negative s_noise or rho, a non-bool clip_denoised are accepted; rho = 0 raises "
        "ZeroDivisionError, a float or str N a TypeError that does not name the argument",
        "16 of 17 invalid configurations accepted or refused without naming the argument",
        match=r"was accepted silently|does not name the argument|raised ZeroDivisionError",
    ),
    Deviation(
        "SCHED-3",
        "set_timesteps(0) raises ZeroDivisionError, timesteps=[] an IndexError; 2.5 steps, "
        "negative and fractional indices are accepted (22.7 becomes 22)",
        "5 of 11 invalid calls",
        match=r"was accepted silently|raised (ZeroDivisionError|IndexError)",
    ),
    Deviation(
        "INDEX-3",
        "index_for_timestep indexes an empty nonzero() result",
        "IndexError: index 0 is out of bounds for dimension 0 with size 0",
        match=r"raised IndexError",
    ),
    Deviation(
        "INDEX-5",
        "set_begin_index stores any value: past the end, negative or fractional, the failure "
        "comes at the first step (an IndexError, or -1 steps from the last sigma)",
        "4 of 4 invalid begin indices (n, 99, -1, 1.5) accepted",
        match=r"begin_index=.*was accepted silently",
    ),
    Deviation(
        "STEP-11",
        "step checks no shapes: a model_output that broadcasts to the sample's shape (one batch "
        "element, no batch axis, one channel) is broadcast by the arithmetic; a scalar one "
        "raises IndexError when the noise is drawn in its shape",
        "3 of 4 broadcastable model_output shapes accepted; shape () raises IndexError: tuple "
        "index out of range",
        match=r"model_output=.*(was accepted silently|raised IndexError)",
    ),
    Deviation(
        "STEP-7",
        "step indexes sigmas past their end",
        "IndexError: index 3 is out of bounds for dimension 0 with size 3",
        match=r"raised IndexError",
    ),
)
