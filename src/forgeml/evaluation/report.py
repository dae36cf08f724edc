"""The model card: one self-contained ``report.html`` a founder can read without running anything.

Plots are PNGs inlined as base64 data URIs and the style sheet is inline, so the file opens offline
and loads nothing from the network (no JS; the one font it may carry, the CJK characters it shows,
is inline too: fonts.py). Texts (the most confidently wrong ones, token attributions) are HTML, not
images, so any script renders and can be copied. The markup is the Jinja2 template
``templates/model_card.html.j2``, autoescaped, so every user-supplied text (column names, labels,
config, card text, data report, test texts) is escaped by Jinja2; this module only gathers what it
shows. The sections run in the order a reader asks: how good (summary, metrics against the baseline,
plots, slices), why (explanations), on what data (data report), then the config, folded.
"""

from __future__ import annotations

import base64
import os
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from markupsafe import Markup

from forgeml import templates
from forgeml.config import Config
from forgeml.evaluation.fonts import card_font_face
from forgeml.evaluation.tokens import Piece

if TYPE_CHECKING:
    from forgeml.evaluation.run import Evaluation

Figures = dict[str, bytes]
PACKAGES = ("forgeml", "torch", "numpy", "pandas", "scikit-learn", "matplotlib", "captum")


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
    page = templates.render(
        "model_card.html.j2",
        title=f"forgeml model card: {config.name}",
        summary=_summary(evaluation, config, source),
        data_report=_data_report(data_report),
        config_text=config_text,
        training=_training(curves, history),
        metrics=_metrics(evaluation),
        leaderboard=_leaderboard(evaluation),
        privacy=evaluation.privacy,
        plots={title: png_data_uri(png) for title, png in plotted.items()},
        slices=_slices(evaluation),
        importance=_importance(evaluation, figures),
        attributions=_attributions(evaluation, figures),
        wrong_texts=[
            (f"row {item.row + 1}", item.truth, item.said, f"{item.confidence:.0%}", item.text)
            for item in evaluation.wrong_texts
        ],
        images=evaluation.images,
        card=[
            (title, text, f"card.{setting}")
            for title, text, setting in (
                ("Intended use", config.card.intended_use, "intended_use"),
                ("Limitations", config.card.limitations, "limitations"),
            )
        ],
        environment=_environment(config),
    )
    font_face = card_font_face(page)
    return page.replace("</style>", font_face + "</style>", 1) if font_face else page


_EXPLANATION_FIGURES = ("Permutation importance", "Saliency")


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _summary(evaluation: Evaluation, config: Config, source: str) -> dict[str, Any]:
    metrics, name = evaluation.metrics, evaluation.metrics.headline[0]
    rows = [
        ("task", metrics.task + (f" ({len(metrics.labels)} classes)" if metrics.labels else "")),
        ("evaluated on", source),
        ("test rows", metrics.rows),
        ("model", config.model.type),
        (
            "slices trailing overall by more than " + f"{config.evaluate.slice_gap:g}",
            len(evaluation.flagged_slices),
        ),
    ]
    return {
        "name": name,
        "value": metrics.values[name],
        "interval": evaluation.interval,
        "baseline": evaluation.baseline.values.get(name),
        "baseline_kind": "mean of the training targets"
        if metrics.task == "regression"
        else "majority class of the training split",
        "rows": rows,
    }


def _data_report(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The summary fields and findings of ``data_report.json`` (None when there is none)."""
    if report is None:
        return None
    findings = report.get("findings")
    return {
        "scalars": [
            (key, value) for key, value in report.items() if isinstance(value, str | int | float | bool)
        ],
        "findings": findings if isinstance(findings, list) else [],
        "findings_absent": findings is None,
    }


def _training(curves: bytes | None, history: pd.DataFrame | None) -> dict[str, Any] | None:
    if history is None or not len(history):
        return None
    rows: list[tuple[str, object]] = [
        ("epochs", len(history)),
        ("training seconds", float(history["seconds"].sum())),
    ]
    if "val_loss" in history and history["val_loss"].notna().any():
        best = int(history["val_loss"].idxmin())
        rows.append(
            ("best validation loss", f"{history['val_loss'][best]:.4g} (epoch {history['epoch'][best]})")
        )
    return {"curves": png_data_uri(curves) if curves else None, "rows": rows}


def _metrics(evaluation: Evaluation) -> dict[str, Any]:
    metrics, baseline, interval = evaluation.metrics, evaluation.baseline, evaluation.interval
    headline = metrics.headline[0]

    def spread(name: str) -> str | None:
        if interval is None or name != headline:
            return None
        return f"{interval.low:.4f} to {interval.high:.4f}"

    return {
        "rows": [
            (name, value, spread(name), baseline.values.get(name)) for name, value in metrics.values.items()
        ],
        "interval_level": f"{interval.level:.0%} interval" if interval else "interval",
        "per_class": [
            (label, scores["precision"], scores["recall"], scores["f1"], int(scores["support"]))
            for label, scores in metrics.per_class.items()
        ],
    }


def _leaderboard(evaluation: Evaluation) -> dict[str, Any]:
    """The auto leaderboard's table rows (none for a single model)."""
    regression = evaluation.metrics.task == "regression"
    columns = ("model", "type", "weight", "validation_loss", "test_metric", "test_loss")
    seconds = ("fit_seconds", "predict_seconds", "test_predict_seconds")
    return {
        "metric": evaluation.metrics.headline[0],
        "loss": "MSE" if regression else "log loss",
        "averaged": "predictions" if regression else "probabilities",
        "rows": [
            (*(row[name] for name in columns), *(_seconds(row[name]) for name in seconds), row["note"])
            for row in evaluation.leaderboard
        ],
    }


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:.3f}"


def _slices(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "metric": evaluation.metrics.headline[0],
        "rows": [
            (
                item.column,
                item.value,
                item.rows,
                item.metric,
                item.gap,
                "trails overall" if item.flagged else "",
            )
            for item in evaluation.slices
        ],
        "flagged": [item.flagged for item in evaluation.slices],
    }


def _importance(evaluation: Evaluation, figures: Figures) -> dict[str, Any]:
    return {
        "figure": _figure_uri(figures, "Permutation importance"),
        "rows": [(i.column, i.mean, i.std) for i in evaluation.importance],
    }


def _attributions(evaluation: Evaluation, figures: Figures) -> dict[str, Any]:
    """Integrated gradients for the card; ``missing`` says why there are none."""
    attributions = evaluation.attributions
    if attributions is None or attributions.not_computed:
        return {"missing": attributions.not_computed if attributions else "No float inputs to attribute."}
    columns = attributions.columns  # none for an image model: its attributions are the saliency maps
    return {
        "missing": "",
        "method": attributions.method,
        "text_method": attributions.text_method,
        "texts": [
            {
                "row": f"row {text.row + 1}",
                "column": text.column,
                "said": text.said,
                "pieces": _shaded(text.pieces),
            }
            for text in attributions.texts
        ],
        "columns": columns,
        "mean_abs": list(zip(columns, map(float, attributions.mean_abs), strict=True)),
        "per_example_header": ("example", *columns),
        "per_example": [
            (f"row {row}", *map(float, attributions.per_example[i]))
            for i, row in enumerate(attributions.rows)
        ]
        if columns
        else [],
        "saliency": _figure_uri(figures, "Saliency"),
    }


def _shaded(pieces: tuple[Piece, ...]) -> list[tuple[str, str, str]]:
    """(text, inline style, tooltip) per piece: green towards the prediction, red against, by |weight|."""
    largest = max((abs(weight) for _, weight in pieces if weight is not None), default=0.0) or 1.0
    shaded = []
    for text, weight in pieces:
        if weight is None:
            shaded.append((text, "", ""))
            continue
        alpha = 0.75 * abs(weight) / largest
        colour = "22,163,74" if weight >= 0 else "220,38,38"
        shaded.append((text, f"background:rgba({colour},{alpha:.2f})", f"{weight:+.4g}"))
    return shaded


def _figure_uri(figures: Figures, title: str) -> str | None:
    return png_data_uri(figures[title]) if title in figures else None


def with_section(page: str, title: str, body: str) -> str:
    """``page`` (a card from :func:`render_report`) with the section ``title`` added or replaced.

    Later stages (``forgeml compress``) add their section to the card this way; it goes before
    "Intended use and limitations", or at the end of the body. ``body`` is HTML (from a template).
    """
    start = f'<section><h2 id="{_anchor(title)}">'  # what the template's section macro writes
    section = str(templates.macro("_macros.html.j2", "section")(title, Markup(body)))
    if start in page:
        head, _, rest = page.partition(start)
        return head + section + rest.partition("</section>")[2]
    anchor = f'<section><h2 id="{_anchor("Intended use and limitations")}">'
    marker = anchor if anchor in page else "</body>"
    head, _, rest = page.partition(marker)
    return head + section + marker + rest


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


def _environment(config: Config) -> list[tuple[str, object]]:
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
    return rows


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
