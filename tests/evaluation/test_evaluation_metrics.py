"""Unit reference tests: the extended metric set, ECE, baseline and schema check on fixed inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from forgeml.data import RawData, TaskInfo
from forgeml.errors import DataError
from forgeml.evaluation import baseline_metrics, check_columns, compute_metrics, expected_calibration_error
from forgeml.features import Decoded


def test_multiclass_probability_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    labels = (0, 1, 2)
    truth = rng.integers(0, 3, 200)
    probabilities = rng.dirichlet(np.ones(3), 200)
    values = compute_metrics(TaskInfo("classification", labels), truth, Decoded(truth, probabilities)).values
    assert values["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, probabilities, multi_class="ovr"))
    assert values["log_loss"] == pytest.approx(skm.log_loss(truth, probabilities))
    assert values["brier"] == pytest.approx(skm.brier_score_loss(truth, probabilities, labels=[0, 1, 2]))
    one_hot = np.eye(3)[truth]
    assert values["pr_auc"] == pytest.approx(skm.average_precision_score(one_hot, probabilities))
    assert values["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(truth, probabilities.argmax(1))
    )


def test_regression_extras_equal_sklearn_and_mape_is_left_out_at_zero() -> None:
    rng = np.random.default_rng(1)
    truth, predicted = rng.uniform(1, 5, 100), rng.uniform(1, 5, 100)
    values = compute_metrics(TaskInfo("regression"), truth, Decoded(predicted, None)).values
    assert values["rmse"] == pytest.approx(skm.root_mean_squared_error(truth, predicted))
    assert values["mape"] == pytest.approx(skm.mean_absolute_percentage_error(truth, predicted))
    assert values["residual_mean"] == pytest.approx((truth - predicted).mean())
    truth[0] = 0.0
    assert "mape" not in compute_metrics(TaskInfo("regression"), truth, Decoded(predicted, None)).values


def test_expected_calibration_error_by_hand() -> None:
    # Two bins: confidence 0.9 with 1 of 2 right (gap 0.4), confidence 0.6 with 2 of 2 right (gap 0.4).
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    truth = np.array([0, 1, 1, 1])
    assert expected_calibration_error(truth, probabilities) == pytest.approx(0.4)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(np.array([0, 1]), perfect) == pytest.approx(0.0)


def test_baseline_predicts_the_training_majority_and_mean() -> None:
    task = TaskInfo("binary", ("no", "yes"))
    train = pd.Series(["yes"] * 7 + ["no"] * 3)
    truth = np.array(["no", "no", "yes", "no"])
    assert baseline_metrics(task, train, truth).values["accuracy"] == pytest.approx(0.25)
    regression = baseline_metrics(TaskInfo("regression"), pd.Series([1.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert regression.values["mae"] == pytest.approx(2 / 3)


def test_columns_not_matching_the_training_schema_raise_one_error(tiny_pipeline) -> None:
    rows = RawData(pd.DataFrame({"age": [1.0], "cty": ["x"], "id": [1]}), None, None, "new.csv")
    with pytest.raises(
        DataError, match=r"new.csv.*missing column 'city'.*unexpected columns 'cty', 'id'"
    ) as caught:
        check_columns(rows, tiny_pipeline)
    assert caught.value.column == "city"
    check_columns(
        RawData(pd.DataFrame({"age": [1.0], "city": ["x"], "id": [1]}), None, None, "ok"),
        tiny_pipeline,
        ignored=["id"],
    )


@pytest.fixture
def tiny_pipeline():
    from forgeml.config import FeaturesConfig
    from forgeml.features import fit_features

    table = pd.DataFrame({"age": [1.0, 2.0, 3.0], "city": ["a", "b", "a"]})
    raw = RawData(table, None, pd.Series(["no", "yes", "no"]), "train")
    return fit_features(raw, FeaturesConfig(), TaskInfo("binary", ("no", "yes")))
