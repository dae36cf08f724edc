"""The probe routes the server adds for every kind: liveness, readiness and Prometheus metrics.

A prediction server and a language-model server answer them alike, so one orchestrator setup
(Kubernetes probes, a Prometheus scrape) fits both. Readiness is 503 until the model is loaded and
warmed up, again from the moment a shutdown signal arrives (the runner sets ``draining``), and
while the server sheds work for overload (``shedding``: every place in its queue is taken), so a load
balancer sends the work elsewhere instead of into 503s. Liveness only says the process answers: it
stays 200 under any load (an orchestrator restarting a busy server would lose its queue).
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

    @property
    def shedding(self) -> bool: ...


class ErrorResponse(Protocol):
    """The server's error-response builder (the one error body, with the fields its kind adds)."""

    def __call__(
        self, status: int, code: str, message: str, request_id: str, *, retry: bool = False
    ) -> Response: ...


def add_probe_routes(app: FastAPI, state: ProbeState, config: ServeConfig, *, error: ErrorResponse) -> None:
    """Add ``GET /health/live``, ``GET /health/ready`` and, when ``config.metrics``, ``GET /metrics``.

    A not-ready answer is ``error(503, "not_ready", reason, request_id, retry=True)``: the reason is
    "shutting down" while draining, else ``state.not_ready_reason``; while the server sheds load it
    is ``error(503, "overloaded", ...)``.
    """

    @app.get("/health/live", summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready", summary="Readiness: the model is loaded and warmed up")
    async def ready(request: Request) -> Response:
        if state.ready and not state.draining:
            if state.shedding:
                message = "the server is shedding load (its queue is full); retry shortly."
                return error(503, "overloaded", message, request.state.request_id, retry=True)
            return JSONResponse({"status": "ready"})
        reason = "shutting down" if state.draining else state.not_ready_reason
        return error(503, "not_ready", reason, request.state.request_id, retry=True)

    if config.metrics:

        @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
        async def metrics() -> Response:
            return Response(state.metrics.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)
