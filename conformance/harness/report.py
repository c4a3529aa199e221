"""The conformance report, built from the outcome records (`conformance.harness.records`) alone: JSON
for machines (`--conformance-report PATH`, format `cm-conformance-report/3`, described by the
JSON Schema `conformance/harness/report_schema.json`) and a table for people (the end of every run).

Per clause x device x dtype (a *cell*) one status, the worst of its tests' (failed > error >
warning > known deviation > passed > skipped); its figures in one place, `worst`: the ratio
error / bound of the worst element seen (1 is the bound), with the error and the bound there;
apart from them, how far a failing cell goes beyond its bounds (`beyond_bound`) and the block
a person reads (`failure`). Counts are given in two named units: tests (pytest items) and
cells.

The JSON is strict: no NaN or Infinity (a non-finite figure is `null`, with its text in
`text`), one type per field, no absolute path of the machine that ran it. Nothing here
imports pytest or the plugin: `build` and `summary_lines` are plain functions of data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from conformance.harness.records import FAILING, RANK, STATUSES, Outcome
from conformance.measuring.checks import Worst
from conformance.protocol import clauses

FORMAT = "cm-conformance-report/3"
SHORT = {
    "failed": "FAIL",
    "error": "ERR",
    "warning": "warn",
    "known deviation": "dev",
    "passed": "ok",
    "skipped": "skip",
}
PHASES = {"setup": 0, "call": 1, "teardown": 2}


@dataclass
class RunInfo:
    """What the report says about the run besides its outcomes (all plain data)."""

    suite_version: str
    implementation: dict[str, Any]  # name, version, loaded, impl_option, capabilities
    devices: list[dict[str, Any]]  # name, available, reason, detail
    dtypes: list[str]
    declared: list[dict[str, Any]]  # Deviation.as_dict() of each declared deviation
    started: str = ""  # ISO 8601, UTC
    duration_s: float = 0.0
    exit_status: int | None = None
    hypothesis_profile: str = ""
    strict: bool = False
    workers: int = 0  # pytest-xdist workers (0: none)
    golden: str = "packaged"
    filters: dict[str, Any] = field(default_factory=dict)
    platform: dict[str, Any] = field(default_factory=dict)


def number(value: float | None) -> float | None:
    """A JSON-safe number: None for None, NaN and infinities."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def ratio_text(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    if math.isinf(value) or value >= 1e3:
        return ">1e3" if math.isfinite(value) else "inf"
    return f"{value:.2g}"


def _worst(figures: Worst | None) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {
        "ratio": number(figures.ratio),
        "error": number(figures.error),
        "bound": number(figures.bound),
        "text": ratio_text(figures.ratio),
        "what": figures.what,
        "note": figures.known_difference,
    }


def worst_ratio(cell: dict[str, Any]) -> float | None:
    """A cell's worst error / bound as a number (infinite and NaN ratios are `null` in the
    JSON, their text beside them); None where none was measured."""
    worst = cell["worst"]
    if worst is None:
        return None
    if worst["ratio"] is not None:
        return float(worst["ratio"])
    return {"inf": math.inf, "nan": math.nan}.get(worst["text"])


def _rank_ratio(value: float | None) -> float:
    if value is None:
        return -1.0
    return math.inf if math.isnan(value) else value


def _test_id(nodeid: str) -> str:
    """The node id from the package on (`conformance/test_step.py::...`), the same wherever
    the package was installed and whatever the rootdir."""
    path, sep, rest = nodeid.partition("::")
    parts = path.replace("\\", "/").split("/")
    if "conformance" in parts:
        path = "/".join(parts[len(parts) - 1 - parts[::-1].index("conformance") :])
    return path + sep + rest


def _order(clause: str) -> int:
    ids = list(clauses.clauses())
    return ids.index(clause) if clause in ids else len(ids)


def build(records: Iterable[Outcome], run: RunInfo) -> dict[str, Any]:
    """The report as a JSON-ready dict (the same for the same records in any order)."""
    ordered = sorted(records, key=lambda r: (_test_id(r.nodeid), PHASES.get(r.phase, 3)))
    tests: dict[str, str] = {}
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    figures: dict[tuple[str, str, str], Worst | None] = {}
    for record in ordered:
        test_id = _test_id(record.nodeid)
        if test_id not in tests or RANK[record.status] > RANK[tests[test_id]]:
            tests[test_id] = record.status
        key = (record.clause, record.device or "-", record.dtype or "-")
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = {
                "clause": key[0],
                "title": clauses.clauses().get(key[0], ""),
                "level": clauses.level(key[0]),
                "device": key[1],
                "dtype": key[2],
                "status": record.status,
                "worst": None,
                "beyond_bound": None,
                "failure": None,
                "exception": None,
                "bound_note": None,
                "deviation": None,
                "noise_layers": [],
                "tests": [],
                "messages": [],
            }
            figures[key] = None
        if RANK[record.status] > RANK[cell["status"]]:
            cell["status"] = record.status
        entry = {"nodeid": test_id, "phase": record.phase, "status": record.status}
        cell["tests"].append(entry)
        if record.message:
            note = {"status": record.status, "message": record.message}
            if note not in cell["messages"]:
                cell["messages"].append(note)
        if record.worst is not None and (
            figures[key] is None
            or _rank_ratio(record.worst.ratio) > _rank_ratio(figures[key].ratio)
        ):
            figures[key] = record.worst
        for name in ("max_abs_error", "max_rel_error"):
            value = getattr(record, name)
            if value is not None and _rank_ratio(value) > _rank_ratio(cell.get("_" + name)):
                cell["_" + name] = value
        if record.failure and (
            cell["failure"] is None
            or (RANK[record.status], _rank_ratio(record.ratio)) > cell["_failure_rank"]
        ):
            cell["failure"] = record.failure
            cell["_failure_rank"] = (RANK[record.status], _rank_ratio(record.ratio))
        if record.exception and cell["exception"] is None and record.status == "error":
            cell["exception"] = record.exception
        cell["bound_note"] = cell["bound_note"] or record.bound_note
        if record.deviation is not None and cell["deviation"] is None:
            cell["deviation"] = record.deviation
        for layer in record.noise_layers:
            if layer not in cell["noise_layers"]:
                cell["noise_layers"].append(layer)
    for key, cell in cells.items():
        cell["worst"] = _worst(figures[key])
        if cell["worst"] is not None and cell["worst"]["note"]:
            cell["bound_note"] = cell["worst"]["note"]  # the note of the figures shown
        beyond = {
            name: number(cell.pop("_" + name, None)) for name in ("max_abs_error", "max_rel_error")
        }
        cell["beyond_bound"] = beyond if any(v is not None for v in beyond.values()) else None
        cell.pop("_failure_rank", None)
        cell["noise_layers"].sort()
    observed = {
        (c["deviation"]["clause"], c["deviation"]["measured"])
        for c in cells.values()
        if c["deviation"]
    }
    ran = [s for s in tests.values() if s != "skipped"]
    if any(s in FAILING for s in tests.values()):
        verdict = "fail"
    elif not ran:
        verdict = "nothing tested"
    else:
        verdict = "pass"
    dtype_rank = {d: i for i, d in enumerate(run.dtypes)}
    return {
        "format": FORMAT,
        "verdict": verdict,
        "exit_status": run.exit_status,
        "started": run.started,
        "duration_s": round(run.duration_s, 3),
        "suite": {"name": "cm-conformance", "version": run.suite_version},
        "implementation": run.implementation,
        "run": {
            "filters": run.filters,
            "hypothesis_profile": run.hypothesis_profile,
            "strict": run.strict,
            "workers": run.workers,
            "golden": run.golden,
        },
        "platform": run.platform,
        "devices": run.devices,
        "dtypes": list(run.dtypes),
        "deviations": [
            {**d, "observed": (d["clause"], d["measured"]) in observed} for d in run.declared
        ],
        "counts": {
            "tests": {s: sum(1 for v in tests.values() if v == s) for s in STATUSES},
            "cells": {s: sum(1 for c in cells.values() if c["status"] == s) for s in STATUSES},
        },
        "clauses": [
            cells[key]
            for key in sorted(
                cells, key=lambda k: (_order(k[0]), k[1], dtype_rank.get(k[2], -1), k[2])
            )
        ],
    }


def dumps(data: dict[str, Any]) -> str:
    """Strict JSON (a NaN or infinity left anywhere is an error, not `NaN` in the file)."""
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def write(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(data), encoding="utf-8")


def schema() -> dict[str, Any]:
    """The JSON Schema of the report (package data: `conformance/harness/report_schema.json`)."""
    text = resources.files("conformance.harness").joinpath("report_schema.json").read_text("utf-8")
    return json.loads(text)


# -- the table -----------------------------------------------------------------------------


def at_known_bound(cell: dict[str, Any]) -> bool:
    """A passing cell near its bound (half of it or more) where the bound is a known
    difference (OpenAI's last-step noise, say): the implementation sits where it should, not
    on the edge of failing."""
    worst = cell["worst"]
    return (
        cell["status"] == "passed"
        and worst is not None
        and bool(worst["note"])
        and worst["ratio"] is not None
        and worst["ratio"] >= 0.5
    )


def cell_text(cell: dict[str, Any] | None) -> str:
    """A table cell: the status, and the worst error as a fraction of its bound where one
    was measured (`*`: at a bound that is a known difference, explained below the table).

    A cell that did not pass shows the figure of the check that went beyond its bound, so
    none where every numeric check held (a behavioural failure: `FAIL`, never `FAIL 0`)."""
    if cell is None:
        return ""
    status = cell["status"]
    text = SHORT[status]
    if status == "skipped":
        return text
    if status == "error":
        return f"{text} {cell['exception'] or ''}".rstrip()
    worst = cell["worst"]
    shown = None
    if worst is not None:
        ratio = worst_ratio(cell)
        beyond = ratio is None or not ratio <= 1.0  # NaN and inf included
        if worst["bound"] if status == "passed" else beyond:
            shown = worst["text"] or None
    if shown and at_known_bound(cell):
        shown += "*"
    return f"{text} {shown}" if shown else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


#: The statuses in the order the summaries count them.
STATUSES_SHOWN = ("passed", "known deviation", "warning", "failed", "error", "skipped")


def _counts_text(counts: dict[str, int]) -> str:
    order = STATUSES_SHOWN
    nouns = ("known deviation", "warning", "error")  # the others are participles
    return ", ".join(_plural(counts[s], s) if s in nouns else f"{counts[s]} {s}" for s in order)


def verdict_line(data: dict[str, Any]) -> str:
    impl = data["implementation"]
    return (
        f"conformance of {impl['name']} {impl['version']} (suite {data['suite']['version']}): "
        f"{data['verdict'].upper()}"
    )


def column_label(device: str, dtype: str) -> str:
    """`cpu/float64`; `cpu/any` for a clause checked once per device whatever the dtype;
    `-/any` for one that involves neither (configuration, say)."""
    return f"{device}/{dtype}" if dtype != "-" else f"{device}/any"


def table(data: dict[str, Any]) -> list[list[str]]:
    """Rows of the clause table, the header first: one row per clause, one column per
    device/dtype."""
    columns = sorted(
        {(c["device"], c["dtype"]) for c in data["clauses"]},
        key=lambda col: (col[0], data["dtypes"].index(col[1]) if col[1] in data["dtypes"] else -1),
    )
    rows: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for cell in data["clauses"]:
        rows.setdefault(cell["clause"], {})[(cell["device"], cell["dtype"])] = cell
    out = [["clause"] + [column_label(d, t) for d, t in columns]]
    for clause, row in rows.items():
        label = clause + (" (SHOULD)" if clauses.level(clause) == "SHOULD" else "")
        out.append([label] + [cell_text(row.get(col)) for col in columns])
    return out


def failing_by_clause(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The failed, erroring and warning cells, grouped by clause, the worst cell first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for cell in data["clauses"]:
        if cell["status"] in ("failed", "error", "warning"):
            groups.setdefault(cell["clause"], []).append(cell)
    for cells in groups.values():
        cells.sort(key=lambda c: (-RANK[c["status"]], -_rank_ratio(worst_ratio(c))))
    return groups


def failure_text(cell: dict[str, Any]) -> str:
    """A failing cell's block; the first message where there is none (an error)."""
    if cell["failure"]:
        return cell["failure"]
    notes = [m["message"] for m in cell["messages"] if m["status"] == cell["status"]]
    return notes[0] if notes else ""


def summary_lines(data: dict[str, Any], verbose: int = 0) -> list[str]:
    """The readable summary: the verdict and counts, one row per clause and one column per
    device/dtype, the declared deviations grouped by reason (`verbose`: each in full), and
    per failing clause one block, its diagnosis whole."""
    counts = data["counts"]
    lines = [
        "",
        verdict_line(data),
        f"  cells (clause x device x dtype): {_counts_text(counts['cells'])}",
        f"  tests: {_counts_text(counts['tests'])}",
        *(f"  declared: {line}" for line in data["implementation"].get("conventions", ())),
    ]
    if data["clauses"]:
        lines.append(
            "cells: status and worst error as a fraction of its bound (1 = at the bound); "
            "dev = known deviation, warn = SHOULD clause not met, ERR = the check raised; "
            "columns device/dtype (any: checked once whatever the dtype; -: no device "
            "involved); clauses in conformance/SPEC.md"
        )
        rows = table(data)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            lines.append("  ".join(text.ljust(widths[i]) for i, text in enumerate(r)).rstrip())
    for cell in data["clauses"]:
        if at_known_bound(cell):
            lines.append(
                f"* {cell['clause']} {column_label(cell['device'], cell['dtype'])} is at its "
                f"bound by design, not near failing: {cell['worst']['note']}"
            )
    lines += _deviation_lines(data, verbose)
    for clause, cells in failing_by_clause(data).items():
        worst = cells[0]
        label = {"failed": "FAILED", "error": "ERROR", "warning": "WARNING (SHOULD)"}
        where = column_label(worst["device"], worst["dtype"])
        lines.append(f"{label[worst['status']]} {clause} {where}:")
        lines += ["  " + line for line in failure_text(worst).splitlines()]
        for other in cells[1:]:
            where = column_label(other["device"], other["dtype"])
            lines.append(f"  also on {where}: {cell_text(other)}")
    if data["verdict"] == "nothing tested":
        lines.append(
            "nothing was tested: every conformance test was skipped or deselected, which is not "
            "a pass (exit status 5)"
        )
    return lines


def _deviation_lines(data: dict[str, Any], verbose: int) -> list[str]:
    ran = {cell["clause"] for cell in data["clauses"] if cell["status"] != "skipped"}
    shown = [d for d in data["deviations"] if d["clause"] in ran]
    if not shown:
        return []
    cells = sum(1 for c in data["clauses"] if c["status"] == "known deviation")
    lines = [
        f"known deviations: {_plural(len(data['deviations']), 'declaration')} (a clause on "
        f"some dtypes and devices each), {len(shown)} for clauses run here; observed in "
        f"{_plural(cells, 'cell')}" + ("" if verbose > 0 else "; -v for each in full")
    ]
    if verbose > 0:
        for d in shown:
            where = ", ".join(d["dtypes"] or ["all dtypes"])
            state = "observed" if d["observed"] else "declared, not observed"
            lines.append(f"  {d['clause']} ({where}; {state}): {d['measured']}. {d['reason']}")
        return lines
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in shown:
        groups.setdefault(d["reason"], []).append(d)
    for reason, group in groups.items():
        clauses = ", ".join(dict.fromkeys(d["clause"] for d in group))
        seen = sum(1 for d in group if d["observed"])
        summary = reason.split("; ")[0]
        if len(summary) > 110:
            summary = summary[:107] + "..."
        lines.append(f"  {clauses} ({seen} of {len(group)} observed): {summary}")
    return lines
