"""Show a :class:`DataReport`: a rich table for the terminal, JSON and a self-contained HTML page.

The HTML page (a Jinja2 template, autoescaped) has its styles inline and loads nothing from the
network, so it opens offline and can be attached to an e-mail or a ticket as it is.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from forgeml import atomic, templates
from forgeml.checks.catalogue import CHECKS
from forgeml.checks.report import DataReport, Finding
from forgeml.checks.verdict import next_steps

JSON_NAME = "data_report.json"
HTML_NAME = "data_report.html"
_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}
GROUP_LIMIT = 40  # columns listed by name in one grouped finding; the rest are counted


def report_json(report: DataReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"


def write_reports(report: DataReport, folder: Path) -> tuple[Path, Path]:
    """Write ``data_report.json`` and ``data_report.html`` into ``folder`` (atomically); return both paths."""
    folder = Path(folder)
    json_path, html_path = folder / JSON_NAME, folder / HTML_NAME
    atomic.write_text(json_path, report_json(report))
    atomic.write_text(html_path, report_html(report))
    return json_path, html_path


def print_report(report: DataReport, console: Console, *, schema: bool = False) -> None:
    """Findings grouped by check (errors first), the schema table if asked, then one verdict line.

    A check that fires on many columns takes one entry listing the columns, not one row each, so a
    wide table reads at a glance; ``data_report.json`` and the HTML page keep every finding.
    """
    title = f"{report.source}: {report.rows} rows x {report.columns} columns" + (
        f", target {report.target!r} ({report.task})" if report.target else ""
    )
    console.print(f"[bold]{title}[/]", soft_wrap=True)
    for group in group_findings(report.findings):
        _print_group(group, console)
    if schema:
        console.print(schema_table(report))
    kinds = Counter(c.kind for c in report.schema)
    described = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    console.print(
        f"[dim]inferred schema: {described}{'' if schema else ' (--schema lists each column)'}[/]",
        soft_wrap=True,
    )
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in ("error", "warning", "info")}
    verdict = "[green]passed[/]" if report.passed else f"[bold red]{len(report.blocking)} blocking[/]"
    console.print(f"{verdict}: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} info")
    for line in next_steps(report):  # the same command or allow line the blocked run prints
        console.print(line, markup=False, soft_wrap=True, highlight=False)


def group_findings(findings: tuple[Finding, ...]) -> list[list[Finding]]:
    """Findings with the same id (and allowed flag) together, in the order the first of each appears."""
    groups: dict[tuple[str, bool], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.id, finding.allowed), []).append(finding)
    return list(groups.values())


def _print_group(group: list[Finding], console: Console) -> None:
    """One check: a heading line, what it found (one line per finding, or a list of columns), the fix."""
    head = group[0]
    severity = f"{head.severity} (allowed)" if head.allowed else head.severity
    label = f"[{_STYLE[head.severity]}]{severity:<8}[/] [bold]{head.id}[/]"
    if len(group) == 1:
        where = f" {head.column!r}" if head.column is not None else ""
        rows = f" (rows {', '.join(map(str, head.rows))})" if head.rows else ""
        console.print(f"{label}{where}: {head.message}{rows}", soft_wrap=True, highlight=False)
    else:
        console.print(f"{label}: {CHECKS[head.id].title}", soft_wrap=True, highlight=False)
        shown = [
            f"{f.column if f.column is not None else '(rows)'} ({f.count:,})" for f in group[:GROUP_LIMIT]
        ]
        more = f", and {len(group) - GROUP_LIMIT} more" if len(group) > GROUP_LIMIT else ""
        listing = f"{len(group)} columns (count affected): {', '.join(shown)}{more}"
        console.print(Padding(Text(listing, overflow="fold"), (0, 0, 0, 2), expand=False))
    console.print(Padding(Text(f"fix: {head.fix}", style="dim", overflow="fold"), (0, 0, 0, 2), expand=False))


def schema_table(report: DataReport) -> Table:
    """The inferred kind of each column with its evidence (``forgeml check --schema``)."""
    table = Table(title="inferred schema")
    for header in ("column", "kind", "missing", "distinct", "parse rate", "examples"):
        table.add_column(header, overflow="fold")
    for c in report.schema:
        table.add_row(
            c.name, c.kind, str(c.missing), str(c.distinct), f"{c.parse_rate:.0%}", ", ".join(c.examples)
        )
    return table


def report_html(report: DataReport) -> str:
    """One HTML page with inline CSS and no scripts or external assets (``templates/data_report.html.j2``)."""
    verdict = "passed" if report.passed else f"{len(report.blocking)} blocking problems"
    return templates.render("data_report.html.j2", report=report, verdict=verdict)
