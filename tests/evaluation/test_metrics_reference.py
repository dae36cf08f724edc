"""Reference test: our metrics equal scikit-learn's functions on the same predictions."""

import numpy as np
import pytest
from sklearn import metrics as skm

from forgeml.data import TaskInfo
from forgeml.evaluation import compute_metrics
from forgeml.features import Decoded


def test_classification_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    labels = ("cat", "dog", "eel")
    truth = rng.choice(labels, 300)
    probabilities = rng.dirichlet(np.ones(3), 300)
    predicted = np.asarray(labels, dtype=object)[probabilities.argmax(1)]
    metrics = compute_metrics(TaskInfo("classification", labels), truth, Decoded(predicted, probabilities))
    assert metrics.values["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert metrics.values["macro_f1"] == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    assert np.array_equal(
        np.array(metrics.confusion_matrix), skm.confusion_matrix(truth, predicted, labels=list(labels))
    )


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(1)
    truth, predicted = rng.normal(size=100), rng.normal(size=100)
    values = compute_metrics(TaskInfo("regression"), truth, Decoded(predicted, None)).values
    assert values["mse"] == pytest.approx(skm.mean_squared_error(truth, predicted))
    assert values["mae"] == pytest.approx(skm.mean_absolute_error(truth, predicted))
    assert values["r2"] == pytest.approx(skm.r2_score(truth, predicted))
