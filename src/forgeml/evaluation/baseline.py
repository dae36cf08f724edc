"""How sure the headline is and what it beats: a bootstrap interval and a trivial baseline.

The bootstrap resamples test rows with replacement (seeded, so a report is repeatable) and takes
the percentile interval of the headline metric. The baseline predicts without looking at the inputs:
the training split's majority class (with its class frequencies as probabilities) or its mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forgeml.data import TaskInfo
from forgeml.evaluation.metrics import Metrics, class_indices, compute_metrics, headline_score
from forgeml.features import Decoded

CONFIDENCE_LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval: ``low``..``high`` at ``level`` from ``resamples`` draws."""

    low: float
    high: float
    level: float
    resamples: int

    def to_json(self) -> dict[str, float | int]:
        return {"low": self.low, "high": self.high, "level": self.level, "resamples": self.resamples}


def bootstrap_interval(
    task: str,
    truth: np.ndarray,
    predicted: np.ndarray,
    *,
    resamples: int,
    seed: int,
    level: float = CONFIDENCE_LEVEL,
) -> Interval | None:
    """The headline metric's interval; ``truth``/``predicted`` are values or class indices. None if off."""
    if resamples == 0 or len(truth) < 2:
        return None
    rng = np.random.default_rng(seed)
    scores = np.empty(resamples)
    for draw in range(resamples):
        rows = rng.integers(0, len(truth), len(truth))
        scores[draw] = headline_score(task, truth[rows], predicted[rows])
    scores = scores[np.isfinite(scores)]  # R² of a resample whose targets are all equal is undefined
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return Interval(float(low), float(high), level, resamples)


def baseline_metrics(task: TaskInfo, train_target: pd.Series, truth: np.ndarray) -> Metrics:
    """Metrics of a predictor that ignores the inputs, fitted on ``train_target``, scored on ``truth``."""
    rows = len(truth)
    if task.kind == "regression":
        mean = float(train_target.to_numpy(dtype=np.float64).mean())
        return compute_metrics(task, truth, Decoded(np.full(rows, mean), None))
    counts = np.bincount(class_indices(task, train_target), minlength=len(task.labels))
    frequencies = counts / counts.sum()
    # argmax of the frequencies is the majority class: the constant prediction and its probabilities agree.
    probabilities = np.tile(frequencies, (rows, 1))
    labels = np.asarray(task.labels, dtype=object)[probabilities.argmax(axis=1)]
    return compute_metrics(task, truth, Decoded(labels, probabilities))
