"""Where an implementation stands against its bounds, as a picture: a heat map of each cell's
worst error / bound (clause x device/dtype, log scale, 1 = at the bound) from a JSON report.

    python -m conformance.harness.plot conformance-report.json -o conformance.png

Needs matplotlib (in the `test` and `notebooks` extras; not needed by the suite itself).
Cells without a ratio are labelled with their status (pale green: a behavioural or exact
check met; grey: skipped or not run); a failing cell is outlined.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from conformance.harness import report

#: Cells met with no figure (behavioural or exact checks), by status.
PLAIN = {"ok": "#c7e9c0", "de": "#fdd0a2"}
#: The colour scale's ends: a millionth of the bound to a million times it (log10).
LOG_RANGE = 6.0


def grid(
    data: dict[str, Any],
) -> tuple[list[str], list[str], list[list[float | None]], list[list[str]]]:
    """(clauses, columns, worst ratio per cell or None, label per cell), from a report."""
    rows = report.table(data)
    columns = rows[0][1:]
    clauses = [r[0] for r in rows[1:]]
    index = {
        (c["clause"], report.column_label(c["device"], c["dtype"])): c for c in data["clauses"]
    }
    values: list[list[float | None]] = []
    for label in clauses:
        clause = label.split()[0]
        line: list[float | None] = []
        for column in columns:
            cell = index.get((clause, column))
            worst = cell["worst"] if cell else None
            ratio = report.worst_ratio(cell) if cell else None
            if worst is not None and not worst["bound"] and ratio == 0:
                ratio = None  # a behavioural check or an exact one met: no figure to place
            line.append(ratio)
        values.append(line)
    labels = [row[1:] for row in rows[1:]]
    return clauses, columns, values, labels


def draw(data: dict[str, Any], out: Path) -> Path:
    """Write the heat map of `data` to `out` (PNG, SVG or PDF by the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    clauses, columns, values, labels = grid(data)
    shown = np.full((len(clauses), len(columns)), np.nan)
    for i, line in enumerate(values):
        for j, ratio in enumerate(line):
            if ratio is not None and ratio > 0:
                shown[i, j] = np.clip(math.log10(ratio), -LOG_RANGE, LOG_RANGE)
            elif ratio == 0:
                shown[i, j] = -LOG_RANGE
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(columns), 1.0 + 0.28 * len(clauses)))
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="#eeeeee")
    image = ax.imshow(
        np.ma.masked_invalid(shown), cmap=cmap, vmin=-LOG_RANGE, vmax=LOG_RANGE, aspect="auto"
    )
    for i, line in enumerate(labels):
        for j, text in enumerate(line):
            if values[i][j] is None and text.startswith(("ok", "dev")):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=PLAIN[text[:2]]))
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
            if text.startswith(("FAIL", "ERR")):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2))
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(clauses)), clauses, fontsize=8)
    ax.xaxis.tick_top()
    impl = data["implementation"]
    ax.set_title(
        f"{impl['name']} {impl['version']}: {data['verdict'].upper()} "
        "(worst error / bound per cell)",
        fontsize=9,
    )
    bar = fig.colorbar(image, ax=ax, shrink=0.6)
    bar.set_label("log10(worst error / bound); 0 = at the bound")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.harness.plot",
        description="Plot each cell's worst error / bound from a conformance JSON report.",
    )
    parser.add_argument("report", type=Path, help="the JSON report (--conformance-report)")
    parser.add_argument("-o", "--output", type=Path, default=Path("conformance.png"))
    args = parser.parse_args(argv)
    data = json.loads(args.report.read_text(encoding="utf-8"))
    if data.get("format") != report.FORMAT:
        parser.error(f"{args.report}: format {data.get('format')!r}, expected {report.FORMAT!r}")
    print(f"plot written: {draw(data, args.output)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
