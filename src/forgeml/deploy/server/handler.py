"""What a kind of model plugs into the one server, and the state every route shares.

The server (:func:`forgeml.deploy.server.app.create_app`) owns what every kind shares: the Guard
(API key, body limits, JSON media type, request ids), the one error body, the probes, metrics,
overload (503 + Retry-After) and timeout (504) answers, the lifespan and the graceful drain. A kind
brings a :class:`KindHandler`, the way a LitServe ``LitAPI`` plugs into LitServe's server: it loads
its model, adds its routes with their request decoding and validation, and says when it takes work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fastapi.responses import Response

from forgeml.config import Kind, ServeConfig
from forgeml.deploy.server.errors import RETRY, Answer, RequestError, error_body, error_payload
from forgeml.deploy.server.metrics import Metrics

if TYPE_CHECKING:
    from fastapi import FastAPI

    from forgeml.deploy.server.guard import ASGIApp


@dataclass
class ServerState:
    """What the routes share; the runner sets ``draining`` on SIGTERM (readiness goes 503)."""

    bundle_path: Path
    manifest: dict[str, Any]
    config: ServeConfig
    api_key_required: bool = False
    metrics: Metrics = field(default_factory=Metrics)
    handler: KindHandler | None = None
    ready: bool = False
    draining: bool = False
    not_ready_reason: str = "loading the model"
    last_shed: float = float("-inf")  # time.monotonic() of the last request shed at the door

    def error_body(self, status: int, code: str, message: str, request_id: str, **extra: Any) -> bytes:
        """The one error body, with the keys the kind adds to every error (``extra`` fills them in)."""
        return error_body(status, code, message, request_id, **self._fields(status, extra))

    def error_payload(self, status: int, code: str, message: str, request_id: str) -> dict[str, Any]:
        """The same error as a dictionary (an error event on a stream that has already begun)."""
        return error_payload(code, message, request_id, **self._fields(status, {}))

    def _fields(self, status: int, extra: dict[str, Any]) -> dict[str, Any]:
        assert self.handler is not None
        return {**self.handler.error_fields(status), **extra}

    def error(
        self, status: int, code: str, message: str, request_id: str, *, retry: bool = False, **extra: Any
    ) -> Answer:
        return status, self.error_body(status, code, message, request_id, **extra), RETRY if retry else []

    def error_response(
        self, status: int, code: str, message: str, request_id: str, *, retry: bool = False, **extra: Any
    ) -> Response:
        return response(self.error(status, code, message, request_id, retry=retry, **extra))

    def unavailable(self, request_id: str) -> Answer | None:
        """503 while the model loads (and, for a kind that refuses work while draining, on SIGTERM)."""
        assert self.handler is not None
        if self.ready and not (self.draining and self.handler.refuse_while_draining):
            return None
        reason = "shutting down" if self.draining else self.not_ready_reason
        return self.error(503, "not_ready", reason, request_id, retry=True)

    def door(self, request_id: str) -> Answer | None:
        """503 + Retry-After for new work while every place is taken, before its body is read
        (admission control: a shed request costs the event loop no decoding and holds no memory)."""
        if self.handler is None or not self.ready or not self.handler.full():
            return None
        self.last_shed = time.monotonic()
        return self.overloaded(request_id)

    @property
    def shedding(self) -> bool:
        """Whether new work is being refused for overload: every place is taken, or was within the
        last second (so readiness does not flap between two requests)."""
        if self.handler is None or not self.ready:
            return False
        return self.handler.full() or time.monotonic() - self.last_shed < 1.0

    def refuse(self, problem: RequestError, request_id: str, *, reason: str | None = None) -> Answer:
        """A bad request, counted under ``reason`` (its code unless given), pointing where the kind says."""
        assert self.handler is not None
        self.metrics.reject(reason or problem.code)
        where = self.handler.problem_fields(problem)
        return self.error(problem.status, problem.code, problem.message, request_id, **where)

    def overloaded(self, request_id: str) -> Answer:
        self.metrics.reject("queue_full")
        return self.error(503, "overloaded", "the server is busy; retry shortly.", request_id, retry=True)

    def timed_out(self, request_id: str) -> Answer:
        self.metrics.reject("timeout")
        return self.error(504, "timeout", f"no answer within {self.config.request_timeout_s} s.", request_id)


def response(answer: Answer) -> Response:
    """An :data:`Answer` as a FastAPI response (the bare ASGI route sends it as it is)."""
    status, body, headers = answer
    return Response(body, status, {k.decode(): v.decode() for k, v in headers}, media_type="application/json")


class KindHandler:
    """One kind's part of the server: LitServe's ``setup`` / ``decode_request`` / ``predict`` /
    ``encode_response``, as a model loader and the routes that decode, run and encode.

    The server calls, in order: the constructor (cheap: the manifest is read and checked, no
    model yet, so a bad bundle fails before a port is bound), :meth:`add_routes`, then in the
    lifespan :meth:`load` (in a worker thread, timed, followed by ``gc.freeze``), :meth:`start`,
    and at shutdown :meth:`stop`.
    """

    kind: ClassVar[Kind]
    # Why this kind cannot run with ``serve.workers`` > 1, or None when it can.
    single_worker: ClassVar[str | None] = None
    # Whether new work is refused (503) once SIGTERM arrives, or still taken while in-flight work drains.
    refuse_while_draining: ClassVar[bool] = False
    # POST routes whose body is JSON (the Guard refuses any other media type with 415).
    json_routes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, state: ServerState) -> None:
        self.state = state

    @property
    def title(self) -> str:
        """The OpenAPI title."""
        raise NotImplementedError

    def add_routes(self, app: FastAPI) -> None:
        """Declare this kind's routes on ``app`` (the probes and error handlers are the server's)."""
        raise NotImplementedError

    def load(self) -> None:
        """Load and warm up the model (blocking; the server runs it in a worker thread)."""
        raise NotImplementedError

    async def start(self) -> None:
        """On the event loop, once loaded: start what schedules the work (a batcher, slots)."""

    async def stop(self) -> None:
        """At shutdown, after the drain."""

    def full(self) -> bool:
        """Whether every place for work is taken: the Guard then sheds new work at the door (503)."""
        return False

    def direct_routes(self) -> dict[tuple[str, str], ASGIApp]:
        """(method, path) -> bare ASGI endpoints the Guard serves without FastAPI (a measured hot path)."""
        return {}

    def error_fields(self, status: int) -> dict[str, Any]:
        """Keys this kind adds to every error body, with their values where no request error sets them."""
        return {}

    def problem_fields(self, problem: RequestError) -> dict[str, Any]:
        """Where a request error points, in this kind's field names."""
        return {"field": problem.field, "row": problem.row}

    def openapi(self, document: dict[str, Any]) -> None:
        """Adjust the generated OpenAPI document (schemas FastAPI cannot see)."""
