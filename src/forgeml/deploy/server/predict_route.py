"""``POST /v1/predict`` as a bare ASGI endpoint: decode_request -> predict -> encode_response.

The :class:`~forgeml.deploy.server.guard.Guard` hands this route its requests directly, not
through FastAPI: for a model that computes in 0.1 ms, FastAPI's middleware stack, routing and
dependency solving were about 15% of each request's CPU (py-spy, 16 clients), the difference
between 0.8x and 0.9x of a bare endpoint's throughput. Everything the route promises stays here:
validation against the bundle's schema, the error shape, metrics, micro-batching, 503 and 504 (the
answers every kind shares, from :class:`~forgeml.deploy.server.handler.ServerState`). FastAPI still
declares the route, so the OpenAPI document describes it (see ``predict_handler.py``).

Under overload the event loop must stay free to answer probes and send 503s and 504s on time: a
request's deadline (``request_timeout_s``) counts from the arrival of its headers, through body
read, decoding, queue and model; a large body is decoded, and a large answer encoded, by the
handler's codec (a child process by default, :mod:`~forgeml.deploy.server.codec`), not on the loop; and the number of requests admitted at once
is bounded (:meth:`PredictEndpoint.full`), so the Guard sheds the rest before reading their bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np
from starlette.requests import ClientDisconnect

from forgeml.bundle.encode import Feeds
from forgeml.bundle.predictor import check_finite_outputs
from forgeml.deploy.server.codec import CodecCrashed
from forgeml.deploy.server.errors import Answer, Overloaded, RequestError
from forgeml.deploy.server.guard import CLOSE, BodyTooLarge, Receive, Scope, Send, send_json
from forgeml.deploy.server.schema import RequestSchema, data_error
from forgeml.errors import DataError

if TYPE_CHECKING:
    from forgeml.bundle.predictor import Predictor
    from forgeml.deploy.server.predict_handler import PredictHandler

logger = logging.getLogger(__name__)

# Measured on the breast-cancer MLP (30 numeric columns, 2 loaded cores): a 40 KB body (50 rows)
# decodes in ~1.3 ms and a 200 KB body (250 rows) in ~8 ms, its answer encodes in ~2.5 ms, while a
# hop to the codec thread and back costs ~0.1-0.5 ms. Bodies and answers past these sizes are worth
# the hop; smaller ones stay on the loop, where the serving benchmark's one-row requests are fastest.
OFF_LOOP_BODY_BYTES = 32 * 1024
OFF_LOOP_ROWS = 64


class PredictEndpoint:
    """The prediction route; :meth:`answer` is shared with the FastAPI declaration of the route."""

    def __init__(self, handler: PredictHandler, schema: RequestSchema) -> None:
        self.handler = handler
        self.state = handler.state
        self.schema = schema
        self.adapter = schema.adapter()
        self.admitted = 0  # requests past the door and not yet answered (reading, decoding, queued, running)

    def full(self) -> bool:
        """Whether the queue is full, so the next request is shed at the door: ``serve.max_queue``
        requests are admitted already, or the last batch's requests waited more than half of
        ``request_timeout_s`` for their model call (the queue holds more than can be served in time,
        and a request admitted now would more likely end in a 504, its decoding wasted)."""
        if not self.admitted:
            return False
        config, batcher = self.state.config, self.handler.batcher
        late = batcher is not None and batcher.last_wait > config.request_timeout_s / 2
        return late or self.admitted >= config.max_queue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = scope["state"]["request_id"]
        try:
            status, body, headers = await self.answer(
                lambda: read_body(receive), request_id, arrived=scope["state"].get("arrived")
            )
        except BodyTooLarge:
            raise  # the Guard answers 413
        except Exception:  # a bug, not bad input: the generic 500 with the request id, as every route
            logger.exception("request %s failed", request_id)
            status, body, headers = self.state.error(
                500, "internal_error", "internal error; quote the request id when reporting it.", request_id
            )
        await send_json(send, status, body, headers)

    async def answer(
        self, read: Callable[[], Awaitable[bytes]], request_id: str, *, arrived: float | None = None
    ) -> Answer:
        """Status, body and headers for one request (never raises for bad input; the Guard has
        already refused bodies that are too large or not JSON). ``arrived`` is the
        ``time.monotonic()`` of its headers, where its deadline starts (now when not given)."""
        state = self.state
        refusal = state.unavailable(request_id)
        if refusal is not None:
            return refusal
        deadline = (time.monotonic() if arrived is None else arrived) + state.config.request_timeout_s
        self.admitted += 1  # before the first await: the Guard's next admission check sees it
        state.metrics.inflight += 1
        try:
            return await self._predict(read, request_id, deadline)
        finally:
            self.admitted -= 1
            state.metrics.inflight -= 1
            if not self.admitted and self.handler.trimmer is not None:
                self.handler.trimmer.idle()

    def busy(self) -> bool:
        return self.admitted > 0

    async def _predict(
        self, read: Callable[[], Awaitable[bytes]], request_id: str, deadline: float
    ) -> Answer:
        state, handler = self.state, self.handler
        assert handler.batcher is not None and handler.predictor is not None
        reading = True
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                body = await read()
                reading = False
                feeds, rows = await self._decode(body)  # decode_request
        except TimeoutError:  # still reading: the client is slow to send, not the server to answer
            return self._slow_body(request_id) if reading else state.timed_out(request_id)
        except RequestError as exc:
            return state.refuse(exc, request_id)
        except DataError as exc:
            reason = "unseen_category" if "not seen in training" in str(exc) else None
            return state.refuse(data_error(exc), request_id, reason=reason)
        except ClientDisconnect:
            return 400, b"", []
        except CodecCrashed:
            return self._codec_crashed(request_id)
        try:
            timeout = deadline - time.monotonic()
            outputs = await handler.batcher.submit(
                feeds, rows, timeout, arrived=deadline - state.config.request_timeout_s
            )
        except Overloaded:
            return state.overloaded(request_id)
        except TimeoutError:
            return state.timed_out(request_id)
        try:
            check_finite_outputs(outputs)  # never NaN in the JSON (it is not JSON at all)
        except DataError as exc:
            return state.refuse(data_error(exc), request_id)
        if rows < OFF_LOOP_ROWS:
            return 200, encode_response(handler.predictor, outputs, request_id), []
        assert handler.codec is not None
        try:  # the deadline holds here too: the codec may be busy with bodies that came before
            async with asyncio.timeout(deadline - time.monotonic()):
                body = await handler.codec.call("encode", outputs, request_id)
        except TimeoutError:
            return state.timed_out(request_id)
        except CodecCrashed:
            return self._codec_crashed(request_id)
        return 200, body, []

    async def _decode(self, body: bytes) -> tuple[Feeds, int]:
        """The model's inputs and the row count; a large body is decoded by the handler's codec (a
        request that times out while it waits there is cancelled before it is decoded)."""
        if len(body) < OFF_LOOP_BODY_BYTES:
            return self.decode_now(body)
        assert self.handler.codec is not None
        return await self.handler.codec.call("decode", body)

    def decode_now(self, body: bytes) -> tuple[Feeds, int]:
        assert self.handler.encoder is not None
        records, images = self.schema.decode(self.adapter, body)
        return self.handler.encoder.encode(records, images), len(records)

    def _codec_crashed(self, request_id: str) -> Answer:
        self.state.metrics.reject("codec_crashed")
        message = "the server's decoding process stopped and was restarted; retry the request."
        return self.state.error(503, "codec_restarted", message, request_id, retry=True)

    def _slow_body(self, request_id: str) -> Answer:
        self.state.metrics.reject("body_timeout")
        timeout = self.state.config.request_timeout_s
        message = f"the request body did not arrive within request_timeout_s ({timeout} s)."
        status, body, headers = self.state.error(408, "request_timeout", message, request_id)
        return status, body, [*headers, CLOSE]  # the rest of the body is not read: the connection ends


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
