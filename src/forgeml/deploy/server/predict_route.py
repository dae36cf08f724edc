"""``POST /v1/predict`` as a bare ASGI endpoint: decode_request -> predict -> encode_response.

The :class:`~forgeml.deploy.server.guard.Guard` hands this route its requests directly, not
through FastAPI: for a model that computes in 0.1 ms, FastAPI's middleware stack, routing and
dependency solving were about 15% of each request's CPU (py-spy, 16 clients), the difference
between 0.8x and 0.9x of a bare endpoint's throughput. Everything the route promises stays here:
validation against the bundle's schema, the error shape, metrics, micro-batching, 503 and 504 (the
answers every kind shares, from :class:`~forgeml.deploy.server.handler.ServerState`). FastAPI still
declares the route, so the OpenAPI document describes it (see ``predict_handler.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np
from starlette.requests import ClientDisconnect

from forgeml.bundle.predictor import check_finite_outputs
from forgeml.deploy.server.errors import Answer, Overloaded, RequestError
from forgeml.deploy.server.guard import BodyTooLarge, Receive, Scope, Send, send_json
from forgeml.deploy.server.schema import RequestSchema, data_error
from forgeml.errors import DataError

if TYPE_CHECKING:
    from forgeml.bundle.predictor import Predictor
    from forgeml.deploy.server.predict_handler import PredictHandler

logger = logging.getLogger(__name__)


class PredictEndpoint:
    """The prediction route; :meth:`answer` is shared with the FastAPI declaration of the route."""

    def __init__(self, handler: PredictHandler, schema: RequestSchema) -> None:
        self.handler = handler
        self.state = handler.state
        self.schema = schema
        self.adapter = schema.adapter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = scope["state"]["request_id"]
        try:
            status, body, headers = await self.answer(lambda: read_body(receive), request_id)
        except BodyTooLarge:
            raise  # the Guard answers 413
        except Exception:  # a bug, not bad input: the generic 500 with the request id, as every route
            logger.exception("request %s failed", request_id)
            status, body, headers = self.state.error(
                500, "internal_error", "internal error; quote the request id when reporting it.", request_id
            )
        await send_json(send, status, body, headers)

    async def answer(self, read: Callable[[], Awaitable[bytes]], request_id: str) -> Answer:
        """Status, body and headers for one request (never raises for bad input; the Guard has
        already refused bodies that are too large or not JSON)."""
        state = self.state
        refusal = state.unavailable(request_id)
        if refusal is not None:
            return refusal
        state.metrics.inflight += 1
        try:
            return await self._predict(read, request_id)
        finally:
            state.metrics.inflight -= 1

    async def _predict(self, read: Callable[[], Awaitable[bytes]], request_id: str) -> Answer:
        state, handler = self.state, self.handler
        assert handler.batcher is not None and handler.predictor is not None and handler.encoder is not None
        try:
            records, images = self.schema.decode(self.adapter, await read())  # decode_request
            feeds = handler.encoder.encode(records, images)
        except RequestError as exc:
            return state.refuse(exc, request_id)
        except DataError as exc:
            reason = "unseen_category" if "not seen in training" in str(exc) else None
            return state.refuse(data_error(exc), request_id, reason=reason)
        except ClientDisconnect:
            return 400, b"", []
        timeout = state.config.request_timeout_s
        try:
            outputs = await handler.batcher.submit(feeds, len(records), timeout)  # predict
        except Overloaded:
            return state.overloaded(request_id)
        except TimeoutError:
            return state.timed_out(request_id)
        try:
            check_finite_outputs(outputs)  # never NaN in the JSON (it is not JSON at all)
        except DataError as exc:
            return state.refuse(data_error(exc), request_id)
        return 200, encode_response(handler.predictor, outputs, request_id), []


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
