"""Metrics computed with scikit-learn on decoded predictions, written as versioned JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from forgeml.data import TaskInfo
from forgeml.features import Decoded

METRICS_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Metrics:
    """Headline and supporting metrics on one row set; ``confusion_matrix`` rows are true classes."""

    task: str
    rows: int
    values: dict[str, float]
    labels: tuple[str | int | float | bool, ...] = ()
    confusion_matrix: tuple[tuple[int, ...], ...] | None = None

    @property
    def headline(self) -> tuple[str, float]:
        name = "r2" if self.task == "regression" else "accuracy"
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
        }


def compute_metrics(task: TaskInfo, truth: np.ndarray, predicted: Decoded) -> Metrics:
    """Classification: accuracy, macro-F1, confusion matrix. Regression: MSE, MAE, R²."""
    if task.kind == "regression":
        values = {
            "mse": float(skm.mean_squared_error(truth, predicted.values)),
            "mae": float(skm.mean_absolute_error(truth, predicted.values)),
            "r2": float(skm.r2_score(truth, predicted.values)),
        }
        return Metrics(task.kind, len(truth), values)
    # Score on class indices: sklearn rejects object arrays mixing label types, and indices are exact.
    index_of = {label: index for index, label in enumerate(task.labels)}
    true_index = np.fromiter((index_of[_plain(label)] for label in truth), dtype=np.int64, count=len(truth))
    predicted_index = (
        predicted.probabilities.argmax(axis=1)
        if predicted.probabilities is not None
        else np.fromiter((index_of[label] for label in predicted.values), dtype=np.int64, count=len(truth))
    )
    classes = np.arange(len(task.labels))
    values = {
        "accuracy": float(skm.accuracy_score(true_index, predicted_index)),
        "macro_f1": float(
            skm.f1_score(true_index, predicted_index, labels=classes, average="macro", zero_division=0)
        ),
    }
    matrix = skm.confusion_matrix(true_index, predicted_index, labels=classes)
    return Metrics(
        task.kind, len(truth), values, task.labels, tuple(tuple(int(cell) for cell in row) for row in matrix)
    )


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value
