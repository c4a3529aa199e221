"""The conformance report: JSON for machines (`--conformance-report PATH`), a table for people
(printed at the end of every run).

Per clause x device x dtype, one status, the worst of the tests of that cell:
failed > known deviation > passed > skipped. The worst error is reported as the
ratio error / bound of the worst element seen (1.0 is the bound), with the error and
the bound there.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance import __version__, spec

if TYPE_CHECKING:
    import pytest

    from conformance.plugin import SuiteState

FORMAT = "cm-conformance-report/1"
RANK = {"failed": 3, "known deviation": 2, "passed": 1, "skipped": 0}
SHORT = {"failed": "FAIL", "known deviation": "dev", "passed": "ok", "skipped": "skip"}


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("numpy", "torch", "mpmath", "hypothesis", "pytest", "diffusers"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "unknown"))
    return versions


def _device_detail(device: str) -> str:
    if device.startswith("cuda"):
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            index = int(device.partition(":")[2] or 0)
            return torch.cuda.get_device_name(index)
    if device == "cpu":
        return platform.processor() or platform.machine()
    return ""


def build(state: SuiteState, config: pytest.Config) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    from hypothesis import settings

    adapter = state.adapter
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for entry in state.results:
        key = (entry["clause"], entry["device"] or "-", entry["dtype"] or "-")
        cell = cells.setdefault(
            key,
            {
                "clause": key[0],
                "title": spec.clauses().get(key[0], ""),
                "device": key[1],
                "dtype": key[2],
                "status": "skipped",
                "worst": None,
                "tests": [],
                "messages": [],
                "noise_layers": [],
                "deviation": None,
            },
        )
        cell["tests"].append({"nodeid": entry["nodeid"], "status": entry["status"]})
        if RANK[entry["status"]] > RANK[cell["status"]] or not cell["tests"][:-1]:
            cell["status"] = entry["status"]
        if entry["message"]:
            note = {"status": entry["status"], "message": entry["message"]}
            if note not in cell["messages"]:
                cell["messages"].append(note)
        worst = entry["worst"]
        if worst is not None and (cell["worst"] is None or _ratio(worst) > _ratio(cell["worst"])):
            cell["worst"] = worst
        for layer in entry["noise_layers"]:
            if layer not in cell["noise_layers"]:
                cell["noise_layers"].append(layer)
        if entry["deviation"] is not None:
            cell["deviation"] = entry["deviation"]
        for key in ("max_abs_error", "max_rel_error", "ratio"):
            if key in entry:
                cell[key] = max(cell.get(key, 0.0), entry[key])
    observed = {
        (c["deviation"]["clause"], c["deviation"]["measured"])
        for c in cells.values()
        if c["deviation"]
    } | {
        (d["clause"], d["measured"])
        for entry in state.results
        for d in entry.get("deviations_seen", ())
    }
    counts = {status: 0 for status in RANK}
    for cell in cells.values():
        counts[cell["status"]] += 1
    return {
        "format": FORMAT,
        "suite": {"name": "cm-conformance", "version": __version__},
        "implementation": {
            "name": adapter.name,
            "version": adapter.version,
            "loaded": adapter.description or state.impl_spec,
            "impl_option": state.impl_spec,
            "capabilities": adapter.capabilities.as_dict(),
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "versions": _versions(),
            "hypothesis_profile": settings.get_current_profile_name(),
        },
        "devices": [
            {
                "name": device,
                "available": state.device_status[device][0],
                "reason": state.device_status[device][1],
                "detail": _device_detail(device) if state.device_status[device][0] else "",
            }
            for device in state.devices
        ],
        "dtypes": list(state.dtypes),
        "golden_dir": str(state.golden_dir),
        "deviations": [
            {**d.as_dict(), "observed": (d.clause, d.measured) in observed}
            for d in adapter.deviations
        ],
        "counts": counts,
        "clauses": [cells[key] for key in sorted(cells, key=_order)],
    }


def _ratio(worst: dict[str, Any]) -> float:
    ratio = worst["ratio"]
    return float("inf") if isinstance(ratio, str) else float(ratio)


def _order(key: tuple[str, str, str]) -> tuple[int, str, str]:
    ids = list(spec.clauses())
    return (ids.index(key[0]) if key[0] in ids else len(ids), key[1], key[2])


def write(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _cell_text(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return ""
    text = SHORT[cell["status"]]
    worst = cell["worst"]
    if worst is not None and cell["status"] != "skipped" and worst["bound"]:
        ratio = _ratio(worst)
        text += f" {ratio:.2g}" if ratio < 1e3 else " >1e3"
    return text


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The readable summary: one row per clause, one column per device/dtype."""
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
        table.append([clause] + [_cell_text(row.get(col)) for col in columns])
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    lines = [
        "",
        f"conformance of {impl['name']} {impl['version']} (suite {data['suite']['version']}): "
        f"{counts['passed']} passed, {counts['known deviation']} known deviations, "
        f"{counts['failed']} failed, {counts['skipped']} skipped (clause x device x dtype cells)",
        "cells: status and worst error as a fraction of its bound (1 = at the bound); "
        "dev = known deviation; clauses in conformance/SPEC.md",
    ]
    for r in table:
        lines.append("  ".join(text.ljust(widths[i]) for i, text in enumerate(r)).rstrip())
    ran = {cell["clause"] for cell in data["clauses"] if cell["status"] != "skipped"}
    for d in data["deviations"]:
        if d["clause"] not in ran:
            continue
        where = ", ".join(d["dtypes"] or ["all dtypes"])
        state = "observed" if d["observed"] else "declared, not observed"
        lines.append(f"deviation {d['clause']} ({where}; {state}): {d['measured']}. {d['reason']}")
    failed = [c for c in data["clauses"] if c["status"] == "failed"]
    for cell in failed:
        for note in [m for m in cell["messages"] if m["status"] == "failed"][:1]:
            lines.append(
                f"FAILED {cell['clause']} {cell['device']}/{cell['dtype']}: {note['message']}"
            )
    return lines
