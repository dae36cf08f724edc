"""Measure a variant's bundle the way it will be used: through the Predictor the server runs.

The test metric comes from :class:`~forgeml.deploy.Predictor` outputs (ONNX Runtime on the
variant's ``model.onnx``), decoded and scored by the evaluation stage's ``compute_metrics`` on the
run's test split: the rows ``forgeml evaluate`` scores. Latency is the median wall time of
``Predictor.predict`` (encoding, the graph, decoding) on one row and on 256 rows.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forgeml.compression.prune import zero_fraction
from forgeml.data import RawData
from forgeml.deploy import Predictor, read_bundle
from forgeml.deploy.onnx_export import ONNX_FILE
from forgeml.evaluation import Metrics, compute_metrics
from forgeml.models import count_parameters

BATCH_ROWS = 256


@dataclass(frozen=True)
class VariantResult:
    """One row of the trade-off table. ``drop`` is the baseline's headline metric minus this one's."""

    name: str
    path: Path
    steps: tuple[str, ...]
    metric_name: str
    metric: float
    drop: float
    model_bytes: int
    parameters: int
    zeros: float
    latency_single_ms: float
    latency_batch_ms: float
    engine: str
    metrics: Metrics

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bundle": str(self.path),
            "steps": list(self.steps),
            "metric": {"name": self.metric_name, "value": self.metric, "drop": self.drop},
            "model_bytes": self.model_bytes,
            "parameters": self.parameters,
            "zero_weights": self.zeros,
            "latency_ms": {
                "single_row": self.latency_single_ms,
                f"batch_{BATCH_ROWS}": self.latency_batch_ms,
            },
            "engine": self.engine,
        }

    def moved(self, path: Path) -> VariantResult:
        """The same result for a bundle now at ``path`` (the staging folder was renamed)."""
        return VariantResult(**{**self.__dict__, "path": path})


def score(predictor: Predictor, test: RawData) -> Metrics:
    """Every metric of ``predictor`` on the labelled rows ``test``."""
    assert test.target is not None
    decoded = predictor.pipeline.target_.decode(predictor.raw_outputs(test))
    return compute_metrics(predictor.pipeline.task, test.target.to_numpy(), decoded)


def measure(
    folder: Path,
    name: str,
    steps: tuple[str, ...],
    test: RawData,
    baseline: float | None,
    *,
    repeats: int = 30,
    threads: int = 1,
) -> VariantResult:
    """Score, size and time the bundle in ``folder``; ``baseline`` None means this is the baseline."""
    bundle = read_bundle(folder)
    predictor = Predictor(bundle, threads=threads)
    metrics = score(predictor, test)
    metric_name, value = metrics.headline
    single, batch = latency(predictor, test, repeats=repeats)
    return VariantResult(
        name=name,
        path=folder,
        steps=steps,
        metric_name=metric_name,
        metric=value,
        drop=0.0 if baseline is None else baseline - value,
        model_bytes=(folder / ONNX_FILE).stat().st_size,
        parameters=count_parameters(bundle.model),
        zeros=zero_fraction(bundle.model),
        latency_single_ms=single,
        latency_batch_ms=batch,
        engine=predictor.engine.name,
        metrics=metrics,
    )


def latency(predictor: Predictor, rows: RawData, *, repeats: int) -> tuple[float, float]:
    """Median milliseconds of ``predict`` on one row and on BATCH_ROWS rows (rows repeat if fewer)."""
    single = rows.take(np.arange(1))
    batch = rows.take(np.arange(BATCH_ROWS) % len(rows))
    return timed(lambda: predictor.predict(single), repeats), timed(
        lambda: predictor.predict(batch), max(3, repeats // 5)
    )


def timed(call, repeats: int) -> float:  # noqa: ANN001 - any zero-argument callable
    """Median milliseconds of ``call()`` over ``repeats`` runs after two warm-up runs."""
    call(), call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000
