"""Prometheus metrics in the text exposition format (0.0.4), written by hand: a few series, no dependency.

Labels hold only route templates, status codes and rejection reasons, never input values. With
several uvicorn workers each process counts its own requests (scrape each, or run one worker).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
PREFIX = "forgeml_"


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, running = [], 0
        sep = "," if labels else ""
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{suffix} {self.total:.9g}", f"{name}_count{suffix} {self.count}"]
        return out


class Metrics:
    """Request counts by route and status, latency, batch sizes, queue depth, rejections, model calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch_rows = Histogram(BATCH_BUCKETS)
        self.rejected: defaultdict[str, int] = defaultdict(int)
        self.model_calls = 0
        self.predicted_rows = 0
        self.queue_depth = 0
        self.inflight = 0
        self.model_load_seconds = 0.0

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, status)] += 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def batch(self, rows: int) -> None:
        with self._lock:
            self.batch_rows.observe(rows)
            self.model_calls += 1
            self.predicted_rows += rows

    def render(self) -> str:
        with self._lock:
            lines = [
                f"# HELP {PREFIX}requests_total HTTP requests by route, method and status code.",
                f"# TYPE {PREFIX}requests_total counter",
            ]
            lines += [
                f'{PREFIX}requests_total{{route="{route}",method="{method}",status="{status}"}} {count}'
                for (route, method, status), count in sorted(self.requests.items())
            ]
            lines += [
                f"# HELP {PREFIX}request_duration_seconds Time from request start to response start.",
                f"# TYPE {PREFIX}request_duration_seconds histogram",
            ]
            for route, histogram in sorted(self.latency.items()):
                lines += histogram.lines(f"{PREFIX}request_duration_seconds", f'route="{route}"')
            lines += [
                f"# HELP {PREFIX}batch_rows Rows per model call (dynamic micro-batching).",
                f"# TYPE {PREFIX}batch_rows histogram",
                *self.batch_rows.lines(f"{PREFIX}batch_rows"),
                f"# HELP {PREFIX}rejected_total Requests refused before the model, by reason.",
                f"# TYPE {PREFIX}rejected_total counter",
                *(f'{PREFIX}rejected_total{{reason="{r}"}} {n}' for r, n in sorted(self.rejected.items())),
            ]
            for name, kind, value, text in (
                ("model_calls_total", "counter", self.model_calls, "Batches run through the model."),
                ("predicted_rows_total", "counter", self.predicted_rows, "Rows predicted."),
                ("queue_depth", "gauge", self.queue_depth, "Requests waiting for the model."),
                ("inflight", "gauge", self.inflight, "Prediction requests being handled."),
                ("model_load_seconds", "gauge", self.model_load_seconds, "Time to load and warm the model."),
            ):
                lines += [
                    f"# HELP {PREFIX}{name} {text}",
                    f"# TYPE {PREFIX}{name} {kind}",
                    f"{PREFIX}{name} {value:g}",
                ]
        return "\n".join(lines) + "\n"
