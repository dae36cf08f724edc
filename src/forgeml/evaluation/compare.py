"""Compare runs side by side: one self-contained HTML page (``templates/compare.html.j2``) with each
run's metrics and loss curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forgeml import atomic, templates
from forgeml.errors import DataError
from forgeml.evaluation import plots
from forgeml.evaluation.report import png_data_uri
from forgeml.evaluation.run import read_history


def compare_runs(run_dirs: list[Path], output: Path) -> Path:
    """Write ``output``: a metrics table (one column per run) and every run's curves; returns ``output``.

    Each run folder needs ``metrics.json`` (written by ``forgeml evaluate``); history.csv is optional.
    """
    if not run_dirs:
        raise DataError("compare needs at least one run folder, e.g. forgeml compare runs/a runs/b.")
    runs = [(Path(run_dir), _read_metrics(Path(run_dir))) for run_dir in run_dirs]
    names = _unique_names([run_dir for run_dir, _ in runs])
    atomic.write_text(output, _render(names, runs))
    return output


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise DataError(
            f"{run_dir}: no metrics.json. Run `forgeml evaluate {run_dir}` first, or check the run folder path.",
            path=str(path),
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}). Re-run forgeml evaluate.", path=str(path)) from None
    return document


def _unique_names(run_dirs: list[Path]) -> list[str]:
    """Folder names, made unique with their parent where two runs share a name."""
    names = [run_dir.name or str(run_dir) for run_dir in run_dirs]
    return [
        f"{run_dir.parent.name}/{name}" if names.count(name) > 1 else name
        for run_dir, name in zip(run_dirs, names, strict=True)
    ]


def _render(names: list[str], runs: list[tuple[Path, dict[str, Any]]]) -> str:
    documents = [document for _, document in runs]
    keys: list[str] = []
    for document in documents:
        keys += [key for key in document.get("metrics", {}) if key not in keys]
    rows: list[list[object]] = [
        ["task", *(document.get("task") for document in documents)],
        ["rows", *(document.get("rows") for document in documents)],
    ]
    if any(_interval_text(document) for document in documents):
        name = _headline_name(documents)
        rows.append([f"{name} interval", *(_interval_text(document) for document in documents)])
    rows += [[key, *(document.get("metrics", {}).get(key) for document in documents)] for key in keys]
    rows.append(["baseline " + _headline_name(documents), *(_baseline(document) for document in documents)])
    curves = []
    for name, (run_dir, _) in zip(names, runs, strict=True):
        history = read_history(run_dir)
        present = history is not None and len(history)
        curves.append((name, png_data_uri(plots.learning_curves(history, title=name)) if present else None))
    return templates.render(
        "compare.html.j2",
        header=("metric", *names),
        rows=rows,
        overlay=_overlay(names, [run_dir for run_dir, _ in runs]),
        runs=curves,
    )


def _overlay(names: list[str], run_dirs: list[Path]) -> str | None:
    """Every run's validation (or training) loss on one set of axes, as a PNG data URI; None without history."""
    histories = [(name, read_history(run_dir)) for name, run_dir in zip(names, run_dirs, strict=True)]
    present = [(name, history) for name, history in histories if history is not None and len(history)]
    if not present:
        return None
    figure = plots.new_figure(6.4, 3.8)
    axes = figure.subplots()
    for name, history in present:
        column = "val_loss" if history["val_loss"].notna().any() else "train_loss"
        axes.plot(history["epoch"], history[column], marker=".", label=f"{name} ({column})")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.legend(fontsize="small")
    return png_data_uri(plots.to_png(figure))


def _headline_name(documents: list[dict[str, Any]]) -> str:
    for document in documents:
        if document.get("headline"):
            return str(document["headline"]["name"])
    return "headline"


def _interval_text(document: dict[str, Any]) -> str | None:
    interval = (document.get("headline") or {}).get("interval")
    return None if not interval else f"{interval['low']:.4f} to {interval['high']:.4f}"


def _baseline(document: dict[str, Any]) -> float | None:
    value = (document.get("headline") or {}).get("baseline")
    return None if value is None else float(value)
