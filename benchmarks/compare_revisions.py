"""The torch scheduler at an earlier git revision against the working tree's, in one process.

    python -m benchmarks.compare_revisions d925688              # the two target shapes, float32
    python -m benchmarks.compare_revisions HEAD~3 --shapes 1x3x64x64 --rounds 21

On a machine shared with other processes, timings taken minutes apart differ by more than
most changes to the scheduler; this times both versions side by side, interleaved round by
round (as `bench_scheduler` does), so that load falls on both alike. The old scheduler is
imported from the whole `reference/` package as it was at REV (`git archive`), under its own
`sys.modules` entries, so a revision from before the package's split into subpackages
(one module, `torch_scheduler.py`, then) is compared as well.

Per shape it prints the median per call, old and new, and new / old, of: `step` with
`noise=z` (the non-random step), `scale_model_input`, `set_timesteps(4)` (again and again,
as a pipeline calls it), and the 4-step loop of `bench_scheduler` with `noise=z` and with z
drawn from the global RNG.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_scheduler, before torch loads

import argparse  # noqa: E402
import importlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from benchmarks.bench_scheduler import (  # noqa: E402
    STEPS,
    TARGET_SHAPES,
    TARGET_THREADS,
    first_step,
    fmt_spread,
    fmt_time,
    interleaved,
    parse_shape,
    ready,
    sampling_loop,
    shape_name,
)
from reference.torch_scheduler.scheduler import CMStochasticIterativeScheduler as New  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: The torch scheduler's module, now and before `reference/` was split into subpackages.
MODULES = ("reference.torch_scheduler.scheduler", "reference.torch_scheduler")
VARIANTS = ("step noise=z", "scale_model_input", "set_timesteps", "loop noise=z", "loop")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True)


def scheduler_at(revision: str) -> type:
    """`CMStochasticIterativeScheduler` of the torch scheduler as it was at `revision`, with the
    `reference` package of that revision (the working tree's stays loaded for `New`)."""
    module = next(
        (
            m
            for m in MODULES
            if _git("cat-file", "-e", f"{revision}:{m.replace('.', '/')}.py").returncode == 0
        ),
        None,
    )
    if module is None:
        raise SystemExit(f"{revision} has none of {MODULES}")
    ours = {k: v for k, v in sys.modules.items() if k == "reference" or k.startswith("reference.")}
    with tempfile.TemporaryDirectory() as tmp:
        archive = _git("archive", "--format=tar", revision, "reference")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        for name in ours:
            del sys.modules[name]
        sys.path.insert(0, tmp)
        try:
            cls = importlib.import_module(module).CMStochasticIterativeScheduler
        finally:
            sys.path.remove(tmp)
            for name in [k for k in sys.modules if k == "reference" or k.startswith("reference.")]:
                del sys.modules[name]
            sys.modules.update(ours)
    return cls


def workloads(cls: type, x_T: torch.Tensor, F: torch.Tensor, z: torch.Tensor) -> dict:
    """The variants of the module docstring for one scheduler class."""
    stepped, scaled, reset, looped, drawn = (ready(cls, x_T) for _ in range(5))
    t = scaled.timesteps[0]

    def scale() -> torch.Tensor:
        scaled._step_index = 0  # private in both versions, as in bench_scheduler.first_step
        return scaled.scale_model_input(x_T, t)

    fns: dict[str, Callable[[], object]] = {
        "step noise=z": first_step(stepped, stepped.step, F, x_T, noise=z),
        "scale_model_input": scale,
        "set_timesteps": lambda: reset.set_timesteps(STEPS, device=x_T.device),
        "loop noise=z": lambda: sampling_loop(looped, x_T, noise=z),
        "loop": lambda: sampling_loop(drawn, x_T),
    }
    return fns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revision", help="the git revision to compare with, e.g. d925688")
    parser.add_argument("--shapes", nargs="+", type=parse_shape, default=TARGET_SHAPES)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block-time", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=TARGET_THREADS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    Old = scheduler_at(args.revision)
    print(
        f"torch {torch.__version__}, threads {args.threads}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; {args.rounds} rounds of "
        f"{args.block_time * 1e3:.0f} ms blocks; old: {args.revision}, new: the "
        "working tree; float32 on cpu"
    )
    for shape in args.shapes:
        g = torch.Generator().manual_seed(0)
        x_T = 80.0 * torch.randn(shape, generator=g)
        F, z = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        fns = {}
        for label, cls in (("old", Old), ("new", New)):
            for name, fn in workloads(cls, x_T, F, z).items():
                fns[f"{name} {label}"] = fn
        times = interleaved(fns, args.rounds, args.block_time, args.threads)
        print(f"\n{shape_name(shape)} float32")
        print(f"  {'variant':18s} {'old':>10s} {'spread':>6s} {'new':>10s} {'spread':>6s} new/old")
        for name in VARIANTS:
            old, new = times[f"{name} old"], times[f"{name} new"]
            print(
                f"  {name:18s} {fmt_time(old.median)} {fmt_spread(old):>6s} "
                f"{fmt_time(new.median)} {fmt_spread(new):>6s} {new.median / old.median:7.2f}"
            )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
