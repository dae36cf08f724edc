"""The headline interval is scipy.stats.bootstrap's percentile interval of headline_score."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from forgeml.evaluation import bootstrap_interval
from forgeml.evaluation.metrics import headline_score

RNG = np.random.default_rng(0)
TRUTH_CLASSES = RNG.integers(0, 3, 400)
TRUTH_VALUES = RNG.normal(size=400)
CASES = [
    ("multiclass", TRUTH_CLASSES, np.where(RNG.random(400) < 0.8, TRUTH_CLASSES, RNG.integers(0, 3, 400))),
    ("regression", TRUTH_VALUES, TRUTH_VALUES + RNG.normal(scale=0.5, size=400)),
]


@pytest.mark.parametrize(("task", "truth", "predicted"), CASES)
def test_interval_matches_a_direct_scipy_call(task: str, truth: np.ndarray, predicted: np.ndarray) -> None:
    ours = bootstrap_interval(task, truth, predicted, resamples=300, seed=5)
    direct = stats.bootstrap(
        (truth, predicted),
        lambda t, p: headline_score(task, t, p),  # one resample at a time, scored by sklearn
        paired=True,
        vectorized=False,
        n_resamples=300,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(5),
    ).confidence_interval
    assert ours is not None and (ours.level, ours.resamples) == (0.95, 300)
    assert (ours.low, ours.high) == pytest.approx((direct.low, direct.high), abs=1e-12)
    assert ours.low < headline_score(task, truth, predicted) < ours.high


def test_constant_targets_give_a_finite_interval() -> None:
    """R² of a resample whose targets are all equal is sklearn's finite 0 or 1, as in headline_score."""
    interval = bootstrap_interval(
        "regression", np.ones(5), np.array([1.0, 1.0, 1.0, 1.0, 2.0]), resamples=50, seed=0
    )
    assert interval is not None and np.isfinite([interval.low, interval.high]).all()
