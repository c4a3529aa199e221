"""The walkthrough notebooks run top to bottom, in memory (nothing is written to the
repository), each in under two minutes on a CPU; the committed copies carry their outputs
(figures included), no errors, no machine paths, and stay small.

Re-execute and save them with `python notebooks/execute.py`.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BUDGET_S = 120  # the bound per notebook on CPU; both take ~25 s on a 2-core machine
MAX_BYTES = 1_000_000  # committed size: outputs are small PNGs at 70 dpi


def _runner():
    """notebooks/execute.py, loaded by path (notebooks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("notebook_runner", ROOT / "notebooks/execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def _png_count(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for out in _outputs(nb))


def test_there_are_two_walkthroughs() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_algorithm1.ipynb", "02_zero_shot_editing.ipynb"]


@pytest.mark.timeout(2 * BUDGET_S + 60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path: Path) -> None:
    """Execute a copy in memory in a fresh kernel; any cell's exception fails the test
    (nbclient raises CellExecutionError naming the cell)."""
    runner = _runner()
    nb = nbformat.read(path, as_version=4)
    committed_pngs = _png_count(nb)
    start = time.perf_counter()
    runner.execute(nb)
    elapsed = time.perf_counter() - start
    assert elapsed < BUDGET_S, f"{path.name} took {elapsed:.0f} s, budget {BUDGET_S} s"
    errors = [out for out in _outputs(nb) if out.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs {errors}"
    assert _png_count(nb) == committed_pngs, (
        f"{path.name} draws {_png_count(nb)} figures, the committed copy has {committed_pngs}: "
        "re-run `python notebooks/execute.py`"
    )
    assert not runner.leaked_paths(nb), (
        f"{path.name} prints machine paths {runner.leaked_paths(nb)}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_reads_well(path: Path) -> None:
    """Executed in order with every output saved, figures as PNG, nothing that names this
    machine, well under 1 MB."""
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name} is {size} bytes"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name} was not executed top to bottom (execution counts {counts}): "
        "re-run `python notebooks/execute.py`"
    )
    assert _png_count(nb) >= 4, f"{path.name} has {_png_count(nb)} figures"
    assert not [out for out in _outputs(nb) if out.get("output_type") == "error"]
    leaks = _runner().leaked_paths(nb)
    assert not leaks, f"{path.name} outputs contain machine paths {leaks}"
    assert all("execution" not in cell.metadata for cell in code), "timings were recorded"
    # no single output (an accidental huge array print or an oversized figure) dominates
    biggest = max(len(json.dumps(out)) for out in _outputs(nb))
    assert biggest < 200_000, f"{path.name}: an output of {biggest} bytes"
