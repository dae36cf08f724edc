"""The probe routes the server adds for every kind: liveness, readiness and Prometheus metrics.

A prediction server and a language-model server answer them alike, so one orchestrator setup
(Kubernetes probes, a Prometheus scrape) fits both. Readiness is 503 until the model is loaded and
warmed up, and again from the moment a shutdown signal arrives (the runner sets ``draining``).
"""

from __future__ import annotations

from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from forgeml.config import ServeConfig
from forgeml.deploy.server.metrics import Metrics


class ProbeState(Protocol):
    """What the probes read from a server's shared state."""

    ready: bool
    draining: bool
    not_ready_reason: str
    metrics: Metrics


class ErrorResponse(Protocol):
    """The server's error-response builder (the one error body, with the fields its kind adds)."""

    def __call__(
        self, status: int, code: str, message: str, request_id: str, *, retry: bool = False
    ) -> Response: ...


def add_probe_routes(app: FastAPI, state: ProbeState, config: ServeConfig, *, error: ErrorResponse) -> None:
    """Add ``GET /health/live``, ``GET /health/ready`` and, when ``config.metrics``, ``GET /metrics``.

    A not-ready answer is ``error(503, "not_ready", reason, request_id, retry=True)``: the reason is
    "shutting down" while draining, else ``state.not_ready_reason``.
    """

    @app.get("/health/live", summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready", summary="Readiness: the model is loaded and warmed up")
    async def ready(request: Request) -> Response:
        if state.ready and not state.draining:
            return JSONResponse({"status": "ready"})
        reason = "shutting down" if state.draining else state.not_ready_reason
        return error(503, "not_ready", reason, request.state.request_id, retry=True)

    if config.metrics:

        @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
        async def metrics() -> Response:
            return Response(state.metrics.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)
