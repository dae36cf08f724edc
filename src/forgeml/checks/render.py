"""Show a :class:`DataReport`: a rich table for the terminal, JSON and a self-contained HTML page.

The HTML page has its styles inline and loads nothing from the network, so it opens offline and
can be attached to an e-mail or a ticket as it is.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from forgeml import atomic
from forgeml.checks.report import DataReport

JSON_NAME = "data_report.json"
HTML_NAME = "data_report.html"
_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def report_json(report: DataReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"


def write_reports(report: DataReport, folder: Path) -> tuple[Path, Path]:
    """Write ``data_report.json`` and ``data_report.html`` into ``folder`` (atomically); return both paths."""
    folder = Path(folder)
    json_path, html_path = folder / JSON_NAME, folder / HTML_NAME
    atomic.write_text(json_path, report_json(report))
    atomic.write_text(html_path, report_html(report))
    return json_path, html_path


def print_report(report: DataReport, console: Console) -> None:
    """A findings table, then a schema table, then one verdict line."""
    title = f"{report.source}: {report.rows} rows x {report.columns} columns" + (
        f", target {report.target!r} ({report.task})" if report.target else ""
    )
    findings = Table(title=title, show_lines=False)
    for header in ("severity", "check", "column", "rows", "finding", "fix"):
        findings.add_column(header, overflow="fold")
    for f in report.findings:
        severity = f"{f.severity} (allowed)" if f.allowed else f.severity
        findings.add_row(
            f"[{_STYLE[f.severity]}]{severity}[/]",
            f.id,
            f.column or "",
            ", ".join(map(str, f.rows)),
            f.message,
            f.fix,
        )
    if report.findings:
        console.print(findings)
    schema = Table(title="inferred schema")
    for header in ("column", "kind", "missing", "distinct", "parse rate", "examples"):
        schema.add_column(header, overflow="fold")
    for c in report.schema:
        schema.add_row(
            c.name, c.kind, str(c.missing), str(c.distinct), f"{c.parse_rate:.0%}", ", ".join(c.examples)
        )
    console.print(schema)
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in ("error", "warning", "info")}
    verdict = "[green]passed[/]" if report.passed else f"[bold red]{len(report.blocking)} blocking[/]"
    console.print(f"{verdict}: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} info")


def report_html(report: DataReport) -> str:
    """One HTML page with inline CSS and no scripts or external assets."""
    e = html.escape
    finding_rows = "".join(
        f"<tr class='{f.severity}'><td>{e(f.severity)}{' (allowed)' if f.allowed else ''}</td><td><code>{e(f.id)}</code></td>"
        f"<td>{e(f.column or '')}</td><td>{e(', '.join(map(str, f.rows)))}</td><td>{e(f.message)}</td><td>{e(f.fix)}</td></tr>"
        for f in report.findings
    )
    schema_rows = "".join(
        f"<tr><td>{e(c.name)}</td><td>{e(c.kind)}</td><td>{c.missing}</td><td>{c.distinct}</td>"
        f"<td>{c.parse_rate:.0%}</td><td>{e(', '.join(c.examples))}</td></tr>"
        for c in report.schema
    )
    verdict = "passed" if report.passed else f"{len(report.blocking)} blocking problems"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Data report: {e(report.source)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
tr.error td:first-child {{ color: #b00020; font-weight: bold; }}
tr.warning td:first-child {{ color: #a66300; }}
tr.info td:first-child {{ color: #666; }}
</style></head><body>
<h1>Data report</h1>
<p><b>{e(report.source)}</b>: {report.rows} rows, {report.columns} columns;
target {e(str(report.target))} ({e(str(report.task))}). Verdict: <b>{e(verdict)}</b>.</p>
<h2>Findings</h2>
<table><tr><th>severity</th><th>check</th><th>column</th><th>rows</th><th>finding</th><th>fix</th></tr>
{finding_rows}</table>
<h2>Inferred schema</h2>
<table><tr><th>column</th><th>kind</th><th>missing</th><th>distinct</th><th>parse rate</th><th>examples</th></tr>
{schema_rows}</table>
<p>Rows are 1-based data rows (row 1 is the line after a CSV header). Report schema version 1.</p>
</body></html>
"""
