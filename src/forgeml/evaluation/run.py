"""Evaluate a trained run on its test rows and write ``metrics.json`` and the ``report.html`` model card.

``evaluate_run`` computes everything the card shows (metrics, baseline, bootstrap interval, slices,
permutation importance, integrated gradients, plots) and writes both files atomically.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from forgeml import atomic
from forgeml.config import Config, dump_config
from forgeml.data import RawData
from forgeml.errors import DataError
from forgeml.evaluation import plots
from forgeml.evaluation.baseline import Interval, baseline_metrics, bootstrap_interval
from forgeml.evaluation.explain import Attributions, Importance, attributions, permutation_importance
from forgeml.evaluation.image_examples import ImageExamples, image_examples
from forgeml.evaluation.leaderboard import leaderboard, leaderboard_csv
from forgeml.evaluation.membership import privacy_section
from forgeml.evaluation.metrics import METRICS_SCHEMA_VERSION, Metrics, class_indices, compute_metrics
from forgeml.evaluation.report import Figures, render_report
from forgeml.evaluation.schema import check_columns
from forgeml.evaluation.slices import Slice, slice_metrics
from forgeml.evaluation.tokens import WrongText, wrong_texts
from forgeml.features import Decoded, FeaturePipeline
from forgeml.models import predict_outputs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """Everything ``evaluate_run`` found, and where it wrote ``metrics.json`` and ``report.html``."""

    metrics: Metrics
    baseline: Metrics
    interval: Interval | None
    slices: tuple[Slice, ...]
    importance: tuple[Importance, ...]
    attributions: Attributions | None
    metrics_path: Path
    report_path: Path
    leaderboard: tuple[dict[str, Any], ...] = ()  # model.type auto: every candidate beside the ensemble
    privacy: dict[str, Any] | None = None  # train.privacy / evaluate.privacy_audit (evaluation.membership)
    wrong_texts: tuple[WrongText, ...] = ()  # text classifiers: the most confidently wrong test texts
    images: ImageExamples | None = None  # image classifiers: examples per class, wrong ones, maps

    @property
    def flagged_slices(self) -> tuple[Slice, ...]:
        return tuple(item for item in self.slices if item.flagged)

    def to_json(self) -> dict[str, Any]:
        """The metrics.json document: the v1 keys of :meth:`Metrics.to_json` plus the extras."""
        name, value = self.metrics.headline
        return (
            self.metrics.to_json()
            | {
                "schema_version": METRICS_SCHEMA_VERSION,
                "headline": {
                    "name": name,
                    "value": value,
                    "interval": None if self.interval is None else self.interval.to_json(),
                    "baseline": self.baseline.values.get(name),
                },
                "baseline": {"metrics": self.baseline.values},
                "slices": [item.to_json() for item in self.slices],
                "permutation_importance": [item.to_json() for item in self.importance],
                "integrated_gradients": None if self.attributions is None else self.attributions.to_json(),
            }
            | ({"leaderboard": list(self.leaderboard)} if self.leaderboard else {})
            | ({"privacy": self.privacy} if self.privacy is not None else {})
        )


def predict_rows(model: nn.Module, pipeline: FeaturePipeline, rows: RawData) -> Decoded:
    """Decoded predictions for ``rows``; they must carry targets of classes seen in training."""
    if rows.target is None:
        raise DataError(f"{rows.source}: evaluation needs the target column; it is missing.")
    if len(rows) == 0:
        raise DataError(
            f"{rows.source}: no rows to evaluate on. Give data.split.test a fraction above 0 or pass --data."
        )
    pipeline.target_.encode(rows.target)  # fails early, naming the row, on a class never seen in training
    inputs = pipeline.transform(rows).ordered(pipeline.input_spec.names)
    return pipeline.target_.decode(predict_outputs(model, inputs).numpy())


def evaluate_run(
    run_dir: Path,
    model: nn.Module,
    pipeline: FeaturePipeline,
    test: RawData,
    train_target: pd.Series,
    config: Config,
    *,
    name: str | None = None,
    members: RawData | None = None,
) -> Evaluation:
    """Score ``model`` on ``test``, write ``metrics.json`` and ``report.html`` in ``run_dir``, return all.

    ``train_target`` gives the baseline (majority class or mean). ``name`` (e.g. the stem of a
    ``--data`` file) writes ``metrics-<name>.json`` and ``report-<name>.html`` instead, so the test
    split's card is kept. Slices, bootstrap and permutation repeats come from ``config.evaluate``.
    ``members`` (the training rows) are what the membership-inference audit tells apart from ``test``.
    """
    # columns the pipeline itself left out (ids it detected) are present in a test file by design
    left_out = list(getattr(pipeline, "left_out_", {}))
    check_columns(test, pipeline, ignored=[*config.features.exclude, config.data.target or "", *left_out])
    decoded = predict_rows(model, pipeline, test)
    task = pipeline.task
    assert test.target is not None  # predict_rows checked it
    metrics = compute_metrics(task, test.target.to_numpy(), decoded)
    truth, guess = _comparable(pipeline, test.target, decoded)
    settings = config.evaluate
    evaluation = Evaluation(
        metrics=metrics,
        baseline=baseline_metrics(task, train_target, test.target.to_numpy()),
        interval=bootstrap_interval(task.kind, truth, guess, resamples=settings.bootstrap, seed=config.seed),
        slices=slice_metrics(
            test.table,
            list(settings.slices),
            task=task.kind,
            truth=truth,
            predicted=guess,
            gap=settings.slice_gap,
        ),
        importance=permutation_importance(
            model, pipeline, test, repeats=settings.permutation_repeats, seed=config.seed
        ),
        attributions=attributions(model, pipeline, test, seed=config.seed),
        metrics_path=run_dir / ("metrics.json" if name is None else f"metrics-{name}.json"),
        report_path=run_dir / ("report.html" if name is None else f"report-{name}.html"),
        leaderboard=leaderboard(model, pipeline, test),
        privacy=privacy_section(run_dir, model, pipeline, members, test, config, predict=predict_rows),
        wrong_texts=wrong_texts(pipeline, test.table, truth, decoded.probabilities),
        images=None
        if decoded.probabilities is None
        else image_examples(model, pipeline, test, truth, decoded.probabilities, seed=config.seed),
    )
    figures = make_figures(run_dir, pipeline, test, truth, decoded, evaluation)
    atomic.write_text(evaluation.metrics_path, json.dumps(evaluation.to_json(), indent=2))
    if evaluation.leaderboard:
        csv_name = "leaderboard.csv" if name is None else f"leaderboard-{name}.csv"
        atomic.write_text(run_dir / csv_name, leaderboard_csv(evaluation.leaderboard))
    html = render_report(
        evaluation,
        config,
        figures,
        config_text=_read_or(run_dir / "config.yaml", dump_config(config)),
        history=read_history(run_dir),
        data_report=read_data_report(run_dir),
        source=test.source,
    )
    atomic.write_text(evaluation.report_path, html)
    logger.info("wrote %s and %s", evaluation.metrics_path, evaluation.report_path)
    return evaluation


def make_figures(
    run_dir: Path,
    pipeline: FeaturePipeline,
    test: RawData,
    truth: np.ndarray,
    decoded: Decoded,
    evaluation: Evaluation,
) -> Figures:
    """Every plot of the card as PNG bytes, keyed by title, in the order the card shows them."""
    figures: Figures = {}
    history = read_history(run_dir)
    if history is not None and len(history):
        figures["Learning curves"] = plots.learning_curves(history)
    labels = [str(label) for label in pipeline.task.labels]
    metrics = evaluation.metrics
    if metrics.confusion_matrix is not None:
        figures["Confusion matrix"] = plots.confusion_matrix(np.array(metrics.confusion_matrix), labels)
    probabilities = decoded.probabilities
    if probabilities is not None:
        figures["ROC and precision-recall curves"] = plots.roc_and_pr_curves(truth, probabilities, labels)
        figures["Calibration"] = plots.calibration(truth, probabilities)
        if test.images is not None and evaluation.images is None:  # else the card's image section shows them
            wrong = plots.confidently_wrong(pipeline.image_.pixels(test.images), truth, probabilities, labels)
            if wrong is not None:
                figures["Most confidently wrong"] = wrong
    if pipeline.task.kind == "regression":
        figures["Residuals"] = plots.regression_diagnostics(truth, np.asarray(decoded.values, float))
    if evaluation.importance:
        figures["Permutation importance"] = plots.bar_chart(
            [item.column for item in evaluation.importance],
            [item.mean for item in evaluation.importance],
            [item.std for item in evaluation.importance],
            "drop of the headline metric when the column is shuffled",
        )
    attributions = evaluation.attributions
    if (
        attributions is not None
        and attributions.saliency is not None
        and test.images is not None
        and evaluation.images is None  # a classifier's maps are drawn over its images in the image section
    ):
        rows = list(attributions.saliency_rows)
        captions = [f"row {row}: {decoded.values[row]}" for row in rows]
        pixels = pipeline.image_.pixels(test.images[rows])  # image files: decoded as in training
        figures["Saliency"] = plots.saliency_grid(pixels, attributions.saliency, captions)
    return figures


def read_history(run_dir: Path) -> pd.DataFrame | None:
    """history.csv (epoch, train_loss, val_loss, seconds) as written by training, or None."""
    path = run_dir / "history.csv"
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as exc:
        logger.warning("could not read %s: %s", path, exc)
        return None


def read_data_report(run_dir: Path) -> dict[str, Any] | None:
    """data_report.json from the check stage, if present and readable; its fields are not assumed."""
    path = run_dir / "data_report.json"
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        logger.warning("could not read %s: %s", path, exc)
        return None
    return report if isinstance(report, dict) else {"findings": report}


def _comparable(
    pipeline: FeaturePipeline, target: pd.Series, decoded: Decoded
) -> tuple[np.ndarray, np.ndarray]:
    """Truth and prediction as float values (regression) or class indices (classifiers)."""
    task = pipeline.task
    if task.kind == "regression":
        return target.to_numpy(dtype=np.float64), np.asarray(decoded.values, dtype=np.float64)
    assert decoded.probabilities is not None  # classifiers always decode with probabilities
    return class_indices(task, target), decoded.probabilities.argmax(axis=1)


def _read_or(path: Path, fallback: str) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else fallback
