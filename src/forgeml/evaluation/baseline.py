"""How sure the headline is and what it beats: a bootstrap interval and a trivial baseline.

The bootstrap (``scipy.stats.bootstrap``) resamples test rows with replacement (seeded, so a report
is repeatable) and takes the percentile interval of the headline metric. The baseline predicts
without looking at the inputs: the training split's majority class (with its class frequencies as
probabilities) or its mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from forgeml.data import TaskInfo
from forgeml.evaluation.metrics import Metrics, class_indices, compute_metrics
from forgeml.features import Decoded

CONFIDENCE_LEVEL = 0.95
RESAMPLED_VALUES = 2_000_000  # rows x resamples scored at once: bounds memory (~50 MB) on large test sets


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
    """The headline metric's interval; ``truth``/``predicted`` are values or class indices. None if off.

    ``scipy.stats.bootstrap``, paired (a resample keeps each row's truth and prediction together),
    percentile method. Percentile rather than BCa: it keeps what the card has always reported (the
    same numbers for the same seed), and BCa needs a jackknife (one score per left-out row) and is
    undefined when every resample scores the same (a test set predicted perfectly). Scored a batch
    of resamples at a time (``vectorized``). Measured on 10,000 rows, 1,000 resamples, best of 3 on
    2 shared cores: accuracy 0.09 s and R² 0.24 s, against 1.14 s and 0.47 s for the hand-written
    loop it replaces (one resample at a time, same numbers), and 1.74 s and 2.55 s for BCa.
    """
    if resamples == 0 or len(truth) < 2:
        return None
    result = stats.bootstrap(
        (np.asarray(truth), np.asarray(predicted)),
        _batch_score(task),
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        batch=max(1, RESAMPLED_VALUES // len(truth)),
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return Interval(float(low), float(high), level, resamples)


def _batch_score(task: str) -> Callable[..., np.ndarray]:
    """The headline metric of each resample along ``axis``, as :func:`headline_score` scores one."""
    from sklearn import metrics as skm

    def accuracy(truth: np.ndarray, predicted: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(truth == predicted, axis=axis)

    def r2(truth: np.ndarray, predicted: np.ndarray, axis: int = -1) -> np.ndarray:
        # each resample one output column: sklearn's R² per output, finite like headline_score's
        # (0 or 1 for a resample whose targets are all equal)
        columns = np.moveaxis(np.atleast_2d(truth), axis, 0), np.moveaxis(np.atleast_2d(predicted), axis, 0)
        return skm.r2_score(*columns, multioutput="raw_values")

    return r2 if task == "regression" else accuracy


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
