"""Metrics computed with scikit-learn on decoded predictions, written as versioned JSON.

Every number here comes from ``sklearn.metrics`` except the expected calibration error, which
scikit-learn does not offer. A metric that is undefined on the given rows (ROC-AUC with one class
present, MAPE with a zero target) is left out rather than written as NaN, which JSON cannot hold.

scikit-learn is imported inside the functions that score: it pulls in scipy (seconds at start-up),
and `forgeml serve` and `forgeml predict` import this package without ever scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forgeml.data import TaskInfo
from forgeml.features import Decoded

# 2 added per_class, baseline, headline interval, slices and explanations; every v1 key is unchanged.
METRICS_SCHEMA_VERSION = 2
CALIBRATION_BINS = 15
Label = str | int | float | bool


@dataclass(frozen=True)
class Metrics:
    """Headline and supporting metrics on one row set; ``confusion_matrix`` rows are true classes.

    ``per_class`` maps each label (as text) to its precision, recall, F1 and support.
    """

    task: str
    rows: int
    values: dict[str, float]
    labels: tuple[Label, ...] = ()
    confusion_matrix: tuple[tuple[int, ...], ...] | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def headline(self) -> tuple[str, float]:
        name = headline_name(self.task)
        return name, self.values[name]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": METRICS_SCHEMA_VERSION,
            "task": self.task,
            "rows": self.rows,
            "metrics": self.values,
            "labels": list(self.labels),
            "confusion_matrix": None
            if self.confusion_matrix is None
            else [list(row) for row in self.confusion_matrix],
            "per_class": self.per_class,
        }


def headline_name(task: str) -> str:
    """The one number a report leads with: R² for regression, accuracy for classifiers."""
    return "r2" if task == "regression" else "accuracy"


def headline_score(task: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """The headline metric alone; ``truth``/``predicted`` are values (regression) or class indices."""
    from sklearn import metrics as skm

    if task == "regression":
        return float(skm.r2_score(truth, predicted)) if len(truth) > 1 else float("nan")
    return float(skm.accuracy_score(truth, predicted))


def compute_metrics(task: TaskInfo, truth: np.ndarray, predicted: Decoded) -> Metrics:
    """Every metric of the task: see :func:`regression_values` and :func:`classification_metrics`."""
    if task.kind == "regression":
        truth = np.asarray(truth, dtype=np.float64)
        return Metrics(task.kind, len(truth), regression_values(truth, np.asarray(predicted.values, float)))
    return classification_metrics(task, class_indices(task, truth), predicted)


def regression_values(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE, MAPE (when no target is zero), R² and residual statistics (truth - predicted)."""
    from sklearn import metrics as skm

    residuals = truth - predicted
    values = {
        "mse": float(skm.mean_squared_error(truth, predicted)),
        "rmse": float(skm.root_mean_squared_error(truth, predicted)),
        "mae": float(skm.mean_absolute_error(truth, predicted)),
        "median_absolute_error": float(skm.median_absolute_error(truth, predicted)),
        "explained_variance": float(skm.explained_variance_score(truth, predicted)),
    }
    if not np.any(truth == 0):  # MAPE divides by the target: undefined at 0, so left out
        values["mape"] = float(skm.mean_absolute_percentage_error(truth, predicted))
    if len(truth) > 1:
        values["r2"] = float(skm.r2_score(truth, predicted))
    values |= {
        "residual_mean": float(residuals.mean()),
        "residual_std": float(residuals.std()),
        "residual_median": float(np.median(residuals)),
        "residual_max_abs": float(np.abs(residuals).max()),
    }
    return values


def class_indices(task: TaskInfo, labels: np.ndarray | pd.Series) -> np.ndarray:
    """Labels as int64 positions in ``task.labels``.

    Scoring runs on indices: sklearn rejects object arrays mixing label types, and indices are exact.
    """
    index_of = {label: index for index, label in enumerate(task.labels)}
    values = labels.to_numpy() if isinstance(labels, pd.Series) else labels
    return np.fromiter((index_of[_plain(label)] for label in values), dtype=np.int64, count=len(values))


def predicted_indices(task: TaskInfo, predicted: Decoded) -> np.ndarray:
    if predicted.probabilities is not None:
        return predicted.probabilities.argmax(axis=1)
    return class_indices(task, predicted.values)


def classification_metrics(task: TaskInfo, truth: np.ndarray, predicted: Decoded) -> Metrics:
    """Accuracy, balanced accuracy, precision/recall/F1 (per class, macro, weighted), the confusion matrix,
    and from the probabilities ROC-AUC, PR-AUC (binary, or one-vs-rest macro), log loss, Brier score and ECE.
    """
    from sklearn import metrics as skm

    guess = predicted_indices(task, predicted)
    classes = np.arange(len(task.labels))
    values = {
        "accuracy": float(skm.accuracy_score(truth, guess)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(truth, guess)),
    }
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            truth, guess, labels=classes, average=average, zero_division=0
        )
        values |= {
            f"{average}_precision": float(precision),
            f"{average}_recall": float(recall),
            f"{average}_f1": float(f1),
        }
    if predicted.probabilities is not None:
        values |= probability_values(truth, predicted.probabilities, len(classes))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        truth, guess, labels=classes, average=None, zero_division=0
    )
    per_class = {
        str(label): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": float(support[i]),
        }
        for i, label in enumerate(task.labels)
    }
    matrix = skm.confusion_matrix(truth, guess, labels=classes)
    return Metrics(
        task.kind,
        len(truth),
        values,
        task.labels,
        tuple(tuple(int(cell) for cell in row) for row in matrix),
        per_class,
    )


def probability_values(truth: np.ndarray, probabilities: np.ndarray, n_classes: int) -> dict[str, float]:
    """Scores that read the probabilities; ranking scores need both classes present, so may be absent."""
    from sklearn import metrics as skm
    from sklearn.preprocessing import label_binarize

    classes = np.arange(n_classes)
    values = {
        "log_loss": float(skm.log_loss(truth, probabilities, labels=classes)),
        "expected_calibration_error": expected_calibration_error(truth, probabilities),
    }
    if n_classes == 2:
        values["brier"] = float(skm.brier_score_loss(truth, probabilities[:, 1], pos_label=1))
        if len(np.unique(truth)) == 2:
            values["roc_auc"] = float(skm.roc_auc_score(truth, probabilities[:, 1]))
            values["pr_auc"] = float(skm.average_precision_score(truth, probabilities[:, 1]))
        return values
    values["brier"] = float(skm.brier_score_loss(truth, probabilities, labels=classes))
    if len(np.unique(truth)) == n_classes:  # one-vs-rest needs every class present
        values["roc_auc"] = float(
            skm.roc_auc_score(truth, probabilities, multi_class="ovr", average="macro", labels=classes)
        )
        values["pr_auc"] = float(
            skm.average_precision_score(
                label_binarize(truth, classes=classes), probabilities, average="macro"
            )
        )
    return values


def expected_calibration_error(
    truth: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Top-label ECE: the row-weighted mean gap between confidence and accuracy over equal-width bins."""
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == truth).astype(np.float64)
    # Bin i holds confidences in (i/bins, (i+1)/bins]; the top class always has confidence > 0.
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for index in np.unique(which):
        members = which == index
        total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(truth))


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value
