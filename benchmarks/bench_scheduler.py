"""The torch scheduler against diffusers' `CMStochasticIterativeScheduler`, and against the
memory-bandwidth limit.

    python -m benchmarks.bench_scheduler            # full run: 4 shapes x 3 dtypes
    python -m benchmarks.bench_scheduler --quick    # the two target shapes in float32

For every shape and dtype, in one process, after warm-up, in interleaved rounds (each round
times every variant once, in a rotated order, so that load from other processes falls on all
of them alike), the median time per call of:

- `step`: the loop's first step (sigma_max to the next sigma) with z drawn from the global
  RNG, ours and diffusers'; ours with injected noise (`noise=z`: the non-random part of the
  step), eager and under `torch.compile`; `torch.randn` of the sample's shape, the draw of
  z that both classes make, bit for bit the same;
- `set_timesteps(4)`, ours and diffusers'; ours both as a pipeline calls it, again and again
  with the same arguments (ours reuses the schedule it built), and `uncached`, building it
  anew each time (as diffusers' does);
- `loop`: a 4-step sampling loop as `ConsistencyModelPipeline` runs it (`set_timesteps`,
  then per step `scale_model_input`, a trivial model F(u, t) = u and `step`), ours eager
  and with a compiled `step`, and diffusers'; and both without the draws of z (`noise=z`:
  ours takes `noise=z`, diffusers' `randn_tensor` is replaced by one returning the same z),
  which measures what the two schedulers cost besides the identical `torch.randn` calls;
- `copy`: `dst.copy_(src)` of two samples' worth of elements: the bytes a fused step moves
  (it reads x, F and z and writes the result, 4 sample-sized tensors) with the same working
  set, so the same caches. Its time is that of a single fused pass over memory at the
  bandwidth a plain copy reaches; `of limit` is that time divided by a step's.

On CUDA (when present): the same, plus host synchronisations per step (counted with
`torch.cuda.set_sync_debug_mode("warn")`) and ours' loop captured in a CUDA graph.
The targets (CPU, float32, 2 threads) are checked at the end; a missed one is printed with
the factor by which it is missed.

Unless OMP_WAIT_POLICY is set, the script sets it to PASSIVE before torch starts OpenMP: with
the default spin-waiting, two threads on a machine shared with other processes stall a
scheduler time slice (about 8 ms) per parallel kernel whenever a core is taken.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads OpenMP

import argparse  # noqa: E402
import contextlib  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import torch  # noqa: E402
from torch.utils.benchmark import Timer  # noqa: E402

from reference.torch_scheduler.scheduler import CMStochasticIterativeScheduler as Ours  # noqa: E402

STEPS = 4  # length of the sampling loop
FULL_SHAPES = [(1, 3, 64, 64), (4, 3, 128, 128), (8, 3, 256, 256), (16, 3, 256, 256)]
TARGET_SHAPES = [(1, 3, 64, 64), (8, 3, 256, 256)]
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# The targets (CPU, float32, 2 threads).
LOOP_RATIO_TARGET = 0.5  # our loop's time at most this fraction of diffusers'
FUSED_PASS_TARGET = 2.0  # our non-random step at most this many fused passes over memory
TARGET_THREADS = 2


def load_diffusers() -> type | None:
    """diffusers' class, or None when diffusers is not installed."""
    try:
        from diffusers import CMStochasticIterativeScheduler as Diffusers
    except ImportError:
        return None
    return Diffusers


# -- the workloads ---------------------------------------------------------------------------


def model(u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The trivial model F(u, t) = u: the loop's time is the scheduler's."""
    return u


def sampling_loop(
    scheduler, x_T: torch.Tensor, step: Callable | None = None, **kwargs
) -> torch.Tensor:
    """Algorithm 1 as `ConsistencyModelPipeline` runs it, z from the global RNG (or
    `noise=z` in `kwargs`)."""
    step = scheduler.step if step is None else step
    scheduler.set_timesteps(num_inference_steps=STEPS, device=x_T.device)
    x = x_T
    for t in scheduler.timesteps:
        F = model(scheduler.scale_model_input(x, t), t)
        x = step(F, t, x, **kwargs).prev_sample
    return x


@contextlib.contextmanager
def diffusers_draws(z: torch.Tensor) -> Iterator[None]:
    """diffusers' `step` with its draw of z replaced by the given z (its `randn_tensor`,
    looked up in its module at each step), for a loop without the draws."""
    from diffusers.schedulers import scheduling_consistency_models as module

    drawn = module.randn_tensor
    module.randn_tensor = lambda *args, **kwargs: z
    try:
        yield
    finally:
        module.randn_tensor = drawn


def first_step(scheduler, step: Callable, F, x, **kwargs) -> Callable[[], torch.Tensor]:
    """The loop's first step, repeatable: both classes keep the step index in `_step_index`
    (private in both), which is put back to 0 before each call."""
    t = scheduler.timesteps[0]

    def run() -> torch.Tensor:
        scheduler._step_index = 0
        return step(F, t, x, **kwargs).prev_sample

    return run


def ready(cls: type, x: torch.Tensor):
    """A scheduler with a 4-step schedule on x's device whose first scaling was done (so
    that diffusers' `step` does not log its warning, and ours knows its step index)."""
    scheduler = cls()
    scheduler.set_timesteps(num_inference_steps=STEPS, device=x.device)
    scheduler.scale_model_input(x, scheduler.timesteps[0])
    return scheduler


def compiled_step(scheduler, F, x, **kwargs) -> tuple[Callable, float]:
    """`torch.compile(scheduler.step, fullgraph=True)` and the seconds its first call took."""
    compiled = torch.compile(scheduler.step, fullgraph=True)
    start = time.perf_counter()
    first_step(scheduler, compiled, F, x, **kwargs)()
    return compiled, time.perf_counter() - start


# -- timing ----------------------------------------------------------------------------------


@dataclass
class Timing:
    """Per-call times of one variant, one per round."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Half the interquartile range over the rounds, relative to the median."""
        if len(self.samples) < 3:
            return math.nan
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / 2 / self.median


def interleaved(
    fns: dict[str, Callable[[], object]], rounds: int, block_time: float, threads: int
) -> dict[str, Timing]:
    """Per-call times of `fns`, measured in interleaved rounds after warm-up.

    `Timer.blocked_autorange` warms each function up and estimates its time, which sets how
    many calls make one block of about `block_time` seconds; then every round times one
    block of each function, in an order rotated from round to round.
    """
    timers = {
        name: Timer("fn()", globals={"fn": fn}, num_threads=threads) for name, fn in fns.items()
    }
    number = {}
    for name, timer in timers.items():
        estimate = timer.blocked_autorange(min_run_time=block_time).median
        number[name] = max(1, int(block_time / estimate))
    timings = {name: Timing() for name in timers}
    names = list(timers)
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            timings[name].samples.append(timers[name].timeit(number[name]).mean)
    return timings


# -- CUDA extras -----------------------------------------------------------------------------


def host_syncs_per_step(scheduler, x_T: torch.Tensor) -> float:
    """Host-device synchronisations per step of the loop after `set_timesteps`: the
    warnings that `torch.cuda.set_sync_debug_mode("warn")` raises, over the 4 steps."""
    scheduler.set_timesteps(num_inference_steps=STEPS, device=x_T.device)
    torch.cuda.synchronize()
    x = x_T
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for t in scheduler.timesteps:
                F = model(scheduler.scale_model_input(x, t), t)
                x = scheduler.step(F, t, x).prev_sample
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    return len(syncs) / STEPS


def cuda_graph_loop(scheduler, x_T: torch.Tensor) -> Callable[[], None]:
    """Ours' loop (per step scale_model_input, model, step; z from the device's global RNG)
    captured in a CUDA graph; returns its replay. `set_timesteps` stays outside the graph:
    it copies the host-built schedule to the device."""
    static_x = x_T.clone()

    def body() -> torch.Tensor:
        x = static_x
        for t in scheduler.timesteps:
            F = model(scheduler.scale_model_input(x, t), t)
            x = scheduler.step(F, t, x).prev_sample
        return x

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graphs asks
        for _ in range(2):
            scheduler.set_timesteps(num_inference_steps=STEPS, device=x_T.device)
            body()
    torch.cuda.current_stream().wait_stream(side)
    scheduler.set_timesteps(num_inference_steps=STEPS, device=x_T.device)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    return graph.replay


# -- one case: a shape and a dtype -----------------------------------------------------------


@dataclass
class Case:
    shape: tuple[int, ...]
    dtype_name: str
    times: dict[str, Timing]
    extra: dict[str, float]

    @property
    def nbytes(self) -> int:
        """Bytes of one sample-sized tensor."""
        return math.prod(self.shape) * DTYPES[self.dtype_name].itemsize

    @property
    def fused_pass(self) -> float:
        """Seconds of one pass reading x, F, z and writing the result, at the bandwidth of
        the plain copy (which moves the same bytes)."""
        return self.times["copy"].median

    def median(self, name: str) -> float:
        return self.times[name].median


def run_case(shape, dtype_name: str, device: torch.device, args, Diffusers) -> Case:
    dtype = DTYPES[dtype_name]
    g = torch.Generator(device=device).manual_seed(0)

    def draw(shape: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
        return (scale * torch.randn(shape, generator=g, device=device)).to(dtype)

    x_T, F, z = draw(shape, 80.0), draw(shape), draw(shape)
    src, dst = draw((2, *shape)), draw((2, *shape))
    ours = [ready(Ours, x_T) for _ in range(6)]

    def set_timesteps_uncached() -> None:
        ours[3]._kept.clear()  # private: what set_timesteps keeps for reuse
        ours[3].set_timesteps(STEPS, device=device)

    fns: dict[str, Callable[[], object]] = {
        "copy": lambda: dst.copy_(src),
        "randn": lambda: torch.randn(shape, device=device, dtype=dtype),
        "step ours": first_step(ours[0], ours[0].step, F, x_T),
        "step ours noise=z": first_step(ours[1], ours[1].step, F, x_T, noise=z),
        "set_timesteps ours": lambda: ours[2].set_timesteps(STEPS, device=device),
        "set_timesteps ours uncached": set_timesteps_uncached,
        "loop ours": lambda: sampling_loop(ours[4], x_T),
        "loop ours noise=z": lambda: sampling_loop(ours[5], x_T, noise=z),
    }
    if Diffusers is not None:
        theirs = [ready(Diffusers, x_T) for _ in range(4)]

        def loop_diffusers_fixed_z() -> torch.Tensor:
            with diffusers_draws(z):
                return sampling_loop(theirs[3], x_T)

        fns["step diffusers"] = first_step(theirs[0], theirs[0].step, F, x_T)
        fns["set_timesteps diffusers"] = lambda: theirs[1].set_timesteps(STEPS, device=device)
        fns["loop diffusers"] = lambda: sampling_loop(theirs[2], x_T)
        fns["loop diffusers noise=z"] = loop_diffusers_fixed_z
    extra: dict[str, float] = {}
    if args.compile:
        torch._dynamo.reset()  # a fresh cache per case, so no recompile limit across cases
        step_c, loop_c = ready(Ours, x_T), ready(Ours, x_T)
        step, extra["compile step s"] = compiled_step(step_c, F, x_T, noise=z)
        fns["step ours compiled noise=z"] = first_step(step_c, step, F, x_T, noise=z)
        loop_step, extra["compile loop s"] = compiled_step(loop_c, F, x_T)
        fns["loop ours compiled"] = lambda: sampling_loop(loop_c, x_T, loop_step)
    if device.type == "cuda":
        fns["loop ours CUDA graph"] = cuda_graph_loop(ready(Ours, x_T), x_T)
        extra["host syncs/step ours"] = host_syncs_per_step(ready(Ours, x_T), x_T)
        if Diffusers is not None:
            extra["host syncs/step diffusers"] = host_syncs_per_step(ready(Diffusers, x_T), x_T)
    times = interleaved(fns, args.rounds, args.block_time, args.threads)
    return Case(tuple(shape), dtype_name, times, extra)


# -- report ----------------------------------------------------------------------------------

ROWS = [  # (variant, variant it is divided by in the ratio column, label of that one)
    ("step ours", "step diffusers", "diffusers"),
    ("step diffusers", None, ""),
    ("step ours noise=z", None, ""),
    ("step ours compiled noise=z", "step ours noise=z", "eager"),
    ("randn", None, ""),
    ("set_timesteps ours", "set_timesteps diffusers", "diffusers"),
    ("set_timesteps ours uncached", "set_timesteps diffusers", "diffusers"),
    ("set_timesteps diffusers", None, ""),
    ("loop ours", "loop diffusers", "diffusers"),
    ("loop ours compiled", "loop diffusers", "diffusers"),
    ("loop ours CUDA graph", "loop ours", "ours eager"),
    ("loop diffusers", None, ""),
    ("loop ours noise=z", "loop diffusers noise=z", "diffusers"),
    ("loop diffusers noise=z", None, ""),
]


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:7.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:7.2f} ms"
    return f"{seconds:7.2f} s "


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def fmt_spread(timing: Timing) -> str:
    return "" if math.isnan(timing.spread) else f"{100 * timing.spread:.0f}%"


def shape_name(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def print_case(case: Case) -> None:
    bandwidth = 4 * case.nbytes / case.fused_pass
    print(
        f"\n{shape_name(case.shape)} {case.dtype_name}: {fmt_bytes(case.nbytes)} per tensor; "
        f"a step moves {fmt_bytes(4 * case.nbytes)}; copy of as many bytes "
        f"{fmt_time(case.fused_pass).strip()} = {bandwidth / 1e9:.1f} GB/s"
    )
    print(f"  {'variant':27s} {'median':>10s} {'spread':>6s} {'ratio':>19s} {'of limit':>8s}")
    for name, against, against_label in ROWS:
        if name not in case.times:
            continue
        ratio = ""
        if against in case.times:
            ratio = f"{case.median(name) / case.median(against):.2f} x {against_label}"
        limit = ""
        if name.startswith("step"):
            limit = f"{100 * case.fused_pass / case.median(name):.1f}%"
        spread = fmt_spread(case.times[name])
        print(f"  {name:27s} {fmt_time(case.median(name))} {spread:>6s} {ratio:>19s} {limit:>8s}")
    for key, value in case.extra.items():
        print(f"  {key:27s} {value:10.2f}")


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else f"MISSED by {value / target:.2f}x"


def loop_target(case: Case) -> list[str]:
    """Target 1, with the share of the z draws that both loops make alike (the same
    `torch.randn` call, bit for bit), the ratio that leaves as the best possible, and the
    ratio of the two loops measured without the draws."""
    ours, theirs = case.median("loop ours"), case.median("loop diffusers")
    draws = STEPS * case.median("randn")
    lines = [
        f"loop ours / diffusers = {ours / theirs:.2f} (target <= {LOOP_RATIO_TARGET}): "
        f"{verdict(ours / theirs, LOOP_RATIO_TARGET)}",
        f"  the {STEPS} draws of z, {fmt_time(draws).strip()} in both loops, are "
        f"{100 * draws / ours:.0f}% of ours' time and {100 * draws / theirs:.0f}% of "
        f"diffusers'; a scheduler costing nothing but the draws: {draws / theirs:.2f}",
    ]
    if "loop diffusers noise=z" in case.times:
        ours_z, theirs_z = case.median("loop ours noise=z"), case.median("loop diffusers noise=z")
        lines.append(
            f"  without the draws (both loops given z): ours {fmt_time(ours_z).strip()}, "
            f"diffusers {fmt_time(theirs_z).strip()}: {ours_z / theirs_z:.2f} "
            f"({verdict(ours_z / theirs_z, LOOP_RATIO_TARGET)})"
        )
    if "loop ours compiled" in case.times:
        compiled = case.median("loop ours compiled") / theirs
        lines.append(
            f"  with a compiled step: {compiled:.2f} ({verdict(compiled, LOOP_RATIO_TARGET)})"
        )
    return lines


def fused_target(case: Case, name: str, label: str) -> list[str]:
    """Target 2; a miss in eager gets the figures that explain it."""
    passes = case.median(name) / case.fused_pass
    lines = [
        f"non-random step, {label} = {passes:.2f} fused passes (target <= "
        f"{FUSED_PASS_TARGET}): {verdict(passes, FUSED_PASS_TARGET)}"
    ]
    if passes > FUSED_PASS_TARGET and label == "eager":
        lines.append(
            f"  ({fmt_time(case.median(name)).strip()}: 4 kernel calls, which read and write 10 "
            f"sample-sized tensors where a fused pass moves 4, plus the argument checks; "
            f"one kernel call, the copy, takes {fmt_time(case.fused_pass).strip()})"
        )
    return lines


def check_targets(cases: list[Case], device: torch.device, threads: int) -> list[str]:
    """Lines per target shape: each target met, or missed and by how much."""
    if device.type != "cpu" or threads != TARGET_THREADS:
        return [f"the targets are for CPU, float32, {TARGET_THREADS} threads: not checked here"]
    by_key = {(c.shape, c.dtype_name): c for c in cases}
    lines = []
    for shape in TARGET_SHAPES:
        case = by_key.get((shape, "float32"))
        if case is None:
            lines.append(f"{shape_name(shape)} float32: not measured, not checked")
            continue
        lines.append(f"{shape_name(shape)} float32:")
        if "loop diffusers" in case.times:
            lines += ["  " + line for line in loop_target(case)]
        lines += ["  " + line for line in fused_target(case, "step ours noise=z", "eager")]
        if "step ours compiled noise=z" in case.times:
            compiled = fused_target(case, "step ours compiled noise=z", "compiled")
            lines += ["  " + line for line in compiled]
    return lines


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def print_header(args, device: torch.device, Diffusers) -> None:
    version = "not installed (its rows are left out)"
    if Diffusers is not None:
        import diffusers

        version = diffusers.__version__
    print(f"python {platform.python_version()}, torch {torch.__version__}, diffusers {version}")
    print(
        f"{device} ({device_name(device)}), nproc {os.cpu_count()}, threads {args.threads}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    print(
        f"{args.rounds} rounds of {args.block_time * 1e3:.0f} ms blocks; loop of {STEPS} steps, "
        f"F(u, t) = u; torch.compile {'on (fallback_random)' if args.compile else 'off'}"
    )
    print(
        "ratio: median / median of the variant named; spread: half the IQR over the rounds; "
        "of limit: a fused pass over x, F, z and the result at the copy's bandwidth / the step"
    )


# -- command line ----------------------------------------------------------------------------


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or any(n < 1 for n in shape):
        raise argparse.ArgumentTypeError(
            f"a shape is positive sizes joined by x (1x3x64x64), got {text!r}"
        )
    return shape


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="the two target shapes in float32, 3 rounds")
    add("--shapes", nargs="+", type=parse_shape, help="e.g. 1x3x64x64 8x3x256x256")
    add("--dtypes", nargs="+", choices=list(DTYPES), help="default: all three")
    add("--rounds", type=int, help="interleaved rounds (default 11; quick 3)")
    add("--block-time", type=float, help="seconds per timed block (default 0.05; quick 0.02)")
    add("--threads", type=int, default=TARGET_THREADS, help="torch threads (default 2)")
    add("--no-compile", dest="compile", action="store_false", help="leave out torch.compile")
    add("--device", default="auto", help="cpu, cuda, or auto: cpu, then cuda when present")
    args = parser.parse_args(argv)
    if args.shapes is None:
        args.shapes = TARGET_SHAPES if args.quick else FULL_SHAPES
    if args.dtypes is None:
        args.dtypes = ["float32"] if args.quick else list(DTYPES)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 11
    if args.block_time is None:
        args.block_time = 0.02 if args.quick else 0.05
    if args.rounds < 1 or args.block_time <= 0 or args.threads < 1:
        parser.error("--rounds, --block-time and --threads must be positive")
    return args


def devices(choice: str) -> Iterator[torch.device]:
    """The devices to run on; CUDA is skipped with a note where torch sees none."""
    if choice == "auto":
        yield torch.device("cpu")
        if torch.cuda.is_available():
            yield torch.device("cuda", torch.cuda.current_device())
        else:
            print("\nno CUDA device: the GPU table (host syncs, CUDA graph) is skipped")
        return
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to run on cuda")
        return
    yield device


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.compile:
        from torch._inductor import config as inductor_config

        # Inside a compiled step, draw z with aten's randn (as eager and diffusers do)
        # rather than with inductor's own generator, several times slower on CPU.
        inductor_config.fallback_random = True
    Diffusers = load_diffusers()
    start = time.perf_counter()
    for device in devices(args.device):
        print_header(args, device, Diffusers)
        cases = []
        for shape in args.shapes:
            for dtype_name in args.dtypes:
                cases.append(run_case(shape, dtype_name, device, args, Diffusers))
                print_case(cases[-1])
                sys.stdout.flush()
        print(f"\nTargets on {device}:")
        for line in check_targets(cases, device, args.threads):
            print(f"  {line}")
    print(f"\nwall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
