"""The run's summary in Markdown (`--conformance-markdown PATH`), for a CI job's page (GitHub
Actions shows a file appended to `$GITHUB_STEP_SUMMARY` on the run's page): the verdict, the
implementation and versions, the counts, the clause table with levels and worst ratios, and
each failing clause's block with its diagnosis. Built from the report's data alone
(`conformance.harness.report.build`), like the terminal's table.
"""

from __future__ import annotations

from typing import Any

from conformance.harness import report


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render(data: dict[str, Any]) -> str:
    """The Markdown summary of a report."""
    impl = data["implementation"]
    versions = data["platform"].get("versions", {})
    run = data["run"]
    lines = [
        f"## Conformance of {impl['name']} {impl['version']}: {data['verdict'].upper()}",
        "",
        f"- suite: cm-conformance {data['suite']['version']}, exit status {data['exit_status']}, "
        f"{data['duration_s']:g} s, hypothesis profile `{run['hypothesis_profile']}`"
        + (", strict" if run["strict"] else ""),
        f"- implementation: `{impl['loaded']}` (`--impl={impl['impl_option']}`)",
        "- versions: " + ", ".join(f"{name} {v}" for name, v in versions.items()),
        "- devices: "
        + ", ".join(
            d["name"] if d["available"] else f"{d['name']} (skipped: {d['reason']})"
            for d in data["devices"]
        )
        + "; dtypes: "
        + ", ".join(data["dtypes"]),
        "",
        _row(["cells", *report.STATUSES_SHOWN]),
        _row(["---"] * (len(report.STATUSES_SHOWN) + 1)),
        _row(
            [
                "clause x device x dtype",
                *(str(data["counts"]["cells"][s]) for s in report.STATUSES_SHOWN),
            ]
        ),
        _row(
            [
                "tests (pytest items)",
                *(str(data["counts"]["tests"][s]) for s in report.STATUSES_SHOWN),
            ]
        ),
        "",
    ]
    if data["clauses"]:
        rows = report.table(data)
        header = ["clause", "level", *rows[0][1:]]
        lines += [_row(header), _row(["---"] * len(header))]
        for row in rows[1:]:
            clause = row[0].split()[0]
            level = next(c["level"] for c in data["clauses"] if c["clause"] == clause)
            lines.append(_row([f"`{clause}`", level, *(f"`{c}`" if c else "" for c in row[1:])]))
        lines += [
            "",
            "Each cell: status and worst error as a fraction of its bound (1 = at the bound); "
            "`dev` a declared deviation, `warn` a SHOULD clause not met, `ERR` the check raised; "
            "`any`: checked once whatever the dtype. Clauses in `conformance/SPEC.md`.",
        ]
    explained = [c for c in data["clauses"] if report.at_known_bound(c)]
    for cell in explained:
        where = report.column_label(cell["device"], cell["dtype"])
        lines.append(
            f"\n\\* `{cell['clause']}` {where} is at its bound by design: {cell['worst']['note']}"
        )
    groups = report.failing_by_clause(data)
    if groups:
        lines += ["", "### Failures and warnings", ""]
        for clause, cells in groups.items():
            worst = cells[0]
            label = {"failed": "FAILED", "error": "ERROR", "warning": "WARNING (SHOULD)"}
            where = ", ".join(report.column_label(c["device"], c["dtype"]) for c in cells)
            lines += [
                f"**{label[worst['status']]} {clause}** ({worst['title']}) on {where}",
                "",
                "```text",
                report.failure_text(worst),
                "```",
                "",
            ]
    if data["verdict"] == "nothing tested":
        lines += ["", "Nothing was tested: every conformance test was skipped or deselected."]
    return "\n".join(lines).rstrip() + "\n"
