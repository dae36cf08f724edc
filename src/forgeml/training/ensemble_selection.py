"""Greedy ensemble selection with replacement (Caruana et al., 2004), as AutoGluon builds its ensembles.

Start from nothing; at each of ``rounds`` steps add the candidate (again, if it is already in) whose
addition gives the lowest validation loss of the averaged predictions. A candidate's weight is how
often it was added, over the number of steps. As in the paper, the ensemble kept is the best of the
nested ones seen along the way, so its validation loss is never above the best single candidate's
(the first step picks that candidate). Ties go to the candidate listed first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PROBABILITY_FLOOR = 1e-15  # log loss of a probability of 0 would be infinite (scikit-learn clips alike)


@dataclass(frozen=True)
class Selection:
    """Integer ``counts`` per candidate, the normalized ``weights`` and the ensemble's validation ``loss``."""

    counts: tuple[int, ...]
    weights: tuple[float, ...]
    loss: float


def validation_loss(predictions: np.ndarray, truth: np.ndarray, *, regression: bool) -> float:
    """Mean squared error (regression, standardized units) or log loss of ``(N, K)`` probabilities."""
    if regression:
        return float(np.mean((predictions.reshape(len(truth)) - truth) ** 2))
    chosen = predictions[np.arange(len(truth)), truth.astype(np.int64)]
    return float(-np.mean(np.log(np.clip(chosen, PROBABILITY_FLOOR, 1.0))))


def select_ensemble(
    predictions: Sequence[np.ndarray], truth: np.ndarray, *, regression: bool, rounds: int = 25
) -> Selection:
    """Weights over ``predictions`` (each candidate's validation probabilities or values) by greedy selection."""
    assert predictions, "at least one candidate"
    counts = np.zeros(len(predictions), dtype=np.int64)
    total = np.zeros_like(predictions[0], dtype=np.float64)
    best: Selection | None = None
    for step in range(1, rounds + 1):
        losses = [
            validation_loss((total + candidate) / step, truth, regression=regression)
            for candidate in predictions
        ]
        chosen = int(np.argmin(losses))
        counts[chosen] += 1
        total += predictions[chosen]
        if best is None or losses[chosen] < best.loss:
            weights = counts / counts.sum()
            best = Selection(tuple(int(c) for c in counts), tuple(float(w) for w in weights), losses[chosen])
    assert best is not None
    return best
