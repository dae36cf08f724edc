"""The ASGI guard in front of every route of every kind: request ids, API key, body limits, metrics.

It runs before FastAPI reads anything, so an oversized body is refused from its ``Content-Length``
without a byte of it read (413), a chunked body is counted as it streams and cut off once past the
limit (413), a malformed ``Content-Length`` is a 400, and a compressed body is a 415 (forgeml does
not inflate request bodies: no decompression bombs). A body that is not declared JSON (a wrong or a
missing ``Content-Type``), on a route that reads JSON, is a 415. The API key is compared in constant
time. Then admission control: new work that finds every place taken (``door``) is a 503 with
``Retry-After`` before a byte of its body is read. Routes named in ``routes`` (the prediction route)
are served directly, skipping FastAPI's stack. While the server drains (``closing``) every response
carries ``Connection: close``, so clients reconnect to a server that stays.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from forgeml.deploy.server.errors import Answer, error_body
from forgeml.deploy.server.metrics import Metrics

if TYPE_CHECKING:
    from forgeml.deploy.server.protocol import ConnectionLimits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ErrorBody = Callable[[int, str, str, str], bytes]  # status, code, message, request id -> the JSON body

OPEN_PATHS = frozenset({"/health/live", "/health/ready"})  # probes never need the key

CLOSE = (b"connection", b"close")

METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


class BodyTooLarge(Exception):
    pass


async def send_json(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """A whole JSON response in the two ASGI messages."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Pure ASGI middleware; see the module docstring for what it refuses and why."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        api_key: str | None,
        metrics: Metrics,
        paths: frozenset[str],
        json_routes: frozenset[str] = frozenset(),
        routes: dict[tuple[str, str], ASGIApp] | None = None,
        error: ErrorBody = error_body,
        door: Callable[[str], Answer | None] | None = None,
        closing: Callable[[], bool] | None = None,
    ) -> None:
        self.app = app
        self.error = error  # the server's error body (a kind may add fields to the one shape)
        # The paths the app serves: a request's metrics label (any other path counts as "other",
        # so a scan of random URLs cannot grow the label set).
        self.paths = paths
        # POST routes that read a JSON body: any other media type is refused before the route runs.
        self.json_routes = json_routes
        # (method, path) -> an endpoint served without the wrapped app's routing (the hot route).
        self.routes = routes or {}
        self.max_body_bytes = max_body_bytes
        self.api_key = None if api_key is None else api_key.encode()
        self.metrics = metrics
        # request id -> a 503 answer when new work must be shed (every place taken), else None
        self.door = door
        # whether the server drains: responses then close their connection
        self.closing = closing or (lambda: False)
        # what uvicorn's protocol enforces below the ASGI app (forgeml.deploy.server.protocol reads it)
        self.connection_limits: ConnectionLimits | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        scope_state = scope.setdefault("state", {})
        scope_state["request_id"] = request_id
        scope_state["arrived"] = time.monotonic()  # a request's deadline counts from here (its headers)
        route = scope["path"] if scope["path"] in self.paths else "other"
        status_seen = 500

        async def send_logged(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
                if self.closing():
                    message["headers"].append(CLOSE)
            await send(message)

        try:
            refusal = self._refuse(scope)
            if refusal is not None:
                status, code, message, headers = refusal
                status_seen = status
                self.metrics.reject(code)
                await self._send_error(send, status, code, message, request_id, headers)
                return
            if self.door is not None and scope["method"] == "POST" and scope["path"] in self.json_routes:
                shed = self.door(request_id)  # counts its own rejection
                if shed is not None:
                    await send_json(send_logged, *shed)
                    return
            endpoint = self.routes.get((scope["method"], scope["path"]), self.app)
            await endpoint(scope, self._counting(receive), send_logged)
        except BodyTooLarge:
            status_seen = 413
            self.metrics.reject("content_too_large")
            await self._send_error(
                send,
                413,
                "content_too_large",
                f"the body is larger than {self.max_body_bytes} bytes.",
                request_id,
            )
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.request(route, method, status_seen, time.perf_counter() - started)

    async def _send_error(
        self,
        send: Send,
        status: int,
        code: str,
        message: str,
        request_id: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = self.error(status, code, message, request_id)
        extra = [(b"x-request-id", request_id.encode()), *(headers or [])]
        await send_json(send, status, body, [*extra, CLOSE] if self.closing() else extra)

    def _refuse(self, scope: Scope) -> tuple[int, str, str, list[tuple[bytes, bytes]] | None] | None:
        headers = dict(scope["headers"])  # lower-cased names; a repeated header keeps its last value
        if self.api_key is not None and scope["path"] not in OPEN_PATHS and not self._authorized(headers):
            return (
                401,
                "unauthorized",
                "a valid API key is required (Authorization: Bearer <key>).",
                [(b"www-authenticate", b"Bearer")],
            )
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            return (
                415,
                "unsupported_encoding",
                "compressed request bodies are not accepted; send plain JSON.",
                None,
            )
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                return 400, "bad_content_length", "Content-Length must be a non-negative integer.", None
            if int(length) > self.max_body_bytes:
                return 413, "content_too_large", f"the body is larger than {self.max_body_bytes} bytes.", None
        if scope["method"] == "POST" and scope["path"] in self.json_routes:
            media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if media_type != b"application/json":  # a missing type is refused like a wrong one
                return 415, "unsupported_media_type", "send the request body as application/json.", None
        return None

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        assert self.api_key is not None
        given = headers.get(b"authorization", b"")
        token = given[7:].strip() if given[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"")
        return hmac.compare_digest(token, self.api_key)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        return counted
