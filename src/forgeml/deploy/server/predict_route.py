"""``POST /v1/predict`` as a bare ASGI endpoint: decode_request -> predict -> encode_response.

The :class:`~forgeml.deploy.server.guard.Guard` hands this route its requests directly, not
through FastAPI: for a model that computes in 0.1 ms, FastAPI's middleware stack, routing and
dependency solving were about 15% of each request's CPU (py-spy, 16 clients), the difference
between 0.8x and 0.9x of a bare endpoint's throughput. Everything the route promises stays here:
validation against the bundle's schema, the error shape, metrics, micro-batching, 503 and 504.
FastAPI still declares the route, so the OpenAPI document describes it (see ``app.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.requests import ClientDisconnect

from forgeml.deploy.server.batching import Overloaded
from forgeml.deploy.server.guard import BodyTooLarge, Receive, Scope, Send, error_body, send_json
from forgeml.deploy.server.schema import RequestError, RequestSchema, data_error
from forgeml.errors import DataError

if TYPE_CHECKING:
    from forgeml.bundle.predictor import Predictor
    from forgeml.deploy.server.app import ServerState

logger = logging.getLogger(__name__)
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, JSON body, extra headers
RETRY = [(b"retry-after", b"1")]


class PredictEndpoint:
    """The prediction route; :meth:`answer` is shared with the FastAPI declaration of the route."""

    def __init__(self, state: ServerState, schema: RequestSchema) -> None:
        self.state = state
        self.schema = schema
        self.adapter = schema.adapter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = scope["state"]["request_id"]
        try:
            status, body, headers = await self.answer(
                scope["headers"], lambda: read_body(receive), request_id
            )
        except BodyTooLarge:
            raise  # the Guard answers 413
        except Exception:  # a bug, not bad input: the generic 500 with the request id, as every route
            logger.exception("request %s failed", request_id)
            status, body, headers = _error(
                500, "internal_error", "internal error; quote the request id when reporting it.", request_id
            )
        await send_json(send, status, body, headers)

    async def answer(
        self, headers: Iterable[tuple[bytes, bytes]], read: Callable[[], Awaitable[bytes]], request_id: str
    ) -> Answer:
        """Status, body and headers for one request (never raises for bad input)."""
        state = self.state
        if not state.ready:
            return _error(503, "not_ready", state.not_ready_reason, request_id, retry=True)
        if _content_type(headers) != b"application/json":
            state.metrics.reject("unsupported_media_type")
            return _error(415, "unsupported_media_type", "send the rows as application/json.", request_id)
        state.metrics.inflight += 1
        try:
            return await self._predict(read, request_id)
        finally:
            state.metrics.inflight -= 1

    async def _predict(self, read: Callable[[], Awaitable[bytes]], request_id: str) -> Answer:
        state = self.state
        assert state.batcher is not None and state.predictor is not None and state.encoder is not None
        try:
            records, images = self.schema.decode(self.adapter, await read())  # decode_request
            feeds = state.encoder.encode(records, images)
        except RequestError as exc:
            state.metrics.reject(exc.code)
            return _error(exc.status, exc.code, exc.message, request_id, field=exc.field, row=exc.row)
        except DataError as exc:
            error = data_error(exc)
            state.metrics.reject("unseen_category" if "not seen in training" in str(exc) else error.code)
            return _error(422, error.code, error.message, request_id, field=error.field, row=error.row)
        except ClientDisconnect:
            return 400, b"", []
        timeout = state.config.request_timeout_s
        try:
            outputs = await state.batcher.submit(feeds, len(records), timeout)  # predict
        except Overloaded:
            state.metrics.reject("queue_full")
            return _error(503, "overloaded", "the server is busy; retry shortly.", request_id, retry=True)
        except TimeoutError:
            state.metrics.reject("timeout")
            return _error(504, "timeout", f"no answer within {timeout} s.", request_id)
        return 200, encode_response(state.predictor, outputs, request_id), []


async def read_body(receive: Receive) -> bytes:
    """The whole request body (the Guard's ``receive`` enforces the size limit while it streams)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def encode_response(predictor: Predictor, outputs: np.ndarray, request_id: str) -> bytes:
    """``{"predictions": [{"prediction", "probabilities"?}, ...], "request_id"}`` (encode_response)."""
    decoded = predictor.pipeline.target_.decode(outputs)
    values = decoded.values.tolist()
    if decoded.probabilities is None:
        predictions = [{"prediction": value} for value in values]
    else:
        labels = predictor.label_names
        predictions = [
            {"prediction": value, "probabilities": dict(zip(labels, row, strict=True))}
            for value, row in zip(values, decoded.probabilities.tolist(), strict=True)
        ]
    return json.dumps({"predictions": predictions, "request_id": request_id}, default=_plain).encode()


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else str(value)


def _content_type(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower()
    return b"application/json"  # no header: the body is read as JSON


def _error(
    status: int, code: str, message: str, request_id: str, *, retry: bool = False, **extra: Any
) -> Answer:
    return status, error_body(status, code, message, request_id, **extra), RETRY if retry else []
