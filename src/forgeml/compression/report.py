"""The trade-off table three ways: a rich table for the terminal, ``summary.json``, and HTML.

``compressed/report.html`` is a page of its own (same style as the model card); the run's
``report.html`` gets a short "Compression" section with the same table and a link to that page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.table import Table

from forgeml import atomic, templates
from forgeml.bundle.manifest import read_manifest
from forgeml.bundle.predictive import WEIGHTS
from forgeml.compression.measure import BATCH_ROWS, VariantResult
from forgeml.errors import ForgeError
from forgeml.evaluation.report import with_section

COMPRESSED_DIR = "compressed"
SUMMARY = "summary.json"
REPORT = "report.html"
SECTION = "Compression"
HEADER = (
    "variant",
    "{metric}",
    "drop",
    "model.onnx KiB",
    "x smaller",
    "params",
    "1-row ms",
    f"{BATCH_ROWS}-row ms",
)


def rows(results: Sequence[VariantResult]) -> list[tuple[str, ...]]:
    """The table's cells as text, baseline first (it is the first result)."""
    base = results[0]
    lines = []
    for result in results:
        params = f"{result.parameters:,}" + (f" ({result.zeros:.0%} zero)" if result.zeros >= 0.05 else "")
        lines.append(
            (
                result.name,
                f"{result.metric:.4f}",
                f"{result.drop:+.4f}" if result is not base else "-",
                f"{result.model_bytes / 1024:.1f}",
                f"{base.model_bytes / result.model_bytes:.2f}x",
                params,
                f"{result.latency_single_ms:.3f}",
                f"{result.latency_batch_ms:.3f}",
            )
        )
    return lines


def header(results: Sequence[VariantResult]) -> tuple[str, ...]:
    return tuple(cell.format(metric=results[0].metric_name) for cell in HEADER)


def rich_table(results: Sequence[VariantResult], recommended: VariantResult | None) -> Table:
    """The terminal table; the recommended variant's row is bold and marked."""
    view = Table(title="compressed variants: test split, through the Predictor", box=box.SIMPLE_HEAD)
    for index, name in enumerate(header(results)):
        view.add_column(name, justify="left" if index == 0 else "right", no_wrap=True)
    for result, cells in zip(results, rows(results), strict=True):
        chosen = recommended is not None and result.name == recommended.name
        view.add_row(
            *((f"{cells[0]} *",) if chosen else cells[:1]), *cells[1:], style="bold" if chosen else None
        )
    if recommended is not None:
        view.caption = "* recommended: the smallest model.onnx within the drop budget"
    return view


def write_reports(
    staging: Path,
    run_dir: Path,
    results: Sequence[VariantResult],
    recommended: VariantResult | None,
    max_drop: float | None,
) -> tuple[Path, Path]:
    """``summary.json`` and ``report.html`` into ``staging`` (the future ``compressed/``)."""
    summary = {
        "run": str(run_dir),
        "metric": results[0].metric_name,
        "max_drop": max_drop,
        "recommended": None if recommended is None else recommended.name,
        "variants": [result.to_json() for result in results],
    }
    atomic.write_text(staging / SUMMARY, json.dumps(summary, indent=2))
    page = templates.render(
        "compression_report.html.j2",
        title=f"forgeml compression: {run_dir.name}",
        **_section(results, recommended, max_drop, link=""),
    )
    atomic.write_text(staging / REPORT, page)
    return staging / SUMMARY, staging / REPORT


def section_body(
    results: Sequence[VariantResult],
    recommended: VariantResult | None,
    max_drop: float | None,
    *,
    link: str = "",
) -> str:
    """The table, what its columns mean, and the recommendation (``templates/compression_section.html.j2``)."""
    return templates.render("compression_section.html.j2", **_section(results, recommended, max_drop, link))


def _section(
    results: Sequence[VariantResult], recommended: VariantResult | None, max_drop: float | None, link: str
) -> dict[str, object]:
    """What the section template shows."""
    return dict(
        header=header(results),
        rows=rows(results),
        flagged=[recommended is not None and result.name == recommended.name for result in results],
        batch_rows=BATCH_ROWS,
        recommended=recommended,
        max_drop=max_drop,
        link=link,
    )


def restore_run_report(run_dir: Path) -> Path | None:
    """Put the Compression section back into ``run_dir/report.html`` from ``compressed/summary.json``.

    ``forgeml evaluate`` renders the run's card afresh, which drops the section ``forgeml compress``
    added; the variants are still on disk, so the card should still list them. Not when the run was
    retrained since (its weights differ from the compressed baseline's): that table describes another
    model. None when nothing was added.
    """
    path = run_dir / COMPRESSED_DIR / SUMMARY
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    results = [VariantResult.from_json(row) for row in summary["variants"]]
    if not _same_weights(run_dir / "bundle", run_dir / COMPRESSED_DIR / results[0].name):
        return None
    recommended = next((result for result in results if result.name == summary["recommended"]), None)
    return add_to_run_report(run_dir, results, recommended, summary["max_drop"])


def _same_weights(bundle: Path, baseline: Path) -> bool:
    """Whether two bundles' bundle.json record the same weights checksum."""
    try:
        records = [read_manifest(folder)["files"][WEIGHTS]["sha256"] for folder in (bundle, baseline)]
    except (ForgeError, KeyError):
        return False
    return records[0] == records[1]


def add_to_run_report(run_dir: Path, results: Sequence[VariantResult], recommended: VariantResult | None,
                      max_drop: float | None) -> Path | None:  # fmt: skip
    """Add (or replace) the Compression section of ``run_dir/report.html``; None when there is no report."""
    path = run_dir / REPORT
    if not path.is_file():
        return None
    body = section_body(results, recommended, max_drop, link=f"compressed/{REPORT}")
    atomic.write_text(path, with_section(path.read_text(encoding="utf-8"), SECTION, body))
    return path
