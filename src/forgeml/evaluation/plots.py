"""Plots for the report, each a small PNG returned as bytes (the report embeds them as base64).

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never pyplot, so
plotting touches no global backend state and works on a machine without a display.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forgeml.evaluation.fonts import plot_fonts

if TYPE_CHECKING:  # matplotlib is imported where a figure is made: a second of start-up serving never needs
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 80
MAX_CURVE_CLASSES = 10  # one-vs-rest curves drawn per class up to this many classes
WRONG_GRID = 16
# Longer tick labels are shortened in the middle: bank_churn's 150-character column names made the
# bars' axes collapse to zero width ("constrained_layout not applied" at every card).
LABEL_CHARS = 40


def short_label(name: str, limit: int = LABEL_CHARS) -> str:
    """``name`` as it fits a tick label: its start and its end (which tells ..._1 from ..._2)."""
    if len(name) <= limit:
        return name
    tail = limit // 3
    return f"{name[: limit - tail - 1]}…{name[-tail:]}"


@contextmanager
def _figure(
    width: float = 4.8, height: float = 3.6, *, rows: int = 1, cols: int = 1
) -> Iterator[tuple[Figure, np.ndarray]]:
    figure = new_figure(width, height)
    axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False)).ravel()
    yield figure, axes


@contextmanager
def _fonts_for(labels: list[str]) -> Iterator[list[str]]:
    """Draw with a font that has the labels' glyphs (see fonts.py); yields the labels made drawable."""
    from matplotlib import rc_context

    families, drawable = plot_fonts(labels)
    with rc_context({"font.family": families}):
        yield [drawable(label) for label in labels]


def new_figure(width: float, height: float) -> Figure:
    """An empty figure drawn by the Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def learning_curves(history: pd.DataFrame, title: str = "loss per epoch") -> bytes:
    """Training and validation loss per epoch, from history.csv (epoch, train_loss, val_loss, seconds)."""
    with _figure() as (figure, (axes,)):
        draw_learning_curves(axes, history, label_prefix="")
        axes.set_title(title)
        return to_png(figure)


def draw_learning_curves(axes: Axes, history: pd.DataFrame, *, label_prefix: str) -> None:
    axes.plot(history["epoch"], history["train_loss"], marker=".", label=f"{label_prefix}train")
    if "val_loss" in history and history["val_loss"].notna().any():
        axes.plot(history["epoch"], history["val_loss"], marker=".", label=f"{label_prefix}validation")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.legend(fontsize="small")


def confusion_matrix(matrix: np.ndarray, labels: list[str]) -> bytes:
    from sklearn.metrics import ConfusionMatrixDisplay

    size = min(3.2 + 0.35 * len(labels), 8.0)
    with _fonts_for(labels) as labels, _figure(size, size) as (figure, (axes,)):
        ConfusionMatrixDisplay(matrix, display_labels=labels).plot(ax=axes, colorbar=False, cmap="Blues")
        axes.set_title("confusion matrix (rows: true class)")
        return to_png(figure)


def roc_and_pr_curves(truth: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> bytes:
    """ROC and precision-recall curves: the positive class for binary, one-vs-rest otherwise."""
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    classes = [1] if len(labels) == 2 else list(range(min(len(labels), MAX_CURVE_CLASSES)))
    with _fonts_for(labels) as labels, _figure(9.0, 3.8, cols=2) as (figure, (roc_axes, pr_axes)):
        for index in classes:
            positive = (truth == index).astype(int)
            if positive.min() == positive.max():
                continue  # a class absent from the test rows has no curve
            name = labels[index]
            RocCurveDisplay.from_predictions(positive, probabilities[:, index], name=name, ax=roc_axes)
            PrecisionRecallDisplay.from_predictions(positive, probabilities[:, index], name=name, ax=pr_axes)
        roc_axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
        roc_axes.set_title("ROC")
        pr_axes.set_title("precision-recall")
        for axes in (roc_axes, pr_axes):
            if axes.get_legend():
                axes.legend(fontsize="x-small")
        return to_png(figure)


def calibration(truth: np.ndarray, probabilities: np.ndarray) -> bytes:
    """Reliability diagram: binary on the positive class, otherwise top-class confidence vs accuracy."""
    from sklearn.calibration import calibration_curve

    if probabilities.shape[1] == 2:
        hits, confidence, label = (truth == 1).astype(int), probabilities[:, 1], "positive class"
    else:
        hits = (probabilities.argmax(axis=1) == truth).astype(int)
        confidence, label = probabilities.max(axis=1), "top class"
    observed, predicted = calibration_curve(hits, confidence, n_bins=10, strategy="uniform")
    with _figure() as (figure, (axes,)):
        axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
        axes.plot(predicted, observed, marker="o", label=label)
        axes.set_xlabel("predicted probability")
        axes.set_ylabel("observed frequency")
        axes.set_title("calibration")
        axes.legend(fontsize="small")
        return to_png(figure)


def regression_diagnostics(truth: np.ndarray, predicted: np.ndarray) -> bytes:
    """Residuals vs predicted, and predicted vs actual with the identity line."""
    with _figure(9.0, 3.8, cols=2) as (figure, (residual_axes, fit_axes)):
        residual_axes.scatter(predicted, truth - predicted, s=10, alpha=0.6)
        residual_axes.axhline(0, color="grey", linestyle=":")
        residual_axes.set_xlabel("predicted")
        residual_axes.set_ylabel("residual (actual - predicted)")
        residual_axes.set_title("residuals")
        fit_axes.scatter(truth, predicted, s=10, alpha=0.6)
        low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
        fit_axes.plot([low, high], [low, high], color="grey", linestyle=":")
        fit_axes.set_xlabel("actual")
        fit_axes.set_ylabel("predicted")
        fit_axes.set_title("predicted vs actual")
        return to_png(figure)


def bar_chart(names: list[str], values: list[float], errors: list[float] | None, title: str) -> bytes:
    """Horizontal bars, first name on top (used for permutation importance and attributions)."""
    height = min(1.5 + 0.25 * len(names), 9.0)
    with _fonts_for(names) as names, _figure(5.5, height) as (figure, (axes,)):
        positions = np.arange(len(names))[::-1]
        axes.barh(positions, values, xerr=errors, color="tab:blue")
        axes.set_yticks(positions, [short_label(name) for name in names], fontsize="small")
        axes.axvline(0, color="grey", linewidth=0.8)
        axes.set_title(title)
        return to_png(figure)


def image_grid(images: np.ndarray, captions: list[str], title: str, *, cmap: str = "gray") -> bytes:
    """Images (N, C, H, W) or maps (N, H, W) in a grid with a caption under each."""
    count = len(images)
    cols = min(count, 8)
    rows = max(1, -(-count // cols))
    with (
        _fonts_for(captions) as captions,
        _figure(1.3 * cols + 0.4, 1.5 * rows + 0.5, rows=rows, cols=cols) as (figure, axes),
    ):
        for index, axis in enumerate(axes):
            axis.axis("off")
            if index < count:
                axis.imshow(_displayable(images[index]), cmap=cmap)
                axis.set_title(captions[index], fontsize="x-small")
        figure.suptitle(title, fontsize="small")
        return to_png(figure)


def confidently_wrong(
    images: np.ndarray, truth: np.ndarray, probabilities: np.ndarray, labels: list[str]
) -> bytes | None:
    """The test images the model got wrong with the highest confidence; None if none are wrong."""
    guess = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(guess != truth)
    if not len(wrong):
        return None
    order = wrong[np.argsort(-probabilities[wrong, guess[wrong]])][:WRONG_GRID]
    captions = [
        f"true {labels[truth[i]]}, said {labels[guess[i]]} ({probabilities[i, guess[i]]:.0%})" for i in order
    ]
    return image_grid(images[order], captions, "most confidently wrong test images")


def saliency_grid(images: np.ndarray, saliency: np.ndarray, captions: list[str]) -> bytes:
    """Each image above its integrated-gradients saliency map."""
    count = len(images)
    with (
        _fonts_for(captions) as captions,
        _figure(1.4 * count + 0.4, 3.4, rows=2, cols=count) as (figure, axes),
    ):
        for index in range(count):
            axes[index].imshow(_displayable(images[index]), cmap="gray")
            axes[index].set_title(captions[index], fontsize="x-small")
            axes[count + index].imshow(saliency[index], cmap="hot")
            axes[index].axis("off")
            axes[count + index].axis("off")
        figure.suptitle("integrated gradients: input (top), |attribution| (bottom)", fontsize="small")
        return to_png(figure)


def _displayable(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) grey or (H, W, C) colour scaled to 0..1; (H, W) maps pass through."""
    if image.ndim == 2:
        return image
    if image.shape[0] == 1:
        return image[0]
    colour = np.moveaxis(image[:3], 0, -1).astype(np.float64)
    span = colour.max() - colour.min()
    return (colour - colour.min()) / span if span > 0 else np.zeros_like(colour)
