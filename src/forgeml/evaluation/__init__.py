"""The evaluate stage: predictions on held-out rows scored against their targets, and the model card.

* ``evaluate_model(model, pipeline, rows)`` returns :class:`Metrics` (used for validation scores).
* ``evaluate_run(run_dir, model, pipeline, test, train_target, config)`` computes everything (baseline,
  bootstrap interval, slices, explanations, plots), writes ``metrics.json`` and ``report.html`` and
  returns an :class:`Evaluation`.
* ``compare_runs(run_dirs, output)`` writes one HTML page comparing several runs.
* ``check_columns(rows, pipeline)`` raises one DataError naming missing and unexpected columns.
"""

from __future__ import annotations

from torch import nn

from forgeml.data import RawData
from forgeml.evaluation.baseline import Interval, baseline_metrics, bootstrap_interval
from forgeml.evaluation.compare import compare_runs
from forgeml.evaluation.explain import Attributions, Importance
from forgeml.evaluation.metrics import (
    METRICS_SCHEMA_VERSION,
    Metrics,
    compute_metrics,
    expected_calibration_error,
)
from forgeml.evaluation.run import Evaluation, evaluate_run, predict_rows
from forgeml.evaluation.schema import check_columns
from forgeml.evaluation.slices import Slice
from forgeml.features import FeaturePipeline

__all__ = [
    "METRICS_SCHEMA_VERSION",
    "Attributions",
    "Evaluation",
    "Importance",
    "Interval",
    "Metrics",
    "Slice",
    "baseline_metrics",
    "bootstrap_interval",
    "check_columns",
    "compare_runs",
    "compute_metrics",
    "evaluate_model",
    "evaluate_run",
    "expected_calibration_error",
]


def evaluate_model(model: nn.Module, pipeline: FeaturePipeline, rows: RawData) -> Metrics:
    """Score ``model`` on ``rows`` (which must carry targets) through the fitted ``pipeline``."""
    decoded = predict_rows(model, pipeline, rows)
    assert rows.target is not None
    return compute_metrics(pipeline.task, rows.target.to_numpy(), decoded)
