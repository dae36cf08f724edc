"""Measure a variant's bundle the way it will be used: through the Predictor the server runs.

The test metric comes from :class:`~forgeml.bundle.Predictor` outputs (ONNX Runtime on the
variant's ``model.onnx``), decoded and scored by the evaluation stage's ``compute_metrics`` on the
run's test split: the rows ``forgeml evaluate`` scores. Latency is the wall time of
``Predictor.predict`` (encoding, the graph, decoding) on one row and on 256 rows, one thread,
median over rounds interleaved across the variants.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from forgeml.bundle.onnx_export import ONNX_FILE
from forgeml.bundle.predictive import read_predictor_bundle
from forgeml.bundle.predictor import Predictor
from forgeml.compression.prune import zero_fraction
from forgeml.data import RawData
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
    metrics: Metrics | None  # every metric; None for a row read back from summary.json

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> VariantResult:
        """A row of ``summary.json`` (what :meth:`to_json` wrote) back; the full metrics stay in its bundle.json."""
        return cls(
            name=row["name"],
            path=Path(row["bundle"]),
            steps=tuple(row["steps"]),
            metric_name=row["metric"]["name"],
            metric=row["metric"]["value"],
            drop=row["metric"]["drop"],
            model_bytes=row["model_bytes"],
            parameters=row["parameters"],
            zeros=row["zero_weights"],
            latency_single_ms=row["latency_ms"]["single_row"],
            latency_batch_ms=row["latency_ms"][f"batch_{BATCH_ROWS}"],
            engine=row["engine"],
            metrics=None,
        )

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
        return replace(self, path=path)


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
    threads: int = 1,
) -> VariantResult:
    """Score and size the bundle in ``folder`` (latency comes later, from :func:`with_latencies`).

    ``baseline`` None means this is the baseline.
    """
    bundle = read_predictor_bundle(folder)
    predictor = Predictor(bundle, threads=threads)
    metrics = score(predictor, test)
    metric_name, value = metrics.headline
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
        latency_single_ms=math.nan,
        latency_batch_ms=math.nan,
        engine=predictor.engine.name,
        metrics=metrics,
    )


def with_latencies(
    results: list[VariantResult], rows: RawData, *, rounds: int = 5, calls: int = 20, threads: int = 1
) -> list[VariantResult]:
    """``results`` with their latencies: interleaved rounds over all variants, median of round means.

    Interleaving (baseline, prune, int8, baseline, ...) spreads machine noise over every variant
    alike; each round times ``calls`` one-row calls and ``calls // 10`` calls on BATCH_ROWS rows.
    """
    single = rows.take(np.arange(1))
    batch = rows.take(np.arange(BATCH_ROWS) % len(rows))
    predictors = [Predictor(read_predictor_bundle(result.path), threads=threads) for result in results]
    samples: list[tuple[list[float], list[float]]] = [([], []) for _ in results]
    for predictor in predictors:  # warm-up: first calls allocate
        predictor.predict(single), predictor.predict(batch)
    for _ in range(rounds):
        for predictor, (ones, batches) in zip(predictors, samples, strict=True):
            ones.append(mean_seconds(lambda p=predictor: p.predict(single), calls))
            batches.append(mean_seconds(lambda p=predictor: p.predict(batch), max(1, calls // 10)))
    return [
        replace(
            result,
            latency_single_ms=statistics.median(ones) * 1000,
            latency_batch_ms=statistics.median(batches) * 1000,
        )
        for result, (ones, batches) in zip(results, samples, strict=True)
    ]


def mean_seconds(call, repeats: int) -> float:
    """Mean wall time of ``call()`` over ``repeats`` back-to-back runs."""
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats
