"""Prometheus metrics for every forgeml server, through ``prometheus_client``.

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so several apps in one process
(the tests) keep separate counts. With ``--workers N`` the runner sets ``PROMETHEUS_MULTIPROC_DIR``
before the workers start: each worker then writes its values to files there, and ``/metrics``, on
whichever worker answers, sums them over all workers (gauges over the live ones).

Labels hold only route templates, status codes and rejection reasons, never input values.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
PREFIX = "forgeml_"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """Whether this process shares its metrics through files (set by the runner for ``--workers N``)."""
    return MULTIPROCESS_ENV in os.environ


class Metrics:
    """Request counts by route and status, latency, batch sizes, queue depth, rejections, model calls.

    The servers set ``queue_depth``, ``inflight`` and ``model_load_seconds`` as plain attributes
    (``state.metrics.inflight += 1``); each assignment updates its gauge.
    """

    def __init__(self) -> None:
        shared = multiprocess_mode()
        self.registry = CollectorRegistry()
        if shared:
            # In multiprocess mode values live in files; the collector reads every worker's files,
            # and the metrics themselves must not be registered in the registry it collects from.
            MultiProcessCollector(self.registry)
        own = None if shared else self.registry
        self._requests = Counter(
            f"{PREFIX}requests",
            "HTTP requests by route, method and status code.",
            ["route", "method", "status"],
            registry=own,
        )
        self._latency = Histogram(
            f"{PREFIX}request_duration_seconds",
            "Time from request start to response start.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self._batch_rows = Histogram(
            f"{PREFIX}batch_rows",
            "Rows per model call (dynamic micro-batching).",
            buckets=BATCH_BUCKETS,
            registry=own,
        )
        self._rejected = Counter(
            f"{PREFIX}rejected", "Requests refused before the model, by reason.", ["reason"], registry=own
        )
        self._model_calls = Counter(f"{PREFIX}model_calls", "Batches run through the model.", registry=own)
        self._predicted_rows = Counter(f"{PREFIX}predicted_rows", "Rows predicted.", registry=own)
        # livesum: the workers' queues and in-flight requests add up; a dead worker's share is dropped.
        self._queue_depth = Gauge(
            f"{PREFIX}queue_depth",
            "Requests waiting for the model.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self._inflight = Gauge(
            f"{PREFIX}inflight",
            "Prediction requests being handled.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self._model_load_seconds = Gauge(
            f"{PREFIX}model_load_seconds",
            "Time to load and warm the model (the slowest live worker).",
            registry=own,
            multiprocess_mode="livemax",
        )
        self._gauge_values = {"queue_depth": 0, "inflight": 0, "model_load_seconds": 0.0}

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests.labels(route, method, str(status)).inc()
        self._latency.labels(route).observe(seconds)

    def reject(self, reason: str) -> None:
        self._rejected.labels(reason).inc()

    def batch(self, rows: int) -> None:
        self._batch_rows.observe(rows)
        self._model_calls.inc()
        self._predicted_rows.inc(rows)

    # This process's gauge values, readable back for ``+=`` (a multiprocess gauge reads back nothing).
    @property
    def queue_depth(self) -> int:
        return int(self._gauge_values["queue_depth"])

    @queue_depth.setter
    def queue_depth(self, value: int) -> None:
        self._gauge_values["queue_depth"] = value
        self._queue_depth.set(value)

    @property
    def inflight(self) -> int:
        return int(self._gauge_values["inflight"])

    @inflight.setter
    def inflight(self, value: int) -> None:
        self._gauge_values["inflight"] = value
        self._inflight.set(value)

    @property
    def model_load_seconds(self) -> float:
        return float(self._gauge_values["model_load_seconds"])

    @model_load_seconds.setter
    def model_load_seconds(self, value: float) -> None:
        self._gauge_values["model_load_seconds"] = value
        self._model_load_seconds.set(value)

    def render(self) -> str:
        """The text exposition format 0.0.4 (served as ``text/plain; version=0.0.4``)."""
        return generate_latest(self.registry).decode("utf-8")
