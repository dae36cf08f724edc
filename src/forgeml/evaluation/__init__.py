"""The evaluate stage: predictions on held-out rows scored against their targets.

``evaluate_model(model, pipeline, rows)`` is the stage's public function; it returns :class:`Metrics`.
"""

from __future__ import annotations

from torch import nn

from forgeml.data import RawData
from forgeml.errors import DataError
from forgeml.evaluation.metrics import METRICS_SCHEMA_VERSION, Metrics, compute_metrics
from forgeml.features import FeaturePipeline
from forgeml.models import predict_outputs

__all__ = ["METRICS_SCHEMA_VERSION", "Metrics", "compute_metrics", "evaluate_model"]


def evaluate_model(model: nn.Module, pipeline: FeaturePipeline, rows: RawData) -> Metrics:
    """Score ``model`` on ``rows`` (which must carry targets) through the fitted ``pipeline``."""
    if rows.target is None:
        raise DataError(f"{rows.source}: evaluation needs the target column; it is missing.")
    if len(rows) == 0:
        raise DataError(
            f"{rows.source}: no rows to evaluate on. Give data.split.test a fraction above 0 or pass --data."
        )
    pipeline.target_.encode(rows.target)  # fails early, naming the row, on a class never seen in training
    inputs = pipeline.transform(rows).ordered(pipeline.input_spec.names)
    decoded = pipeline.target_.decode(predict_outputs(model, inputs).numpy())
    return compute_metrics(pipeline.task, rows.target.to_numpy(), decoded)
