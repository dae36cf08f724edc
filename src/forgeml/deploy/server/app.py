"""The one server: a FastAPI app behind the Guard, with one handler for the bundle's kind.

The bundle's kind picks its handler here, once (:data:`HANDLERS`): ``predictor`` bundles get
``POST /v1/predict``, ``GET /v1/metadata`` and the try-it page (:mod:`.predict_handler`);
``causal_lm`` bundles OpenAI's chat and completions endpoints and a chat page (:mod:`.lm_handler`).
Every kind gets the same rest: ``GET /health/live``, ``GET /health/ready`` (503 until the model is
loaded and warmed up, again once shutdown starts, and while load is shed), ``GET /metrics``, the
OpenAPI docs, the Guard's limits, admission control and API key, the connection limits the runner's
protocol enforces (:mod:`.protocol`), the one error body, and the lifespan that loads the model.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from forgeml.bundle.manifest import read_manifest
from forgeml.config import CAUSAL_LM, PREDICTOR, Kind, ServeConfig, serve_config
from forgeml.deploy.server.guard import BodyTooLarge, Guard
from forgeml.deploy.server.handler import KindHandler, ServerState
from forgeml.deploy.server.lm_handler import LMHandler
from forgeml.deploy.server.predict_handler import PredictHandler
from forgeml.deploy.server.probes import add_probe_routes
from forgeml.deploy.server.protocol import ConnectionLimits
from forgeml.errors import ConfigError

logger = logging.getLogger(__name__)

# How long a thread holding the GIL (the codec thread decoding a large body, a generation) runs before
# another that waits for it gets its turn. The event loop gives the GIL up at every socket call and
# then waits this long to get it back; at CPython's default (5 ms) a busy codec thread throttled the
# loop so that /health/live took 2.4-3.3 s (p99) at 3x capacity, 0.5-0.8 s at 0.5 ms (A/B runs of
# benchmarks/overload.py on 2 cores loaded by other work); 0.1 ms was no better than 0.5 ms at 2x
# (live p99 206-264 ms against 57-207 ms) and served fewer requests (each switch costs the codec).
SWITCH_INTERVAL_S = 0.0005

HANDLERS: dict[Kind, type[KindHandler]] = {PREDICTOR: PredictHandler, CAUSAL_LM: LMHandler}


def create_app(
    bundle_path: str | Path, config: ServeConfig | None = None, *, api_key: str | None = None
) -> Any:
    """The ASGI app for one bundle of any kind (FastAPI wrapped in the :class:`Guard`).

    The bundle's manifest and checksums are verified here, before any port is bound; the model
    itself is loaded and warmed up in the lifespan, while ``/health/ready`` answers 503.
    """
    path = Path(bundle_path)
    manifest = read_manifest(path)
    kind: Kind = manifest["kind"]
    config = config or serve_config(kind)
    handler_class = HANDLERS[kind]
    if config.workers != 1 and handler_class.single_worker is not None:
        raise ConfigError(handler_class.single_worker, key="serve.workers")
    state = ServerState(path, manifest, config, api_key_required=api_key is not None)
    handler = state.handler = handler_class(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(_load, state, handler)
        await handler.start()
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        state.ready = True
        yield
        state.ready = False
        sys.setswitchinterval(switch)
        await handler.stop()

    app = FastAPI(
        title=handler.title,
        version=str(manifest.get("versions", {}).get("forgeml", "")),
        lifespan=lifespan,
        docs_url="/docs" if config.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if config.docs else None,
    )
    app.state.forgeml = state
    handler.add_routes(app)
    add_probe_routes(app, state, config, error=state.error_response)
    _install_handlers(app, state)
    _install_openapi(app, handler)
    guard = Guard(
        app,
        max_body_bytes=config.max_body_bytes,
        api_key=api_key,
        metrics=state.metrics,
        paths=frozenset(route.path for route in app.routes if hasattr(route, "path")),
        json_routes=handler.json_routes,
        routes=handler.direct_routes(),
        error=state.error_body,
        door=state.door,
        closing=lambda: state.draining,
    )
    guard.connection_limits = ConnectionLimits(
        header_timeout_s=config.header_timeout_s,
        body_timeout_s=config.body_timeout_s,
        max_connections=config.max_connections,
        max_header_bytes=config.max_header_bytes,
        error=state.error_body,
        metrics=state.metrics,
    )
    return guard


def _load(state: ServerState, handler: KindHandler) -> None:
    started = time.perf_counter()
    handler.load()
    # Everything loaded so far (torch, the model, its tokenizer) lives as long as the server: move
    # it out of the cyclic garbage collector's reach, whose full passes over those millions of
    # objects stalled every in-flight request for hundreds of milliseconds (the p99 at 64 clients).
    gc.collect()
    gc.freeze()
    state.metrics.model_load_seconds = time.perf_counter() - started
    logger.info("%s model loaded in %.2fs", handler.kind, state.metrics.model_load_seconds)


def _install_handlers(app: FastAPI, state: ServerState) -> None:
    """Every error in the one JSON shape; an unexpected exception is a generic 500 with the request id."""

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return state.error_response(exc.status_code, code, str(exc.detail), request.state.request_id)

    async def too_large(request: Request, exc: Exception) -> Response:
        limit = state.config.max_body_bytes
        state.metrics.reject("content_too_large")
        return state.error_response(
            413, "content_too_large", f"the body is larger than {limit} bytes.", request.state.request_id
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "")
        logger.error("request %s failed", request_id, exc_info=exc)
        return state.error_response(
            500, "internal_error", "internal error; quote the request id when reporting it.", request_id
        )

    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_exception_handler(Exception, unexpected)


def _install_openapi(app: FastAPI, handler: KindHandler) -> None:
    """The OpenAPI document FastAPI generates, completed by the handler (e.g. the bundle's request model)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            handler.openapi(document)
            _document_errors(document, handler)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_errors(document: dict[str, Any], handler: KindHandler) -> None:
    """Every error response of every route is the one error body, and so documented: FastAPI's own
    422 schema (``{"detail": [...]}``) is not what the server sends, and a status a route does not
    list (404, 405, 413 from the Guard) falls under ``default``, so a client or a schema-driven fuzzer
    (tests/openapi_fuzz.py) can check every answer against the document."""
    nullable = {"type": ["string", "null"]}
    fields = {"code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"}}
    fields |= {"field": nullable, "row": {"type": ["integer", "null"]}}
    fields |= dict.fromkeys(handler.error_fields(400), nullable)  # the kind's own keys
    error = {
        "type": "object",
        "properties": fields,
        "required": sorted(fields),
        "additionalProperties": False,
    }
    document.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = {
        "type": "object",
        "properties": {"error": error},
        "required": ["error"],
        "additionalProperties": False,
    }
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, answer in responses.items():
                if not status.startswith("2"):
                    answer["content"] = content
                    answer.setdefault("description", "an error, in the one error body")
            responses["default"] = {
                "description": "any other error, in the one error body",
                "content": content,
            }
    document.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    document.get("components", {}).get("schemas", {}).pop("ValidationError", None)
