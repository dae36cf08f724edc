"""Acceptance: on breast cancer, every metric equals scikit-learn's on the same predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from forgeml import api
from forgeml.config import load_config
from forgeml.evaluation import Evaluation, evaluate_run, expected_calibration_error, predict_rows

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[api.Run, Evaluation]:
    output = tmp_path_factory.mktemp("runs")
    config = load_config(
        EXAMPLES / "breast_cancer_mlp.yaml",
        [f"output_dir={output}", "train.epochs=10", "evaluate.bootstrap=300"],
    )
    run = api.train(config)
    evaluation = evaluate_run(
        run.path, run.model, run.pipeline, run.splits.test, run.splits.train.target, config
    )
    return run, evaluation


@pytest.mark.slow
def test_every_metric_equals_sklearn(trained: tuple[api.Run, Evaluation]) -> None:
    run, evaluation = trained
    decoded = predict_rows(run.model, run.pipeline, run.splits.test)
    labels = list(run.pipeline.task.labels)
    truth = np.array([labels.index(value) for value in run.splits.test.target])
    probabilities = decoded.probabilities
    assert probabilities is not None
    guess = probabilities.argmax(axis=1)
    expected = {
        "accuracy": skm.accuracy_score(truth, guess),
        "balanced_accuracy": skm.balanced_accuracy_score(truth, guess),
        "macro_precision": skm.precision_score(truth, guess, average="macro"),
        "macro_recall": skm.recall_score(truth, guess, average="macro"),
        "macro_f1": skm.f1_score(truth, guess, average="macro"),
        "weighted_precision": skm.precision_score(truth, guess, average="weighted"),
        "weighted_recall": skm.recall_score(truth, guess, average="weighted"),
        "weighted_f1": skm.f1_score(truth, guess, average="weighted"),
        "roc_auc": skm.roc_auc_score(truth, probabilities[:, 1]),
        "pr_auc": skm.average_precision_score(truth, probabilities[:, 1]),
        "log_loss": skm.log_loss(truth, probabilities),
        "brier": skm.brier_score_loss(truth, probabilities[:, 1]),
        "expected_calibration_error": expected_calibration_error(truth, probabilities),
    }
    values = evaluation.metrics.values
    assert set(expected) <= set(values)
    for name, value in expected.items():
        assert values[name] == pytest.approx(value), name
    per_class = skm.precision_recall_fscore_support(truth, guess)
    for index, label in enumerate(labels):
        scores = evaluation.metrics.per_class[str(label)]
        assert [scores["precision"], scores["recall"], scores["f1"], scores["support"]] == pytest.approx(
            [column[index] for column in per_class]
        )
    assert np.array_equal(np.array(evaluation.metrics.confusion_matrix), skm.confusion_matrix(truth, guess))


@pytest.mark.slow
def test_interval_contains_estimate_and_baseline_is_majority_rate(
    trained: tuple[api.Run, Evaluation],
) -> None:
    run, evaluation = trained
    name, value = evaluation.metrics.headline
    assert evaluation.interval is not None
    assert evaluation.interval.low <= value <= evaluation.interval.high
    assert evaluation.interval.low < evaluation.interval.high
    majority = run.splits.train.target.value_counts().idxmax()
    assert evaluation.baseline.values[name] == pytest.approx((run.splits.test.target == majority).mean())


@pytest.mark.slow
def test_metrics_json_keeps_v1_keys_and_adds_extras(trained: tuple[api.Run, Evaluation]) -> None:
    run, evaluation = trained
    document = json.loads((run.path / "metrics.json").read_text())
    assert {"schema_version", "task", "rows", "metrics", "labels", "confusion_matrix"} <= set(document)
    assert document["schema_version"] == 2
    assert document["headline"]["name"] == "accuracy"
    assert document["headline"]["interval"]["resamples"] == 300
    assert len(document["permutation_importance"]) == 30
    assert document["integrated_gradients"]["method"].startswith("captum")
    assert (run.path / "report.html").is_file()


def test_bootstrap_is_seeded() -> None:
    from forgeml.evaluation import bootstrap_interval

    truth = np.array([0, 1] * 50)
    guess = np.where(np.arange(100) % 7 == 0, 1 - truth, truth)
    first = bootstrap_interval("binary", truth, guess, resamples=200, seed=3)
    assert first == bootstrap_interval("binary", truth, guess, resamples=200, seed=3)
    assert bootstrap_interval("binary", truth, guess, resamples=0, seed=3) is None
