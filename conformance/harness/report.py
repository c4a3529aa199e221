"""The conformance report, built from the outcome records (`conformance.harness.records`) alone: JSON
for machines (`--conformance-report PATH`, format `cm-conformance-report/2`, described by the
JSON Schema `conformance/harness/report_schema.json`) and a table for people (the end of every run).

Per clause x device x dtype (a *cell*) one status, the worst of its tests' (failed > error >
warning > known deviation > passed > skipped); the worst error as the ratio error / bound of
the worst element seen (1 is the bound), with the error and the bound there. Counts are given
in two named units: tests (pytest items) and cells.

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

from conformance import spec
from conformance.harness.records import FAILING, RANK, STATUSES, Figures, Outcome

FORMAT = "cm-conformance-report/2"
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


def _worst(figures: Figures | None) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {
        "ratio": number(figures.ratio),
        "error": number(figures.error),
        "bound": number(figures.bound),
        "text": ratio_text(figures.ratio),
        "what": figures.what,
        "note": figures.note,
    }


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
    ids = list(spec.clauses())
    return ids.index(clause) if clause in ids else len(ids)


def build(records: Iterable[Outcome], run: RunInfo) -> dict[str, Any]:
    """The report as a JSON-ready dict (the same for the same records in any order)."""
    ordered = sorted(records, key=lambda r: (_test_id(r.nodeid), PHASES.get(r.phase, 3)))
    tests: dict[str, str] = {}
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    figures: dict[tuple[str, str, str], Figures | None] = {}
    for record in ordered:
        test_id = _test_id(record.nodeid)
        if test_id not in tests or RANK[record.status] > RANK[tests[test_id]]:
            tests[test_id] = record.status
        key = (record.clause, record.device or "-", record.dtype or "-")
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = {
                "clause": key[0],
                "title": spec.clauses().get(key[0], ""),
                "level": spec.level(key[0]),
                "device": key[1],
                "dtype": key[2],
                "status": record.status,
                "worst": None,
                "ratio": None,
                "max_abs_error": None,
                "max_rel_error": None,
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
        for name in ("ratio", "max_abs_error", "max_rel_error"):
            value = getattr(record, name)
            if value is not None and _rank_ratio(value) > _rank_ratio(cell.get("_" + name)):
                cell["_" + name] = value
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
        for name in ("ratio", "max_abs_error", "max_rel_error"):
            raw = cell.pop("_" + name, None)
            cell[name] = number(raw)
            if name == "ratio":
                cell["ratio_text"] = ratio_text(raw)
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


def _cell_text(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return ""
    status = cell["status"]
    text = SHORT[status]
    if status == "skipped":
        return text
    if status == "error":
        return f"{text} {cell['exception'] or ''}".rstrip()
    shown = cell["ratio_text"] if status != "passed" and cell["ratio_text"] else None
    if shown is None and cell["worst"] is not None and cell["worst"]["bound"]:
        shown = cell["worst"]["text"]
    return f"{text} {shown}" if shown else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _counts_text(counts: dict[str, int]) -> str:
    order = ("passed", "known deviation", "warning", "failed", "error", "skipped")
    nouns = ("known deviation", "warning", "error")  # the others are participles
    return ", ".join(_plural(counts[s], s) if s in nouns else f"{counts[s]} {s}" for s in order)


def summary_lines(data: dict[str, Any], verbose: int = 0) -> list[str]:
    """The readable summary: the verdict and counts, one row per clause and one column per
    device/dtype, the declared deviations grouped by reason (`verbose`: each in full), and
    the failures."""
    impl = data["implementation"]
    counts = data["counts"]
    columns = sorted(
        {(c["device"], c["dtype"]) for c in data["clauses"]},
        key=lambda col: (col[0], data["dtypes"].index(col[1]) if col[1] in data["dtypes"] else -1),
    )
    rows: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for cell in data["clauses"]:
        rows.setdefault(cell["clause"], {})[(cell["device"], cell["dtype"])] = cell
    headers = ["clause"] + [f"{d}/{t}" if t != "-" else f"{d}/any" for d, t in columns]
    table = [headers]
    for clause, row in rows.items():
        label = clause + (" (SHOULD)" if spec.level(clause) == "SHOULD" else "")
        table.append([label] + [_cell_text(row.get(col)) for col in columns])
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    verdict = data["verdict"].upper()
    lines = [
        "",
        f"conformance of {impl['name']} {impl['version']} (suite {data['suite']['version']}): "
        f"{verdict}",
        f"  cells (clause x device x dtype): {_counts_text(counts['cells'])}",
        f"  tests: {_counts_text(counts['tests'])}",
        *(f"  declared: {line}" for line in impl.get("conventions", ())),
        "cells: status and worst error as a fraction of its bound (1 = at the bound); "
        "dev = known deviation, warn = SHOULD clause not met, ERR = the check raised; "
        "clauses in conformance/SPEC.md",
    ]
    for r in table:
        lines.append("  ".join(text.ljust(widths[i]) for i, text in enumerate(r)).rstrip())
    notes = {c["clause"]: c["bound_note"] for c in data["clauses"] if c["bound_note"]}
    lines += [f"bound of {clause}: {note}" for clause, note in notes.items()]
    lines += _deviation_lines(data, verbose)
    for cell in data["clauses"]:
        status = cell["status"]
        if status not in ("failed", "error", "warning"):
            continue
        label = {"failed": "FAILED", "error": "ERROR", "warning": "WARNING (SHOULD)"}[status]
        for note in [m for m in cell["messages"] if m["status"] == status][:1]:
            lines.append(
                f"{label} {cell['clause']} {cell['device']}/{cell['dtype']}: {note['message']}"
            )
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
