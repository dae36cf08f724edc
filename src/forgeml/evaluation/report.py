"""The model card: one self-contained ``report.html`` a founder can read without running anything.

Plots are PNGs inlined as base64 data URIs and the style sheet is inline, so the file opens offline
and loads nothing from the network (no JS, no web fonts). Every user-supplied text (column names,
labels, config, card text, data report) goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import os
import platform
from collections.abc import Iterable
from datetime import datetime, timezone
from html import escape
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from forgeml.config import Config
from forgeml.evaluation.metrics import Metrics

if TYPE_CHECKING:
    from forgeml.evaluation.run import Evaluation

Figures = dict[str, bytes]
PACKAGES = ("forgeml", "torch", "numpy", "pandas", "scikit-learn", "matplotlib", "captum")
STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1000px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
tr.flag td{background:#fde2e2}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em}
.headline{font-size:1.3em;background:#eef6ff;padding:.8em;border-radius:6px}
figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}img{max-width:100%}
.muted{color:#777}
"""


def render_report(
    evaluation: Evaluation,
    config: Config,
    figures: Figures,
    *,
    config_text: str,
    history: pd.DataFrame | None,
    data_report: dict[str, Any] | None,
    source: str,
) -> str:
    """The whole card as one HTML string."""
    plotted = {title: png for title, png in figures.items() if title not in _EXPLANATION_FIGURES}
    curves = plotted.pop("Learning curves", None)
    sections = [
        ("Summary", _summary(evaluation, config, source)),
        ("Data report", _data_report(data_report)),
        ("Config", f"<pre>{escape(config_text)}</pre>"),
        ("Training curves", _training(curves, history)),
        ("Metrics", _metrics(evaluation.metrics, evaluation.baseline)),
        ("Plots", "".join(_figure(title, png) for title, png in plotted.items()) or _none("No plots.")),
        ("Slices", _slices(evaluation)),
        ("Explanations", _explanations(evaluation, figures)),
        ("Intended use and limitations", _card(config)),
        ("Environment", _environment(config)),
    ]
    body = "".join(
        f'<section><h2 id="{_anchor(title)}">{title}</h2>{html}</section>' for title, html in sections
    )
    title = escape(f"forgeml model card: {config.name}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head>'
        f"<body><h1>{title}</h1>{body}</body></html>\n"
    )


_EXPLANATION_FIGURES = ("Permutation importance", "Saliency")


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def table(header: Iterable[str], rows: Iterable[Iterable[object]], *, flagged: Iterable[bool] = ()) -> str:
    """An HTML table; cells are escaped, floats shown with 4 significant digits."""
    marks = list(flagged)
    head = "".join(f"<th>{escape(str(cell))}</th>" for cell in header)
    lines = []
    for index, row in enumerate(rows):
        css = ' class="flag"' if index < len(marks) and marks[index] else ""
        lines.append(f"<tr{css}>" + "".join(f"<td>{_cell(cell)}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _cell(value: object) -> str:
    if value is None:
        return '<span class="muted">n/a</span>'
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _figure(title: str, png: bytes) -> str:
    return f'<figure><figcaption>{escape(title)}</figcaption><img alt="{escape(title)}" src="{png_data_uri(png)}"></figure>'


def _none(text: str) -> str:
    return f'<p class="muted">{escape(text)}</p>'


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


def _summary(evaluation: Evaluation, config: Config, source: str) -> str:
    metrics, name = evaluation.metrics, evaluation.metrics.headline[0]
    value = metrics.values[name]
    interval = evaluation.interval
    spread = (
        ""
        if interval is None
        else f" ({interval.level:.0%} interval {interval.low:.4f} to {interval.high:.4f}, {interval.resamples} bootstrap resamples)"
    )
    baseline = evaluation.baseline.values.get(name)
    against = (
        ""
        if baseline is None
        else f"<br>Baseline ({'mean of the training targets' if metrics.task == 'regression' else 'majority class of the training split'}): {baseline:.4f}"
    )
    flagged = len(evaluation.flagged_slices)
    rows = [
        ("task", metrics.task + (f" ({len(metrics.labels)} classes)" if metrics.labels else "")),
        ("evaluated on", source),
        ("test rows", metrics.rows),
        ("model", config.model.type),
        ("slices trailing overall by more than " + f"{config.evaluate.slice_gap:g}", flagged),
    ]
    return f'<p class="headline">{escape(name)}: <b>{value:.4f}</b>{escape(spread)}{against}</p>' + table(
        ("", ""), rows
    )


def _data_report(report: dict[str, Any] | None) -> str:
    if report is None:
        return _none("No data_report.json in the run folder (the check stage did not run or wrote none).")
    scalars = [(key, value) for key, value in report.items() if isinstance(value, str | int | float | bool)]
    html = table(("field", "value"), scalars) if scalars else ""
    findings = report.get("findings")
    if isinstance(findings, list) and findings:
        html += "<h3>Findings</h3><ul>" + "".join(f"<li>{_finding(item)}</li>" for item in findings) + "</ul>"
    elif findings is not None:
        html += _none("No findings.")
    return html or _none("The data report holds no summary fields.")


def _finding(item: object) -> str:
    if isinstance(item, dict):
        return "; ".join(f"<b>{escape(str(key))}</b>: {escape(str(value))}" for key, value in item.items())
    return escape(str(item))


def _training(curves: bytes | None, history: pd.DataFrame | None) -> str:
    if history is None or not len(history):
        return _none("No history.csv in the run folder.")
    html = _figure("Loss per epoch", curves) if curves else ""
    summary = [("epochs", len(history)), ("training seconds", float(history["seconds"].sum()))]
    if "val_loss" in history and history["val_loss"].notna().any():
        best = int(history["val_loss"].idxmin())
        summary.append(
            ("best validation loss", f"{history['val_loss'][best]:.4g} (epoch {history['epoch'][best]})")
        )
    return html + table(("", ""), summary)


def _metrics(metrics: Metrics, baseline: Metrics) -> str:
    rows = [(name, value, baseline.values.get(name)) for name, value in metrics.values.items()]
    html = table(("metric", "model", "baseline"), rows)
    if metrics.per_class:
        per_class = [
            (label, scores["precision"], scores["recall"], scores["f1"], int(scores["support"]))
            for label, scores in metrics.per_class.items()
        ]
        html += "<h3>Per class</h3>" + table(("class", "precision", "recall", "F1", "support"), per_class)
    return html


def _slices(evaluation: Evaluation) -> str:
    if not evaluation.slices:
        return _none("No slices configured. List columns in evaluate.slices (or pass --slices col,...).")
    name = evaluation.metrics.headline[0]
    rows = [
        (item.column, item.value, item.rows, item.metric, item.gap, "trails overall" if item.flagged else "")
        for item in evaluation.slices
    ]
    return table(
        ("column", "value", "rows", name, "gap to overall", ""),
        rows,
        flagged=[item.flagged for item in evaluation.slices],
    )


def _explanations(evaluation: Evaluation, figures: Figures) -> str:
    parts = ["<h3>Permutation importance</h3>"]
    if evaluation.importance:
        parts.append(figure_or_empty(figures, "Permutation importance"))
        parts.append(
            table(("column", "mean drop", "std"), [(i.column, i.mean, i.std) for i in evaluation.importance])
        )
    else:
        parts.append(_none("Off (evaluate.permutation_repeats is 0) or the model has no table columns."))
    parts.append("<h3>Integrated gradients</h3>")
    attributions = evaluation.attributions
    if attributions is None:
        parts.append(_none("No float inputs to attribute."))
        return "".join(parts)
    parts.append(
        f"<p>{escape(attributions.method)}. Signed attributions point towards the predicted class or value.</p>"
    )
    if attributions.columns:
        parts.append(
            table(
                ("column", "mean |attribution|"),
                zip(attributions.columns, map(float, attributions.mean_abs), strict=True),
            )
        )
        rows = [
            (f"row {row}", *map(float, attributions.per_example[i]))
            for i, row in enumerate(attributions.rows)
        ]
        parts.append("<h4>Per example</h4>" + table(("example", *attributions.columns), rows))
    parts.append(figure_or_empty(figures, "Saliency"))
    return "".join(parts)


def with_section(page: str, title: str, body: str) -> str:
    """``page`` (a card from :func:`render_report`) with the section ``title`` added or replaced.

    Later stages (``forgeml compress``) add their section to the card this way; it goes before
    "Intended use and limitations", or at the end of the body.
    """
    start = f'<section><h2 id="{_anchor(title)}">'
    section = f"{start}{title}</h2>{body}</section>"
    if start in page:
        head, _, rest = page.partition(start)
        return head + section + rest.partition("</section>")[2]
    anchor = f'<section><h2 id="{_anchor("Intended use and limitations")}">'
    marker = anchor if anchor in page else "</body>"
    head, _, rest = page.partition(marker)
    return head + section + marker + rest


def figure_or_empty(figures: Figures, title: str) -> str:
    return _figure(title, figures[title]) if title in figures else ""


def _card(config: Config) -> str:
    parts = []
    for title, text in (("Intended use", config.card.intended_use), ("Limitations", config.card.limitations)):
        body = (
            f"<p>{escape(text)}</p>"
            if text.strip()
            else _none(f"Not stated. Set card.{_anchor(title).replace('-', '_')} in the config.")
        )
        parts.append(f"<h3>{title}</h3>{body}")
    return "".join(parts)


def _environment(config: Config) -> str:
    rows: list[tuple[str, object]] = [
        ("generated", datetime.now(timezone.utc).isoformat(timespec="seconds")),
        ("python", platform.python_version()),
    ]
    rows += [(name, _version(name)) for name in PACKAGES]
    rows += [
        ("platform", platform.platform()),
        ("processor", platform.machine()),
        ("CPU cores", os.cpu_count()),
        ("GPU", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"),
        ("seed", config.seed),
    ]
    return table(("", ""), rows)


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
