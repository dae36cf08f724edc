"""add_probe_routes: the liveness, readiness and metrics routes both servers share."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient

from forgeml.config import ServeConfig
from forgeml.deploy.server.metrics import Metrics
from forgeml.deploy.server.probes import add_probe_routes


@dataclass
class _State:
    metrics: Metrics = field(default_factory=Metrics)
    ready: bool = False
    draining: bool = False
    not_ready_reason: str = "loading the model"
    shedding: bool = False


def _error(status: int, code: str, message: str, request_id: str, *, retry: bool = False) -> Response:
    headers = {"Retry-After": "1"} if retry else None
    return Response(f"{code}: {message} ({request_id})", status, headers)


def _client(state: _State, config: ServeConfig) -> TestClient:
    app = FastAPI()

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        request.state.request_id = "r1"
        return await call_next(request)

    add_probe_routes(app, state, config, error=_error)
    return TestClient(app)


def test_readiness_follows_loading_and_draining() -> None:
    state = _State()
    client = _client(state, ServeConfig())
    assert client.get("/health/live").json() == {"status": "live"}
    answer = client.get("/health/ready")
    assert (answer.status_code, answer.text, answer.headers["retry-after"]) == (
        503,
        "not_ready: loading the model (r1)",
        "1",
    )
    state.ready = True
    assert client.get("/health/ready").json() == {"status": "ready"}
    state.shedding = True  # overload is reported honestly: a balancer sends the work elsewhere
    assert client.get("/health/ready").text.startswith("overloaded: the server is shedding load")
    assert client.get("/health/live").json() == {"status": "live"}
    state.draining = True
    assert client.get("/health/ready").text == "not_ready: shutting down (r1)"


def test_metrics_route_only_when_enabled() -> None:
    answer = _client(_State(), ServeConfig()).get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "text/plain; version=0.0.4"
    )
    assert _client(_State(), ServeConfig(metrics=False)).get("/metrics").status_code == 404
