"""The leaderboard of a ``model.type: auto`` run: every candidate beside the ensemble, on the test rows.

Training records each candidate's validation loss (the greedy selection's: log loss, or mean
squared error in the target's units), fit and predict seconds and ensemble weight
(``WeightedEnsemble.leaderboard``, kept in bundle.json). Here each row gains the test headline
metric, the test loss and the seconds to predict the test rows, for the ensemble and for every
candidate whose model is at hand: the members always; a candidate with weight 0 only when evaluation
runs in the process that trained it (``forgeml run``), since the bundle keeps only the members.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from torch import nn

from forgeml.data import RawData
from forgeml.evaluation.metrics import compute_metrics, headline_name
from forgeml.features import FeaturePipeline
from forgeml.models import predict_outputs
from forgeml.models.ensemble import WeightedEnsemble

COLUMNS = (
    "model", "type", "weight", "validation_loss", "test_metric", "test_loss",
    "fit_seconds", "predict_seconds", "test_predict_seconds", "note",
)  # fmt: skip


def leaderboard(model: nn.Module, pipeline: FeaturePipeline, test: RawData) -> tuple[dict[str, Any], ...]:
    """The rows (ensemble first), or none for a model that is not an ensemble."""
    if not isinstance(model, WeightedEnsemble) or test.target is None:
        return ()
    inputs = pipeline.transform(test).ordered(pipeline.input_spec.names)
    task = pipeline.task
    loss_name = "mse" if task.kind == "regression" else "log_loss"
    at_hand: dict[str, nn.Module] = {"ensemble": model, **dict(zip(model.names, model.members, strict=True))}
    at_hand |= model.dropped
    for row in model.leaderboard:  # a bagged candidate: its boosters' equal average
        name = str(row["model"])
        bag = [
            (member, module) for member, module, _ in model.candidates() if member.startswith(f"{name}-fold")
        ]
        if bag:
            at_hand[name] = WeightedEnsemble(
                [module for _, module in bag], [1 / len(bag)] * len(bag),
                names=[member for member, _ in bag], task=task.kind,
            )  # fmt: skip
    rows = []
    for row in model.leaderboard:
        module = at_hand.get(str(row["model"]))
        scored: dict[str, Any] = {"test_metric": None, "test_loss": None, "test_predict_seconds": None}
        if module is not None:
            started = time.perf_counter()
            outputs = predict_outputs(module, inputs).numpy()
            seconds = time.perf_counter() - started
            values = compute_metrics(task, test.target.to_numpy(), pipeline.target_.decode(outputs)).values
            scored = {
                "test_metric": values[headline_name(task.kind)],
                "test_loss": values.get(loss_name),
                "test_predict_seconds": seconds,
            }
        rows.append(
            {column: ({**row, **scored}).get(column) for column in COLUMNS}
            | {"metric": headline_name(task.kind)}
        )
    return tuple(rows)


def leaderboard_csv(rows: tuple[dict[str, Any], ...]) -> str:
    """The rows as CSV text (``leaderboard.csv`` in the run folder)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, "metric"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
