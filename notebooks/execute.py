"""Re-execute the walkthrough notebooks top to bottom and save them with their outputs.

    python notebooks/execute.py                      # every notebooks/*.ipynb
    python notebooks/execute.py notebooks/01_algorithm1.ipynb

The kernel runs in the repository root, so `import reference` works from a checkout
without installing it. Outputs are refused (and nothing is written) if they hold an error
or a machine path; execution timings are not recorded and stream outputs are coalesced, so a re-run
on the same machine reproduces the files byte for byte. `tests/test_notebooks.py` runs the same notebooks in memory.

Across machines: the kernel runs its BLAS, OpenMP and torch on one thread (`KERNEL_ENV`), so
that no summation order depends on the machine's core count, and every random draw is
seeded and independent of the linear-algebra kernel (the Gaussian image prior samples with
Cholesky factors, not with eigenvectors whose basis LAPACK chooses). What can still differ
from one CPU to another is the last bit of a float64 sum; the printed figures do not
show it, except residues printed at rounding level (below 1e-12), which
`tests/test_notebooks.py` compares by magnitude only.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
CELL_TIMEOUT_S = 120
#: One thread for every math library the kernel may load (set before they load).
KERNEL_ENV = {
    name: "1"
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
}


def execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel started in the repository root (raises
    `nbclient.exceptions.CellExecutionError` on the first failing cell)."""
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute(env={**os.environ, **KERNEL_ENV})
    return nb


def coalesce_streams(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Merge consecutive stdout (stderr) outputs of a cell into one: how the kernel chunks a
    cell's prints varies from run to run, the text does not."""
    for cell in nb.cells:
        merged: list[nbformat.NotebookNode] = []
        for out in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (
                previous is not None
                and out.output_type == "stream"
                and previous.output_type == "stream"
                and out.name == previous.name
            ):
                previous.text += out.text
            else:
                merged.append(out)
        if cell.cell_type == "code":
            cell.outputs = merged
    return nb


def machine_paths() -> list[str]:
    """Strings that must not appear in a committed output."""
    return [str(ROOT), str(Path.home()), tempfile.gettempdir() + "/", "site-packages"]


def leaked_paths(nb: nbformat.NotebookNode) -> list[str]:
    """The machine paths found in the notebook's outputs."""
    outputs = json.dumps([cell.get("outputs", []) for cell in nb.cells if cell.cell_type == "code"])
    return [p for p in machine_paths() if p in outputs]


def main(paths: list[str]) -> int:
    targets = [Path(p) for p in paths] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in targets:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        coalesce_streams(execute(nb))
        elapsed = time.perf_counter() - start
        leaks = leaked_paths(nb)
        if leaks:
            print(f"{path}: outputs contain machine paths {leaks}; not saved", file=sys.stderr)
            return 1
        nbformat.write(nb, path)
        print(f"{path}: executed in {elapsed:.1f} s, {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
